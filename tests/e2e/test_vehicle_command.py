"""A dispatcher asks a stolen vehicle for its position: dispatch → ingest-gps → JT/T 808 terminal → back.

Both services run in this process on ephemeral ports, on the real broker and PostgreSQL; the terminal
is a real TCP client that registers, authenticates and answers the 0x8201 query with a 0x0201.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from alarmhub_dispatch.app import DispatchApp
from alarmhub_ingest_gps.app import GpsApp
from alarmhub_ingest_gps.protocols import jt808

from .inproc import (
    gps_and_dispatch,
    publish_decision,
    read_808,
    terminal_login,
    theft_decision,
)

PHONE = "013900000777"


@pytest.fixture
async def services(stack: Any, topic_prefix: str) -> AsyncIterator[tuple[GpsApp, DispatchApp, str]]:
    async with gps_and_dispatch(stack, topic_prefix) as running:
        yield running


async def test_locate_now_reaches_the_terminal_and_lands_on_the_timeline(
    services: tuple[GpsApp, DispatchApp, str], stack: Any, topic_prefix: str
) -> None:
    gps, dispatch, token = services
    reader, writer = await terminal_login(gps.ports["jt808"], PHONE)

    incident_id = uuid.uuid4()
    await publish_decision(stack, topic_prefix, theft_decision(incident_id, PHONE))

    async def terminal() -> None:
        query = await read_808(reader)
        assert query.header.msg_id == 0x8201
        body = query.header.serial.to_bytes(2, "big") + jt808.encode_location_body(
            lat=22.5555, lon=114.0666, status_bits=0x03, local_time=datetime(2026, 11, 25, 18, 0, 0)
        )
        writer.write(jt808.encode(0x0201, PHONE, 3, body))
        await read_808(reader)

    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{dispatch.http_port}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=20,
    ) as client:
        for _ in range(200):
            if (await client.get(f"/api/v1/incidents/{incident_id}")).status_code == 200:
                break
            await asyncio.sleep(0.1)
        # a read-only department token may look but not command
        r = await client.post(
            "/api/v1/tokens", json={"user": "urban-mgmt", "unit": "440304", "role": "department"}
        )
        assert r.status_code == 201, r.text
        dept = {"Authorization": f"Bearer {r.json()['token']}"}
        refused = await client.post(
            f"/api/v1/incidents/{incident_id}/vehicle-command",
            headers=dept,
            json={"command": "query_position"},
        )
        assert refused.status_code in (403, 404)

        task = asyncio.create_task(terminal())
        r = await client.post(
            f"/api/v1/incidents/{incident_id}/vehicle-command",
            json={"command": "query_position", "timeout_s": 10},
        )
        await task
        assert r.status_code == 200, r.text
        reply = r.json()["reply"]
        assert reply["status"] == "ok" and reply["position"]["lat"] == pytest.approx(22.5555)
        assert reply["position"]["lon"] == pytest.approx(114.0666)

        detail = (await client.get(f"/api/v1/incidents/{incident_id}")).json()
        recorded = [e for e in detail["timeline"] if "vehicle_command" in (e["data"] or {})]
        assert len(recorded) == 1 and recorded[0]["actor"]["user"] == "dev-admin"
        assert recorded[0]["data"]["vehicle_command"]["reply"]["position"]["lat"] == pytest.approx(22.5555)

        bad = await client.post(
            f"/api/v1/incidents/{incident_id}/vehicle-command", json={"command": "self_destruct"}
        )
        assert bad.status_code == 422
    writer.close()
