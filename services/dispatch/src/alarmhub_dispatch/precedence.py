"""The alarm path goes first: GPS track writes wait while a batch of triage decisions is being applied.

Why: dispatch applies decisions (``alarms.triaged``) and stores every vehicle fix (``telemetry.gps``) in one
event loop, on one PostgreSQL pool and — on a small host — the same cores as PostgreSQL and the broker. At
5,000 fixes/s the track writes arrive in a steady stream and an alarm batch queued behind them (for the
loop, a pool connection, or PostgreSQL's CPU) waits for work that nobody is waiting on. Tracks tolerate a
delay of a second; an incident does not.

The gate does not reorder anything inside either path (each consumer still handles its partitions in
offset order and commits after its handler returns), so at-least-once delivery and per-key order are
unchanged. A GPS batch waits at most ``max_wait_s``, so a steady alarm load can slow the tracks but never
stop them (the tracks consumer's lag shows it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from prometheus_client import Histogram

__all__ = ["AlarmPrecedence"]


class AlarmPrecedence:
    def __init__(self, max_wait_s: float, waited: Histogram | None = None) -> None:
        self.max_wait_s = max_wait_s
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._waited = waited

    @asynccontextmanager
    async def alarm(self) -> AsyncIterator[None]:
        """Held while an alarm batch is applied (batches of several partitions may overlap)."""
        self._active += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._active -= 1
            if not self._active:
                self._idle.set()

    @property
    def busy(self) -> bool:
        return self._active > 0

    async def yield_to_alarms(self) -> float:
        """Wait (at most ``max_wait_s``) until no alarm batch is in hand; return the seconds waited."""
        if not self._active or self.max_wait_s <= 0:
            return 0.0
        t0 = time.perf_counter()
        with suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), self.max_wait_s)
        waited = time.perf_counter() - t0
        if self._waited is not None:
            self._waited.observe(waited)
        return waited
