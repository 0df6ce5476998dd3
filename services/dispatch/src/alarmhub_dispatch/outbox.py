"""The outbox publisher: lifecycle events committed to ``incident_outbox`` → ``incidents.events``.

Every state change queues its events in PostgreSQL in the transaction that makes it; this drains them
to Kafka in ``seq`` order and deletes what the broker took. Nothing is lost if the process dies between
the commit and the send: the next drain (or the app's timer sweep) sends it.
"""

from __future__ import annotations

import asyncio
import time

from alarmhub_events import INCIDENTS_EVENTS
from alarmhub_kafka import DurableProducer
from alarmhub_runtime import get_logger

from .metrics import DispatchMetrics, stage_timer
from .store import Store

__all__ = ["OutboxPublisher"]

log = get_logger("alarmhub.dispatch")


class OutboxPublisher:
    def __init__(self, store: Store, producer: DurableProducer, metrics: DispatchMetrics) -> None:
        self.store = store
        self.producer = producer
        self.metrics = metrics
        self._lock = asyncio.Lock()
        self._again = False
        self._task: asyncio.Task[None] | None = None

    def kick(self) -> None:
        """Have the outbox drained by a background task, so a partition's batch does not wait for the broker
        (the outbox is in PostgreSQL: nothing is lost if the process dies before)."""
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.create_task(self._in_background(), name="dispatch:outbox")

    async def _in_background(self) -> None:
        t0 = time.perf_counter()
        try:
            await self.publish()
        except Exception as exc:  # the timer's sweep retries
            log.warning("outbox_publish_deferred", error=repr(exc))
        self.metrics.batch_stage_seconds.labels("publish").observe(time.perf_counter() - t0)

    async def drain(self) -> None:
        """Wait for the background publisher (tests, stop)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def publish_soon(self) -> None:
        """Publish now, after a committed change; a failure is logged and left to the timer's sweep."""
        try:
            await self.publish()
        except Exception as exc:  # the sweeper retries; the change itself is committed
            log.warning("outbox_publish_deferred", error=repr(exc))

    async def publish(self) -> int:
        """Send queued lifecycle events (raises PublishError if the broker does not take them).

        One publisher at a time drains the whole outbox. A caller arriving while it runs does not queue
        behind it (six partitions' handlers did, and waited ~70 ms each per batch): it flags that more
        was committed and returns; the running publisher queries again before it lets go. No await lies
        between the flag check and the release, so nothing committed before a caller's return is left
        behind (and the timer's sweep would take it anyway).
        """
        if self._lock.locked():
            self._again = True
            return 0
        total = 0
        async with self._lock:
            for _ in range(100):  # bounded: at most 50k events per call
                self._again = False
                stage = stage_timer(self.metrics.batch_stage_seconds)
                pending = await self.store.pending_events(500)
                stage("outbox_read")
                if not pending:
                    if self._again:
                        continue
                    break
                await self.producer.send_many([(INCIDENTS_EVENTS, ev, ev.key) for _, ev in pending])
                stage("outbox_send")
                await self.store.mark_published([s for s, _ in pending])
                stage("outbox_mark")
                total += len(pending)
                self.metrics.events_published.inc(len(pending))
        return total
