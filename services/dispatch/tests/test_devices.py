"""devices.status → the last status per device → online rates per district / station, scoped to the caller."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

from alarmhub_devstack.testing import wait_until
from alarmhub_dispatch.app import DispatchApp
from alarmhub_events import DEVICES_STATUS, DeviceStatus, DeviceStatusKind, Protocol, Source, utcnow
from alarmhub_kafka import DurableProducer, KafkaMetrics
from prometheus_client import CollectorRegistry

from .conftest import triaged
from .test_service import _client, _mint, _publish, _wait_incident
from .test_webhooks import Receiver


async def _send(stack: Any, prefix: str, items: list[DeviceStatus]) -> None:
    producer = DurableProducer(
        stack.kafka_bootstrap,
        metrics=KafkaMetrics(CollectorRegistry()),
        client_id="test",
        topic_prefix=prefix,
        service="test",
    )
    await producer.start()
    try:
        await producer.send_many([(DEVICES_STATUS, s, s.key) for s in items])
    finally:
        await producer.stop()


async def test_device_online_rates_by_unit(
    dispatch: tuple[DispatchApp, str], stack: Any, topic_prefix: str
) -> None:
    app, token = dispatch
    tag = uuid.uuid4().hex[:6]
    cams = [f"cam-{tag}-{i}" for i in range(3)]
    now = utcnow()

    def st(dev: str, protocol: Protocol, status: DeviceStatusKind, at_s: float) -> DeviceStatus:
        t = now + timedelta(seconds=at_s)
        return DeviceStatus(device_id=dev, protocol=protocol, status=status, occurred_at=t, received_at=t)

    async with _client(app, token) as c:
        for cam, unit in zip(cams, ("440306-S02", "440306-S02", "440307-S01"), strict=True):
            r = await c.post(
                "/api/v1/registry/cameras",
                json={
                    "id": cam,
                    "name": cam,
                    "lat": 22.6,
                    "lon": 113.9,
                    "unit": unit,
                    "network": "social_video",
                },
            )
            assert r.status_code == 201, r.text
        # an alarm panel placed by its account's site (in Bao'an), a vehicle (no unit)
        r = await c.post(
            "/api/v1/registry/accounts",
            json={
                "line": "L9",
                "account": f"7{tag}",
                "company": "acme",
                "site": {"name": "仓库", "lat": 22.5700, "lon": 113.8700},
            },
        )
        assert r.status_code == 201, r.text
        panel, vehicle = f"L9#7{tag}".upper(), f"0139{uuid.uuid4().int % 10**8:08d}"
        await _send(
            stack,
            topic_prefix,
            [
                st(cams[0], Protocol.GB28181, DeviceStatusKind.ONLINE, 0),
                st(cams[1], Protocol.GB28181, DeviceStatusKind.ONLINE, 0),
                st(cams[1], Protocol.GB28181, DeviceStatusKind.OFFLINE, 30),
                st(cams[2], Protocol.ONVIF, DeviceStatusKind.ONLINE, 0),
                st(panel, Protocol.DC09_CID, DeviceStatusKind.SUPERVISION_MISSED, 5),
                st(vehicle, Protocol.JT808, DeviceStatusKind.ONLINE, 0),
                st(vehicle, Protocol.JT808, DeviceStatusKind.ACC_ON, 10),  # not a link status: still online
            ],
        )

        async def city_rows() -> list[dict[str, Any]] | None:
            r = await c.get("/api/v1/reports/devices?by=station")
            assert r.status_code == 200, r.text
            rows = r.json()["items"]
            if sum(x["devices"] for x in rows if x["station"] in ("440306-S02", "440307-S01")) < 3:
                return None
            return rows if any(x["kind"] == "alarm_panel" for x in rows) else None

        await wait_until(city_rows, timeout=20, interval=0.2)
        # a late copy of an older status (a replay) changes nothing
        await _send(stack, topic_prefix, [st(cams[1], Protocol.GB28181, DeviceStatusKind.ONLINE, 1)])
        await _send(stack, topic_prefix, [st(cams[2], Protocol.ONVIF, DeviceStatusKind.OFFLINE, 60)])

        async def luohu_down() -> list[dict[str, Any]] | None:
            rows = (await c.get("/api/v1/reports/devices?by=station&kind=camera")).json()["items"]
            r = next((x for x in rows if x["station"] == "440307-S01"), None)
            return rows if r is not None and r["online"] == 0 else None

        rows = await wait_until(luohu_down, timeout=20, interval=0.2)
        s02 = next(x for x in rows if x["station"] == "440306-S02")
        assert (s02["district"], s02["devices"], s02["online"], s02["online_rate"]) == ("440306", 2, 1, 0.5)
        assert {x["kind"] for x in rows} == {"camera"}

        city = (await c.get("/api/v1/reports/devices")).json()["items"]
        assert any(x["district"] is None and x["kind"] == "vehicle" and x["online"] >= 1 for x in city)
        panel_row = next(x for x in city if x["kind"] == "alarm_panel" and x["district"] == "440306")
        assert panel_row["online"] < panel_row["devices"]

        # the Bao'an district sees its own rows only; a station its own; the city's CSV names its columns
        baoan = await _mint(c, user="baoan-sup", unit="440306", role="supervisor")
        async with _client(app, baoan) as b:
            mine = (await b.get("/api/v1/reports/devices?by=station")).json()["items"]
            assert mine and {x["district"] for x in mine} == {"440306"}
            s01 = await _mint(b, user="s02-desk", unit="440306-S02", role="dispatcher")
        async with _client(app, s01) as s:
            rows = (await s.get("/api/v1/reports/devices?by=station")).json()["items"]
            assert {x["station"] for x in rows} == {"440306-S02"}
        company = await _mint(c, user="acme-api", company="acme", role="alarm_company")
        async with _client(app, company) as co:
            assert (await co.get("/api/v1/reports/devices")).status_code == 403
        r = await c.get("/api/v1/reports/devices?format=csv&kind=camera")
        assert r.headers["content-type"].startswith("text/csv")
        lines = r.text.splitlines()
        assert lines[0] == "district,district_name,kind,devices,online,online_rate,last_status_at"
        assert any(line.startswith("440306,") for line in lines[1:])


async def test_late_supervision_answer_joins_the_vehicles_open_incident_once(
    dispatch: tuple[DispatchApp, str], stack: Any, topic_prefix: str, consume_topic: Any
) -> None:
    app, token = dispatch
    vehicle = f"粤B{uuid.uuid4().int % 10**5:05d}:2"
    t = triaged(kind="vehicle_theft", device="x")
    ev = t.event.model_copy(
        update={"source": Source(protocol=Protocol.JT809, device_id=vehicle, platform="cmd-op")}
    )
    t = t.model_copy(update={"event": ev})
    await _publish(stack, topic_prefix, [t])

    def answer(result: int, text: str) -> DeviceStatus:
        now = utcnow()
        return DeviceStatus(
            device_id=vehicle,
            protocol=Protocol.JT809,
            status=DeviceStatusKind.OTHER,
            occurred_at=now,
            received_at=now,
            attributes={
                "jt809_supervision_answer": {
                    "supervision_id": 4711,
                    "result": result,
                    "result_text": text,
                    "platform": "cmd-op",
                }
            },
        )

    def an_answer(body: bytes) -> bool:
        p = json.loads(body)
        return p["incident"]["id"] == str(t.incident_id) and "vehicle_command_answer" in p["event"].get(
            "data", {}
        )

    station_system = Receiver(match=an_answer)
    url = await station_system.start()
    processing, handled = answer(0, "processing"), answer(1, "handled")
    async with _client(app, token) as c:
        first_seen = await _wait_incident(c, str(t.incident_id))
        r = await c.post(
            "/api/v1/webhooks",
            json={"unit": first_seen["station"], "url": url, "secret": "station-secret-0002"},
        )
        assert r.status_code == 201, r.text
        # the same status twice (a redelivery), then the next answer: the partition (keyed by the
        # vehicle) is read in order, so once "handled" is on the timeline the replay has been handled too
        await _send(stack, topic_prefix, [processing])
        await _send(stack, topic_prefix, [processing, handled])

        async def answered() -> list[dict[str, Any]] | None:
            inc = (await c.get(f"/api/v1/incidents/{t.incident_id}")).json()
            got = [e for e in inc["timeline"] if "vehicle_command_answer" in (e.get("data") or {})]
            return got if len(got) >= 2 else None

        got = await wait_until(answered, timeout=20, interval=0.2)
        assert [e["data"]["vehicle_command_answer"]["result_text"] for e in got] == ["processing", "handled"]
        first = got[0]
        assert first["type"] == "updated" and first["actor"]["user"] == "system:ingest-gps"
        assert first["data"]["vehicle_command_answer"] == {
            "supervision_id": 4711,
            "result": 0,
            "result_text": "processing",
            "platform": "cmd-op",
            "command": "supervise",
            "device_id": vehicle,
            "protocol": "jt809",
            "status_event_id": str(processing.event_id),
        }
        # on incidents.events through the outbox, once each
        published = await consume_topic(
            topic_prefix,
            "incidents.events",
            2,
            timeout=20,
            where=lambda v: (
                v.get("incident_id") == str(t.incident_id) and "vehicle_command_answer" in v["data"]
            ),
        )
        assert len(published) == 2 and {v["event_id"] for v in published} == {e["event_id"] for e in got}
        # the answer is not a status of the vehicle's link: no device_status row for it
        assert (
            await app.store.p.fetchval("SELECT count(*) FROM device_status WHERE device_id = $1", vehicle)
            == 0
        )
        # and the station's system is told, once per answer (the replayed "processing" queues nothing)
        try:
            await wait_until(lambda: station_system.matched >= 2, timeout=20, interval=0.2)
        finally:
            await station_system.stop()
        hooked = [json.loads(q["body"])["event"] for q in station_system.requests if an_answer(q["body"])]
        assert sorted(e["event_id"] for e in hooked) == sorted(e["event_id"] for e in got)
        assert {e["data"]["vehicle_command_answer"]["result_text"] for e in hooked} == {
            "processing",
            "handled",
        }


async def test_late_supervision_answer_without_an_open_incident_is_skipped(
    dispatch: tuple[DispatchApp, str], stack: Any, topic_prefix: str
) -> None:
    """No incident for the vehicle, or only a closed one: nothing is written, and the batch goes on."""
    app, token = dispatch
    vehicle = f"粤B{uuid.uuid4().int % 10**5:05d}:1"
    t = triaged(kind="vehicle_theft", device="x")
    ev = t.event.model_copy(
        update={"source": Source(protocol=Protocol.JT809, device_id=vehicle, platform="cmd-op")}
    )
    t = t.model_copy(update={"event": ev})

    def answer(device: str) -> DeviceStatus:
        now = utcnow()
        return DeviceStatus(
            device_id=device,
            protocol=Protocol.JT809,
            status=DeviceStatusKind.OTHER,
            occurred_at=now,
            received_at=now,
            attributes={
                "jt809_supervision_answer": {
                    "supervision_id": 1,
                    "result": 1,
                    "result_text": "handled",
                    "platform": "cmd-op",
                }
            },
        )

    nobody = f"粤B{uuid.uuid4().int % 10**5:05d}:9"
    assert await app.dispatcher.vehicle_answers([answer(nobody)]) == 0
    await _publish(stack, topic_prefix, [t])
    async with _client(app, token) as c:
        await _wait_incident(c, str(t.incident_id))
        r = await c.post(f"/api/v1/incidents/{t.incident_id}/close", json={"verdict": "false_alarm"})
        assert r.status_code == 200, r.text
        # a closed incident takes no answer; the unknown vehicle in the same batch does not stop the rest
        assert await app.dispatcher.vehicle_answers([answer(nobody), answer(vehicle)]) == 0
        inc = (await c.get(f"/api/v1/incidents/{t.incident_id}")).json()
        assert not [e for e in inc["timeline"] if "vehicle_command_answer" in (e.get("data") or {})]
