"""How long a service's event loop was held, and the cyclic garbage collector's pauses, as metrics.

Everything a service does for a connection waits while one callback holds its event loop: a DC-09
receiver's account registry rebuild held it for 217 ms every 30 s, and every panel connecting meanwhile
waited that long for its frame to be read — found only by instrumenting by hand (``bench/e2e.py`` at 400
alarms/s). :class:`LoopMonitor` keeps that measured in every service: a timer due every ``interval_s``
records how late it ran (``alarmhub_event_loop_lag_seconds``; on a busy host this includes waiting for
a CPU), a lag over ``warn_s`` is logged (``event_loop_held``, at most one line per ``warn_every_s``), and
each collection of the cyclic garbage collector is timed by generation (``alarmhub_gc_pause_seconds``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from typing import Any

from prometheus_client import CollectorRegistry, Histogram

from ._logging import get_logger

__all__ = ["LoopMonitor"]

log = get_logger("alarmhub.runtime.stalls")

_LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_GC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class LoopMonitor:
    """The event-loop lag and GC pause metrics of one service, registered on its own registry."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        interval_s: float = 0.1,
        warn_s: float = 0.25,
        warn_every_s: float = 10.0,
    ) -> None:
        self.interval_s = interval_s
        self.warn_s = warn_s
        self.warn_every_s = warn_every_s
        self.lag = Histogram(
            "alarmhub_event_loop_lag_seconds",
            f"How late the event loop ran a timer due every {interval_s} s: how long callbacks (and, on a busy"
            " host, the wait for a CPU) held everything else",
            registry=registry,
            buckets=_LAG_BUCKETS,
        )
        self.gc_pause = Histogram(
            "alarmhub_gc_pause_seconds",
            "Pauses of the cyclic garbage collector, by generation",
            ["generation"],
            registry=registry,
            buckets=_GC_BUCKETS,
        )
        self._gc_children = [self.gc_pause.labels(str(g)) for g in range(3)]
        self._gc_started = 0.0
        self._task: asyncio.Task[None] | None = None
        self.worst_s = 0.0

    def start(self) -> None:
        gc.callbacks.append(self._on_gc)
        self._task = asyncio.create_task(self._run(), name="loop-monitor")

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._on_gc)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started:
            self._gc_children[info["generation"]].observe(time.perf_counter() - self._gc_started)
            self._gc_started = 0.0

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        warned = float("-inf")
        while True:
            due = loop.time() + self.interval_s
            await asyncio.sleep(self.interval_s)
            now = loop.time()
            late = max(now - due, 0.0)
            self.lag.observe(late)
            self.worst_s = max(self.worst_s, late)
            if late >= self.warn_s and now - warned >= self.warn_every_s:
                warned = now
                log.warning("event_loop_held", late_s=round(late, 3), interval_s=self.interval_s)
