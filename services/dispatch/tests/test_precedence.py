"""The alarm path's precedence over the GPS track writes (AlarmPrecedence): order, not speed."""

from __future__ import annotations

import asyncio

from alarmhub_dispatch.precedence import AlarmPrecedence
from prometheus_client import CollectorRegistry, Histogram


async def test_gps_batch_waits_until_the_alarm_batches_in_hand_are_applied() -> None:
    waited = Histogram("waited_seconds", "test", registry=CollectorRegistry())
    p = AlarmPrecedence(max_wait_s=60, waited=waited)
    order: list[str] = []

    async def gps() -> None:
        await p.yield_to_alarms()
        order.append("gps")

    first, second = p.alarm(), p.alarm()
    await first.__aenter__()
    await second.__aenter__()  # two partitions' batches overlap
    task = asyncio.create_task(gps())
    for _ in range(5):
        await asyncio.sleep(0)
    await first.__aexit__(None, None, None)
    for _ in range(5):
        await asyncio.sleep(0)
    assert order == [] and p.busy  # one alarm batch is still in hand
    order.append("alarms applied")
    await second.__aexit__(None, None, None)
    await asyncio.wait_for(task, 10)
    assert order == ["alarms applied", "gps"] and not p.busy
    assert waited.collect()[0].samples[1].value == 1  # _count: one wait observed


async def test_gps_is_never_stopped_by_a_steady_alarm_load() -> None:
    p = AlarmPrecedence(max_wait_s=0.05)
    async with p.alarm():  # an alarm batch that does not end while the GPS batch waits
        await asyncio.wait_for(p.yield_to_alarms(), 10)
        assert p.busy


async def test_no_wait_when_idle_or_turned_off() -> None:
    assert await AlarmPrecedence(max_wait_s=60).yield_to_alarms() == 0.0
    off = AlarmPrecedence(max_wait_s=0)
    async with off.alarm():
        assert await off.yield_to_alarms() == 0.0
