"""SIGKILL of dispatch (the last consumer of the alarm path) mid-stream, then a restart: at-least-once
delivery redelivers what it had not committed, and its idempotent handling keeps one incident per alarm.
(Triage's SIGKILL is tests/e2e/test_triage_crash.py.)"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from alarmhub_devstack.testing import new_prefix
from alarmhub_kafka import ensure_topics

from .conftest import ALARM_PATH, alarm_path, incidents_by_device, needs_services, register

pytestmark = [pytest.mark.drill, pytest.mark.slow, pytest.mark.e2e, needs_services(*ALARM_PATH)]

N = 30


async def test_dispatch_killed_mid_stream_loses_and_duplicates_nothing(stack: Any) -> None:
    from alarmhub_sim import dc09
    from alarmhub_sim.sites import demo_sites

    prefix = new_prefix()
    await ensure_topics(stack.kafka_bootstrap, prefix=prefix)
    sites = demo_sites(N, seed=51, line="4", company="fault-kill")
    with alarm_path(stack.kafka_bootstrap, stack.redis_url, stack.database_url, prefix) as path:
        async with path.client() as client:
            await register(client, sites)

        async def send_all() -> list[str]:
            replies = []
            for s in sites:
                replies.append(await dc09.send_one("127.0.0.1", path.dc09_port, s, "1", "110", "003"))
                await asyncio.sleep(0.03)
            return replies

        sender = asyncio.create_task(send_all())
        await asyncio.sleep(0.4)
        await asyncio.to_thread(path.restart, "alarmhub_dispatch")
        assert await sender == ["ACK"] * N

        async with path.client() as client:
            devices = await incidents_by_device(client, "fire", {s.device_id for s in sites}, timeout=90)
        assert not set(s.device_id for s in sites) - set(devices), "lost alarms"
        assert sorted(devices) == sorted(s.device_id for s in sites), "duplicated incidents"
