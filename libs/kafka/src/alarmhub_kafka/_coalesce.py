"""Join the batches that a poll's partitions hand over at the same moment into one call.

Why: :class:`ConsumerPipeline` runs each partition's batch through the handler concurrently. When the
handler's cost is mostly fixed per call — a database transaction of several round trips, a Redis script,
a producer flush — six partitions at a moderate rate mean six such calls for a handful of records each.
On a shared host every round trip is a wake-up of another process, so the fixed costs, not the records,
set the latency. A :class:`Coalescer` in front of the expensive call takes everything submitted in the
same event-loop iteration (and whatever arrives while a call runs) and makes one call of it.

Order: each submission's items stay in their order and submissions are concatenated in arrival order,
so per-partition (per-key) order holds. At-least-once: a submitter returns only after the call that
carried its items succeeded. If a joint call fails, each of its submissions is called again alone before
anyone hears of it, and each submitter gets its own outcome: a poison record in one partition's batch
never fails another partition's clean batch (the consumer pipeline isolates the record within its own
batch, which it could not do if the clean batch kept failing beside it). The call must leave nothing
applied when it raises (one transaction).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["Coalescer"]

T = TypeVar("T")


class Coalescer(Generic[T]):
    """``await submit(items)`` returns once ``call(all items of its round)`` has returned.

    One call runs at a time; submissions that arrive meanwhile form the next round. ``max_items`` bounds a
    round (a larger submission still goes whole, in a round of its own).
    """

    def __init__(self, call: Callable[[Sequence[T]], Awaitable[object]], *, max_items: int = 5000) -> None:
        self._call = call
        self._max_items = max_items
        self._pending: list[tuple[Sequence[T], asyncio.Future[None]]] = []
        self._runner: asyncio.Task[None] | None = None
        self.calls = 0

    async def submit(self, items: Sequence[T]) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((items, fut))
        if self._runner is None or self._runner.done():
            # a task, started on the next iteration: the other partitions' handlers of this poll, already
            # scheduled, submit first and share the call
            self._runner = asyncio.get_running_loop().create_task(self._run(), name="coalescer")
        await fut

    async def _run(self) -> None:
        while self._pending:
            round_: list[tuple[Sequence[T], asyncio.Future[None]]] = []
            n = 0
            while self._pending and (not round_ or n + len(self._pending[0][0]) <= self._max_items):
                items, fut = self._pending.pop(0)
                round_.append((items, fut))
                n += len(items)
            live = [(items, fut) for items, fut in round_ if not fut.cancelled()]
            if not live:
                continue
            merged: list[T] = [x for items, _ in live for x in items]
            self.calls += 1
            try:
                await self._call(merged)
            except asyncio.CancelledError:
                for _, fut in live:
                    if not fut.done():
                        fut.cancel()
                raise
            except Exception as exc:
                if len(live) == 1:
                    if not live[0][1].done():
                        live[0][1].set_exception(exc)
                    continue
                await self._alone(live)
                continue
            for _, fut in live:
                if not fut.done():
                    fut.set_result(None)

    async def _alone(self, live: list[tuple[Sequence[T], asyncio.Future[None]]]) -> None:
        """After a joint call failed: each submission alone, each submitter told its own outcome."""
        for items, fut in live:
            if fut.done():
                continue
            self.calls += 1
            try:
                await self._call(items)
            except asyncio.CancelledError:
                for _, f in live:
                    if not f.done():
                        f.cancel()
                raise
            except Exception as exc:
                fut.set_exception(exc)
            else:
                fut.set_result(None)
