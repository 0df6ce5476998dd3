"""PostgreSQL (dispatch's store of incidents) is killed and restarted under load: dispatch backs off
without committing its Kafka offsets, then catches up; every alarm becomes exactly one incident."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from alarmhub_devstack.testing import new_prefix
from alarmhub_kafka import ensure_topics

from .conftest import ALARM_PATH, alarm_path, incidents_by_device, needs_services, register, restart

pytestmark = [pytest.mark.drill, pytest.mark.slow, pytest.mark.e2e, needs_services(*ALARM_PATH)]

N = 30


async def test_dispatch_survives_postgres_restart_under_load(private_backing: Any, stack: Any) -> None:
    from alarmhub_sim import dc09
    from alarmhub_sim.sites import demo_sites

    prefix = new_prefix()
    await ensure_topics(stack.kafka_bootstrap, prefix=prefix)
    sites = demo_sites(N, seed=41, line="5", company="fault-pg")
    with alarm_path(stack.kafka_bootstrap, stack.redis_url, private_backing.postgres_url, prefix) as path:
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
            down = await asyncio.to_thread(restart, private_backing, "postgres", 2.0)
            replies = await sender
            assert replies == ["ACK"] * N, "the receiver's ACK depends on Kafka only"

            devices = await incidents_by_device(client, "fire", {s.device_id for s in sites}, timeout=120)
            print(f"\nPostgreSQL down {down:.1f} s under load; {len(devices)} incidents for {N} alarms")
            assert not set(s.device_id for s in sites) - set(devices), "lost alarms"
            assert sorted(devices) == sorted(s.device_id for s in sites), "duplicated incidents"
