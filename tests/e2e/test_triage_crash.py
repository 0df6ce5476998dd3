"""SIGKILL triage while alarms flow, restart it: every alarm still becomes exactly one incident."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from alarmhub_devstack.testing import ServiceProcess
from alarmhub_sim import dc09
from alarmhub_sim.sites import demo_sites

pytestmark = pytest.mark.drill  # a fault drill: `make drills`

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

        start = datetime.now(UTC)
        since = start.isoformat()
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

        # The database is shared with earlier tests, and this pipeline's dispatch also escalates THEIR open
        # incidents (which moves their updated_at past ``since``): count only incidents our sites opened.
        ours = {s.device_id for s in sites}

        async def our_fires() -> list[str]:
            r = await client.get("/api/v1/incidents", params={"limit": 1000, "since": since, "kind": "fire"})
            return [
                i["source_device_id"]
                for i in r.json()["items"]
                if i["source_device_id"] in ours and datetime.fromisoformat(i["opened_at"]) >= start
            ]

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if len(await our_fires()) >= N:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # a late duplicate would show now
        devices = await our_fires()
        assert not ours - set(devices), f"lost alarms: {sorted(ours - set(devices))}"
        twice = sorted(d for d, n in Counter(devices).items() if n > 1)
        assert not twice, f"one incident per site, these have more: {twice}"
