"""SIGKILL triage while alarms flow, restart it: every alarm still becomes exactly one incident."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from alarmhub_devstack.testing import ServiceProcess
from alarmhub_sim import dc09
from alarmhub_sim.sites import demo_sites

N = 30


async def test_triage_killed_mid_stream_loses_nothing(pipeline: Any) -> None:
    sites = demo_sites(N, seed=11, line="8", company="crash-test")
    async with httpx.AsyncClient(base_url=pipeline.api, headers=pipeline.headers(), timeout=10) as client:
        for s in sites:
            assert (await client.post("/api/v1/registry/accounts", json=s.registry_record())).status_code in (
                200,
                201,
            )

        async def send_all() -> list[str]:
            replies = []
            for s in sites:  # fire (110): dispatched whatever the score, one incident per site
                replies.append(await dc09.send_one("127.0.0.1", pipeline.dc09_port, s, "1", "110", "003"))
                await asyncio.sleep(0.02)
            return replies

        since = datetime.now(UTC).isoformat()
        sender = asyncio.create_task(send_all())
        await asyncio.sleep(0.25)
        pipeline.triage.kill()  # SIGKILL mid-stream: no graceful shutdown, no final commit
        await asyncio.sleep(0.5)
        restarted = ServiceProcess(
            module=pipeline.triage.module, env=pipeline.triage.env, ports=pipeline.triage.ports
        ).start()
        pipeline.triage = restarted
        replies = await sender
        assert replies == ["ACK"] * N

        deadline = time.monotonic() + 60
        fires: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            r = await client.get("/api/v1/incidents", params={"limit": 500, "since": since})
            body = r.json()
            items = body["items"] if isinstance(body, dict) else body
            fires = [i for i in items if i.get("kind") == "fire"]
            if len(fires) >= N:
                break
            await asyncio.sleep(0.2)
        accounts = []
        for inc in fires:
            d = (await client.get(f"/api/v1/incidents/{inc['id']}")).json()
            ev = d["events"][0]
            accounts.append((ev.get("event", ev))["source"]["device_id"])
        assert len(fires) == N, f"lost alarms: {N - len(fires)}"
        assert sorted(accounts) == sorted(s.device_id for s in sites), (
            "one incident per site, none duplicated"
        )
