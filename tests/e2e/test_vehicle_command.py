"""A dispatcher asks a stolen vehicle for its position: dispatch → ingest-gps → JT/T 808 terminal → back.

Both services run in this process on ephemeral ports, on the real broker and PostgreSQL; the terminal
is a real TCP client that registers, authenticates and answers the 0x8201 query with a 0x0201.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from alarmhub_dispatch.app import DispatchApp
from alarmhub_dispatch.config import DispatchSettings
from alarmhub_events import (
    ALARMS_TRIAGED,
    AlarmEvent,
    AlarmKind,
    Decision,
    Location,
    Protocol,
    Reason,
    Source,
    TriagedAlarm,
)
from alarmhub_ingest_gps.app import GpsApp
from alarmhub_ingest_gps.config import GpsSettings
from alarmhub_ingest_gps.metrics import GpsMetrics
from alarmhub_ingest_gps.protocols import jt808
from alarmhub_kafka import DurableProducer, KafkaMetrics
from prometheus_client import CollectorRegistry

PHONE = "013900000777"


@pytest.fixture
async def services(stack: Any, topic_prefix: str) -> AsyncIterator[tuple[GpsApp, DispatchApp, str]]:
    common = dict(KAFKA_BOOTSTRAP=stack.kafka_bootstrap, DATABASE_URL=stack.database_url,
                  REDIS_URL=stack.redis_url, ALARMHUB_TOPIC_PREFIX=topic_prefix, ALARMHUB_HEALTH_PORT=0)
    gps_settings = GpsSettings(**common, ALARMHUB_GPS_HOST="127.0.0.1", ALARMHUB_JT808_PORT=0, ALARMHUB_GT06_PORT=0,
                               ALARMHUB_H02_PORT=0, ALARMHUB_JT809_PORT=0, ALARMHUB_GPS_COMMAND_PORT=0)
    registry = CollectorRegistry()
    gps = GpsApp(gps_settings, DurableProducer.from_settings(gps_settings, metrics=KafkaMetrics(registry),
                                                             client_id="ingest-gps"), GpsMetrics(registry))
    await gps.start()
    token = f"dev-{uuid.uuid4().hex}"
    dispatch = DispatchApp(DispatchSettings(
        **common, ALARMHUB_HTTP_HOST="127.0.0.1", ALARMHUB_HTTP_PORT=0, ALARMHUB_DEV_TOKEN=token,
        ALARMHUB_GPS_COMMAND_URL=f"http://127.0.0.1:{gps.ports['command']}/commands"), CollectorRegistry())
    await dispatch.start()
    try:
        yield gps, dispatch, token
    finally:
        await dispatch.stop()
        await gps.stop()


async def _read(reader: asyncio.StreamReader) -> jt808.Message:
    await reader.readuntil(b"\x7e")
    return jt808.parse_frame((await asyncio.wait_for(reader.readuntil(b"\x7e"), 10))[:-1])


def _theft(incident_id: uuid.UUID) -> TriagedAlarm:
    now = datetime.now(UTC)
    ev = AlarmEvent(kind=AlarmKind.VEHICLE_THEFT, source=Source(protocol=Protocol.JT808, device_id=PHONE),
                    code="0x00000800", occurred_at=now, received_at=now, location=Location(lat=22.54, lon=114.05))
    return TriagedAlarm(incident_id=incident_id, event=ev, decision=Decision.DISPATCH, score=80, priority=2,
                        rule_version="test", decided_at=now,
                        reasons=[Reason(code="ignition_unauthorized", text="Ignition while armed")])


async def test_locate_now_reaches_the_terminal_and_lands_on_the_timeline(
        services: tuple[GpsApp, DispatchApp, str], stack: Any, topic_prefix: str) -> None:
    gps, dispatch, token = services
    reader, writer = await asyncio.open_connection("127.0.0.1", gps.ports["jt808"])
    writer.write(jt808.encode_frame(0x0100, PHONE, 1, bytes(37)))
    reg = await _read(reader)
    writer.write(jt808.encode_frame(0x0102, PHONE, 2, reg.body[3:]))
    assert (await _read(reader)).body[4] == 0  # authenticated

    incident_id = uuid.uuid4()
    producer = DurableProducer(stack.kafka_bootstrap, metrics=KafkaMetrics(CollectorRegistry()), client_id="t",
                               topic_prefix=topic_prefix)
    await producer.start()
    await producer.send(ALARMS_TRIAGED, _theft(incident_id))
    await producer.stop()

    async def terminal() -> None:
        query = await _read(reader)
        assert query.header.msg_id == 0x8201
        body = query.header.serial.to_bytes(2, "big") + jt808.location_body(
            lat=22.5555, lon=114.0666, status_bits=0x03, local_time=datetime(2026, 11, 25, 18, 0, 0))
        writer.write(jt808.encode_frame(0x0201, PHONE, 3, body))
        await _read(reader)

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{dispatch.http_port}",
                                 headers={"Authorization": f"Bearer {token}"}, timeout=20) as client:
        for _ in range(200):
            if (await client.get(f"/api/v1/incidents/{incident_id}")).status_code == 200:
                break
            await asyncio.sleep(0.1)
        # a read-only department token may look but not command
        r = await client.post("/api/v1/tokens", json={"user": "urban-mgmt", "unit": "440304", "role": "department"})
        assert r.status_code == 201, r.text
        dept = {"Authorization": f"Bearer {r.json()['token']}"}
        refused = await client.post(f"/api/v1/incidents/{incident_id}/vehicle-command", headers=dept,
                                    json={"command": "query_position"})
        assert refused.status_code in (403, 404)

        task = asyncio.create_task(terminal())
        r = await client.post(f"/api/v1/incidents/{incident_id}/vehicle-command",
                              json={"command": "query_position", "timeout_s": 10})
        await task
        assert r.status_code == 200, r.text
        reply = r.json()["reply"]
        assert reply["status"] == "ok" and reply["position"]["lat"] == pytest.approx(22.5555)
        assert reply["position"]["lon"] == pytest.approx(114.0666)

        detail = (await client.get(f"/api/v1/incidents/{incident_id}")).json()
        recorded = [e for e in detail["timeline"] if "vehicle_command" in (e["data"] or {})]
        assert len(recorded) == 1 and recorded[0]["actor"]["user"] == "dev-admin"
        assert recorded[0]["data"]["vehicle_command"]["reply"]["position"]["lat"] == pytest.approx(22.5555)

        bad = await client.post(f"/api/v1/incidents/{incident_id}/vehicle-command", json={"command": "self_destruct"})
        assert bad.status_code == 422
    writer.close()
