"""Redis dies and comes back empty while alarms flow: triage degrades safely — it backs off instead of
committing, drops no alarm; its dedup windows are lost, so it may deliver an alarm twice, which dispatch
absorbs idempotently: exactly one incident per alarm."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from alarmhub_devstack.testing import new_prefix
from alarmhub_kafka import ensure_topics

from .conftest import ALARM_PATH, alarm_path, incidents_by_device, needs_services, register, restart

pytestmark = [pytest.mark.drill, pytest.mark.slow, pytest.mark.e2e, needs_services(*ALARM_PATH)]

N = 30


async def test_triage_survives_redis_restart_without_loss_or_duplicates(
    private_backing: Any, stack: Any
) -> None:
    from alarmhub_sim import dc09
    from alarmhub_sim.sites import demo_sites

    prefix = new_prefix()
    await ensure_topics(stack.kafka_bootstrap, prefix=prefix)
    sites = demo_sites(N, seed=31, line="6", company="fault-redis")
    with alarm_path(stack.kafka_bootstrap, private_backing.redis_url, stack.database_url, prefix) as path:
        async with path.client() as client:
            await register(client, sites)

            async def send_all() -> list[str]:
                replies = []
                for s in sites:
                    replies.append(await dc09.send_one("127.0.0.1", path.dc09_port, s, "1", "110", "003"))
                    await asyncio.sleep(0.05)
                return replies

            sender = asyncio.create_task(send_all())
            await asyncio.sleep(0.5)
            down = await asyncio.to_thread(restart, private_backing, "redis", 3.0)
            replies = await sender
            # ingest does not use Redis: panels are ACKed throughout
            assert replies == ["ACK"] * N

            devices = await incidents_by_device(client, "fire", {s.device_id for s in sites}, timeout=90)
            print(f"\nRedis down {down:.1f} s mid-stream; {len(devices)} incidents for {N} alarms")
            assert not set(s.device_id for s in sites) - set(devices), "lost alarms"
            assert sorted(devices) == sorted(s.device_id for s in sites), "duplicated incidents"
