"""LoopMonitor: a callback that holds the event loop shows in ``alarmhub_event_loop_lag_seconds`` and the
log, a collection of the cyclic GC in ``alarmhub_gc_pause_seconds``; stop removes its GC callback."""

from __future__ import annotations

import asyncio
import gc
import time

from alarmhub_runtime import LoopMonitor
from prometheus_client import CollectorRegistry


async def test_a_held_loop_and_a_collection_are_measured() -> None:
    registry = CollectorRegistry()
    monitor = LoopMonitor(registry, interval_s=0.02, warn_s=0.1)
    monitor.start()
    try:
        await asyncio.sleep(0.1)  # a few quiet ticks
        assert (registry.get_sample_value("alarmhub_event_loop_lag_seconds_count") or 0) >= 2

        # a callback that holds the loop, as a registry rebuild did
        asyncio.get_running_loop().call_soon(time.sleep, 0.3)
        await asyncio.sleep(0.35)
        assert monitor.worst_s >= 0.25
        held = registry.get_sample_value("alarmhub_event_loop_lag_seconds_count") - registry.get_sample_value(
            "alarmhub_event_loop_lag_seconds_bucket", {"le": "0.25"}
        )
        assert held >= 1  # the held tick (a busy test host may add its own)

        gc.collect()
        assert registry.get_sample_value("alarmhub_gc_pause_seconds_count", {"generation": "2"}) >= 1
    finally:
        await monitor.stop()
    assert monitor._on_gc not in gc.callbacks
