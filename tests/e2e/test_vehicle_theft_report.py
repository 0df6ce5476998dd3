"""A vehicle owner reports their car stolen: the report goes through triage like any alarm, the incident
opens at the station where the car last was, and the terminal is told to track (JT/T 808 0x8202).

triage, ingest-gps and dispatch run in this process on ephemeral ports, on the real broker, Redis and
PostgreSQL; the terminal is a real TCP client that registers, authenticates and acknowledges 0x8202.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from alarmhub_dispatch.app import DispatchApp
from alarmhub_ingest_gps.app import GpsApp
from alarmhub_ingest_gps.protocols import jt808

from .inproc import command_url, dispatch_app, gps_app, new_token, read_808, terminal_login, triage_app

PHONE = "013900000888"


@pytest.fixture
async def services(stack: Any, topic_prefix: str) -> AsyncIterator[tuple[GpsApp, DispatchApp, str]]:
    gps = gps_app(stack, topic_prefix)
    triage = triage_app(stack, topic_prefix)
    await asyncio.gather(gps.start(), triage.start())
    token = new_token()
    dispatch = dispatch_app(
        stack, topic_prefix, token, command_url(gps.ports["command"]), ALARMHUB_DISPATCH_TIMER_INTERVAL_S=0.2
    )
    await dispatch.start()
    try:
        yield gps, dispatch, token
    finally:
        await dispatch.stop()
        await asyncio.gather(gps.stop(), triage.stop())


async def test_owner_theft_report_opens_an_incident_and_starts_tracking(
    services: tuple[GpsApp, DispatchApp, str],
) -> None:
    gps, dispatch, token = services
    reader, writer = await terminal_login(gps.ports["jt808"], PHONE)

    async def terminal() -> jt808.Message:
        cmd = await read_808(reader)
        # 0x0001 terminal general response: answered serial, answered id, result 0 (OK)
        body = cmd.header.serial.to_bytes(2, "big") + cmd.header.msg_id.to_bytes(2, "big") + b"\x00"
        writer.write(jt808.encode(0x0001, PHONE, 3, body))
        return cmd

    admin = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{dispatch.http_port}", headers=admin, timeout=30
    ) as c:
        r = await c.post(
            "/api/v1/registry/vehicles",
            json={
                "device_id": PHONE,
                "protocol": "jt808",
                "plate": "粤B12345",
                "plate_colour": 1,
                "owner": "owner-zhangsan",
            },
        )
        assert r.status_code == 201, r.text
        other = await c.post(
            "/api/v1/registry/vehicles", json={"device_id": "013900000889", "protocol": "jt808"}
        )
        assert other.status_code == 201
        r = await c.post(
            "/api/v1/tokens",
            json={"user": "owner-zhangsan", "role": "vehicle_owner", "scope": {"vehicles": [PHONE]}},
        )
        assert r.status_code == 201, r.text
        owner = {"Authorization": f"Bearer {r.json()['token']}"}
        bad = await c.post(
            "/api/v1/tokens", json={"user": "x", "role": "vehicle_owner", "scope": {"vehicles": ["nope"]}}
        )
        assert bad.status_code == 422

        # the owner may report their own vehicle only, and sees no registry, units or other incidents
        assert (
            await c.post("/api/v1/vehicles/013900000889/theft-report", headers=owner, json={})
        ).status_code == 403
        assert (await c.get("/api/v1/registry/vehicles", headers=owner)).status_code == 403
        assert (await c.get("/api/v1/units", headers=owner)).json()["count"] == 0
        r = await c.post("/api/v1/tokens", json={"user": "urban", "unit": "440304", "role": "department"})
        dept = {"Authorization": f"Bearer {r.json()['token']}"}
        assert (
            await c.post(f"/api/v1/vehicles/{PHONE}/theft-report", headers=dept, json={})
        ).status_code == 403

        r = await c.post(
            "/api/v1/tokens", json={"user": "futian-desk", "unit": "440304", "role": "dispatcher"}
        )
        district = r.json()["token"]

        async def live() -> dict[str, Any]:
            async with c.stream(
                "GET", f"/api/v1/stream?access_token={district}", headers={"Authorization": ""}
            ) as s:
                async for line in s.aiter_lines():
                    if line.startswith("data:") and '"incident"' in line:
                        msg = json.loads(line[5:])
                        if msg["incident"]["source_device_id"] == PHONE:
                            return msg
            raise AssertionError("stream ended")

        stream_task = asyncio.create_task(live())
        await asyncio.sleep(0.3)

        task = asyncio.create_task(terminal())
        # last seen in Futian, given in GCJ-02 as the owner's map app shows it
        r = await c.post(
            f"/api/v1/vehicles/{PHONE}/theft-report",
            headers=owner,
            json={
                "note": "parked overnight, gone this morning",
                "lat": 22.5410,
                "lon": 114.0600,
                "crs": "GCJ02",
                "track": {"interval_s": 15, "validity_s": 7200},
                "wait_s": 20,
            },
        )
        cmd = await asyncio.wait_for(task, 10)
        assert r.status_code == 201, r.text
        out = r.json()
        assert cmd.header.msg_id == 0x8202
        assert int.from_bytes(cmd.body[0:2], "big") == 15 and int.from_bytes(cmd.body[2:6], "big") == 7200
        assert out["tracking"]["status"] == "ok"
        inc = out["incident"]
        assert (
            inc["kind"] == "vehicle_theft" and inc["decision"] == "dispatch" and inc["district"] == "440304"
        )
        assert "vehicle_owner_report" in {x["code"] for x in inc["reasons"]}
        # converted from GCJ-02 once: the stored position is WGS-84, a few hundred metres away
        assert abs(inc["location"]["lon"] - 114.0600) > 0.003

        # the station's dispatcher sees it, with the owner's report and the tracking command on the timeline
        station = inc["station"]
        r = await c.post("/api/v1/tokens", json={"user": "desk", "unit": station, "role": "dispatcher"})
        desk = {"Authorization": f"Bearer {r.json()['token']}"}
        # searched by the terminal: the station's list in the shared test database holds other tests' incidents
        listed = (await c.get("/api/v1/incidents", params={"q": PHONE}, headers=desk)).json()["items"]
        assert out["incident_id"] in {x["id"] for x in listed}
        detail = (await c.get(f"/api/v1/incidents/{out['incident_id']}", headers=desk)).json()
        assert detail["events"][0]["event"]["attributes"]["reported_by"] == "owner-zhangsan"
        cmds = [e for e in detail["timeline"] if "vehicle_command" in (e["data"] or {})]
        assert len(cmds) == 1 and cmds[0]["actor"]["role"] == "vehicle_owner"
        assert cmds[0]["data"]["vehicle_command"]["command"] == "track"

        # the owner follows their own incident (and only theirs)
        mine = (await c.get("/api/v1/incidents", headers=owner)).json()
        assert [x["id"] for x in mine["items"]] == [out["incident_id"]]
        assert (await c.get(f"/api/v1/incidents/{out['incident_id']}", headers=owner)).status_code == 200
        assert (await c.get("/api/v1/registry/accounts", headers=owner)).status_code == 403

        # and the district's console got it live
        seen = await asyncio.wait_for(stream_task, 10)
        assert seen["incident"]["id"] == out["incident_id"] and seen["incident"]["kind"] == "vehicle_theft"
    writer.close()
