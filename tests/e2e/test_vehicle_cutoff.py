"""Cut fuel/power end to end: dispatch's rules (role, typed confirmation, safe speed) → ingest-gps → terminal.

Both services in this process on the real broker and PostgreSQL; the terminal is a real JT/T 808 TCP
client whose 0x0200 reports reach dispatch's tracks through ``telemetry.gps`` (the speed dispatch checks).
The registry names its model ``JT808`` (0x8105 word 0xF0, protocols/commands_cutoff.py). GT06 (``GT06N``:
0x80 ``DYD,000000#``, answered by 0x15 text) and H02 (``S20``, answered by ``V4``) trackers the same way:
their answers are the ones Traccar's decoder tests captured (see services/ingest-gps/tests).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from alarmhub_dispatch.app import DispatchApp
from alarmhub_ingest_gps.app import GpsApp
from alarmhub_ingest_gps.protocols import jt808

from .inproc import (
    Gt06Tracker,
    H02Tracker,
    gps_and_dispatch,
    publish_decision,
    read_808,
    terminal_login,
    theft_decision,
)

PLATE = "粤B7C0T1"


@pytest.fixture
async def services(stack: Any, topic_prefix: str) -> AsyncIterator[tuple[GpsApp, DispatchApp, str]]:
    async with gps_and_dispatch(stack, topic_prefix) as running:
        yield running


def report(phone: str, serial: int, speed_kmh: float, ago_s: float = 0.0) -> bytes:
    """A 0x0200 stamped ``ago_s`` before now (the terminal's clock: UTC+8) at ``speed_kmh``.

    Fixes are kept per (device, second): two reports within one second would be one fix."""
    local = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=8, seconds=-ago_s)
    body = jt808.encode_location_body(
        lat=22.54, lon=114.05, status_bits=0x03, speed_kmh=speed_kmh, local_time=local
    )
    return jt808.encode(0x0200, phone, serial, body)


async def wait_speed(client: httpx.AsyncClient, incident_id: uuid.UUID, speed: float) -> None:
    for _ in range(600):
        points = (await client.get(f"/api/v1/incidents/{incident_id}/track")).json()["points"]
        if points and points[-1]["speed_kmh"] == pytest.approx(speed, abs=1):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"no fix at {speed} km/h reached dispatch's tracks")


async def test_cutoff_refused_while_moving_sent_when_stopped_and_audited(
    services: tuple[GpsApp, DispatchApp, str], stack: Any, topic_prefix: str
) -> None:
    gps, dispatch, token = services
    phone = f"0139{uuid.uuid4().int % 10**8:08d}"
    incident_id = uuid.uuid4()
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{dispatch.http_port}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ) as client:
        r = await client.post(
            "/api/v1/registry/vehicles",
            json={"device_id": phone, "protocol": "jt808", "plate": PLATE, "model": "JT808"},
        )
        assert r.status_code == 201, r.text
        reader, writer = await terminal_login(gps.ports["jt808"], phone)
        await publish_decision(stack, topic_prefix, theft_decision(incident_id, phone))
        for _ in range(600):  # dispatch's consumer joins its group first: generous on a loaded box
            if (await client.get(f"/api/v1/incidents/{incident_id}")).status_code == 200:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the theft incident did not open within 60 s")
        url = f"/api/v1/incidents/{incident_id}/vehicle-command"

        writer.write(report(phone, 10, 60.0, ago_s=5))
        await read_808(reader)  # 0x8001
        await wait_speed(client, incident_id, 60.0)
        moving = await client.post(url, json={"command": "cutoff", "params": {"confirm": PLATE}})
        assert moving.status_code == 200, moving.text
        assert moving.json()["reply"]["status"] == "refused" and "moving" in moving.json()["reply"]["reason"]

        unconfirmed = await client.post(url, json={"command": "cutoff", "params": {"confirm": "粤B0000"}})
        assert unconfirmed.status_code == 422 and PLATE in unconfirmed.text

        # a department may read the incident but not cut the fuel; an alarm company not even see it
        for role, unit in (("department", "440304"), ("alarm_company", None)):
            body: dict[str, Any] = {"user": f"cutoff-{role}", "unit": unit, "role": role}
            if role == "alarm_company":
                body["company"] = "acme"
            t = await client.post("/api/v1/tokens", json=body)
            assert t.status_code == 201, t.text
            other = {"Authorization": f"Bearer {t.json()['token']}"}
            denied = await client.post(
                url, headers=other, json={"command": "cutoff", "params": {"confirm": PLATE}}
            )
            assert denied.status_code in (403, 404), (role, denied.text)

        writer.write(report(phone, 11, 0.0))
        await read_808(reader)
        await wait_speed(client, incident_id, 0.0)

        async def terminal() -> bytes:
            cmd = await read_808(reader)  # the first frame since: nothing was sent for the refusals
            assert cmd.header.msg_id == 0x8105
            answer = cmd.header.serial.to_bytes(2, "big") + b"\x81\x05\x00"
            writer.write(jt808.encode(0x0001, phone, 12, answer))
            return cmd.body

        task = asyncio.create_task(terminal())
        sent = await client.post(url, json={"command": "cutoff", "params": {"confirm": PLATE.lower()}})
        assert await task == b"\xf0"
        assert sent.status_code == 200 and sent.json()["reply"]["status"] == "ok", sent.text

        detail = (await client.get(f"/api/v1/incidents/{incident_id}")).json()
        recorded = [
            e["data"]["vehicle_command"] for e in detail["timeline"] if "vehicle_command" in (e["data"] or {})
        ]
        assert [c["reply"]["status"] for c in recorded] == ["refused", "ok"]
        assert all(c["params"] == {} for c in recorded)  # the typed plate is not kept
    writer.close()

    conn = await asyncpg.connect(stack.database_url)
    try:
        rows = await conn.fetch(
            "SELECT user_name, role, at, detail FROM audit_log WHERE detail->'cutoff'->>'device_id' = $1"
            " ORDER BY id",
            phone,
        )
    finally:
        await conn.close()
    audited = [json.loads(r["detail"]) if isinstance(r["detail"], str) else r["detail"] for r in rows]
    assert [a["cutoff"]["result"] for a in audited] == ["refused", "ok"]
    assert audited[0]["cutoff"]["speed_kmh"] == pytest.approx(60, abs=1)
    assert all(r["user_name"] == "dev-admin" and r["at"] is not None for r in rows)


# -- GT06 and H02 trackers: the same rules, the terminal's own answer -------------------------------------


@pytest.mark.parametrize(
    ("tracker", "cut_answer", "restore_answer", "sent"),
    [
        (Gt06Tracker, "Cut off the fuel supply: Success!", "Command error!", b"DYD,000000#"),
        (H02Tracker, "DONE", "ERROR", b",S20,"),
    ],
    ids=["gt06", "h02"],
)
async def test_gt06_and_h02_cutoff_checked_sent_answered_and_audited(
    services: tuple[GpsApp, DispatchApp, str],
    stack: Any,
    topic_prefix: str,
    tracker: type[Gt06Tracker | H02Tracker],
    cut_answer: str,
    restore_answer: str,
    sent: bytes,
) -> None:
    gps, dispatch, token = services
    t = tracker()
    plate = f"粤B{t.device[-5:]}"
    incident_id = uuid.uuid4()
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{dispatch.http_port}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ) as client:
        r = await client.post(
            "/api/v1/registry/vehicles",
            json={"device_id": t.device, "protocol": t.protocol.value, "plate": plate, "model": t.model},
        )
        assert r.status_code == 201, r.text
        await t.connect(gps)
        await publish_decision(stack, topic_prefix, theft_decision(incident_id, t.device, t.protocol))
        for _ in range(600):  # dispatch's consumer joins its group first: generous on a loaded box
            if (await client.get(f"/api/v1/incidents/{incident_id}")).status_code == 200:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the theft incident did not open within 60 s")
        url = f"/api/v1/incidents/{incident_id}/vehicle-command"

        t.report(60.0, ago_s=5)
        await wait_speed(client, incident_id, 60.0)
        moving = await client.post(url, json={"command": "cutoff", "params": {"confirm": plate}})
        assert moving.json()["reply"]["status"] == "refused" and "moving" in moving.json()["reply"]["reason"]
        unconfirmed = await client.post(url, json={"command": "cutoff", "params": {"confirm": "粤B0000"}})
        assert unconfirmed.status_code == 422

        t.report(0.0)
        await wait_speed(client, incident_id, 0.0)
        task = asyncio.create_task(t.answer(cut_answer))
        cut = await client.post(url, json={"command": "cutoff", "params": {"confirm": plate}})
        assert sent in await task  # the first command the tracker saw: nothing went for the refusal
        assert cut.status_code == 200, cut.text
        assert cut.json()["reply"]["status"] == "ok" and cut.json()["reply"]["answer"] == cut_answer

        task = asyncio.create_task(t.answer(restore_answer))
        restore = await client.post(url, json={"command": "restore", "params": {"confirm": plate}})
        await task
        assert restore.json()["reply"]["status"] == "failed"  # the terminal refused: shown as such
        assert restore.json()["reply"]["answer"] == restore_answer

        detail = (await client.get(f"/api/v1/incidents/{incident_id}")).json()
        recorded = [
            e["data"]["vehicle_command"] for e in detail["timeline"] if "vehicle_command" in (e["data"] or {})
        ]
        assert [c["reply"]["status"] for c in recorded] == ["refused", "ok", "failed"]
        assert recorded[1]["reply"]["answer"] == cut_answer
    t.writer.close()

    conn = await asyncpg.connect(stack.database_url)
    try:
        rows = await conn.fetch(
            "SELECT detail FROM audit_log WHERE detail->'cutoff'->>'device_id' = $1 ORDER BY id", t.device
        )
    finally:
        await conn.close()
    audited = [json.loads(r["detail"]) if isinstance(r["detail"], str) else r["detail"] for r in rows]
    assert [(a["cutoff"]["command"], a["cutoff"]["result"]) for a in audited] == [
        ("cutoff", "refused"),
        ("cutoff", "ok"),
        ("restore", "failed"),
    ]
