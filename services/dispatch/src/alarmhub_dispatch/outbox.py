"""The outbox publisher: lifecycle events committed to ``incident_outbox`` → ``incidents.events``.

Every state change queues its events in PostgreSQL in the transaction that makes it; this drains them
to Kafka in ``seq`` order and deletes what the broker took. Nothing is lost if the process dies between
the commit and the send: the next drain (or the app's timer sweep) sends it.

One publisher across replicas (:class:`Leadership`): the replica holding a PostgreSQL session advisory
lock on a connection of its own (a pool's connections are shared and reset, so they cannot hold one) reads,
sends and deletes; the others return at once. The outbox is read and marked on that same connection, so a
leader whose connection died cannot go on publishing, and when the holder dies PostgreSQL ends its session
and the next replica's drain or timer sweep takes the lock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

import asyncpg
from alarmhub_events import INCIDENTS_EVENTS, IncidentEvent
from alarmhub_kafka import DurableProducer
from alarmhub_runtime import get_logger

from .metrics import DispatchMetrics, stage_timer
from .store import Store
from .store.outbox import with_seq

__all__ = ["OUTBOX_LOCK_KEY", "Leadership", "OutboxPublisher"]

log = get_logger("alarmhub.dispatch")

#: the advisory lock of the outbox publisher (``pg_try_advisory_lock``), one per database
OUTBOX_LOCK_KEY = 0x616C_6F62  # "alob"

#: events read, sent and deleted at a time
_PAGE = 500

#: at most this many committed events held for the drain (beyond it the holder starts over: they are read back)
_KNOWN_MAX = 20_000


class Leadership:
    """A session advisory lock held on a dedicated connection: who publishes the outbox.

    A follower keeps its connection too and asks again on each drain (one cheap query, no reconnect)."""

    def __init__(self, store: Store, key: int = OUTBOX_LOCK_KEY) -> None:
        self.store = store
        self.key = key
        self.conn: asyncpg.Connection | None = None
        self.held = False

    async def acquire(self) -> asyncpg.Connection | None:
        """The leader's connection if this replica holds (or now took) the lock, else None."""
        if self.conn is None or self.conn.is_closed():
            self.conn, self.held = await self.store.dedicated_connection(), False
        if not self.held:
            self.held = bool(await self.conn.fetchval("SELECT pg_try_advisory_lock($1)", self.key))
            if self.held:
                log.info("outbox_leader", pid=self.conn.get_server_pid())
        return self.conn if self.held else None

    def lost(self) -> None:
        """The connection closed under it: the lock went with its session."""
        if self.conn is not None:
            self.conn.terminate()
            if self.held:
                log.warning("outbox_leadership_lost")
        self.conn, self.held = None, False

    async def release(self) -> None:
        if self.conn is not None:
            conn, self.conn, self.held = self.conn, None, False
            await conn.close()  # the session's end releases the lock


class OutboxPublisher:
    def __init__(self, store: Store, producer: DurableProducer, metrics: DispatchMetrics) -> None:
        self.store = store
        self.producer = producer
        self.metrics = metrics
        self._lock = asyncio.Lock()
        self._again = False
        self._task: asyncio.Task[None] | None = None
        self.leadership = Leadership(store)
        self._known: dict[int, IncidentEvent] = {}  # committed here, by seq: sent without reading them back

    async def close(self) -> None:
        """Give up the leadership (stop): another replica publishes from now on."""
        async with self._lock:
            await self.leadership.release()

    def remember(self, events: Iterable[tuple[int, IncidentEvent]]) -> None:
        """Events this process has just committed to the outbox (seq, event without its seq): while it is the
        publisher, its drain sends them as they are instead of reading them back from ``incident_events``.
        Only an optimisation: an event not held (committed by another replica or an action, or dropped at
        the bound) is read back as before, and a held one is the row as written."""
        if not self.leadership.held:
            return
        if len(self._known) > _KNOWN_MAX:
            self._known.clear()
        for seq, ev in events:
            self._known[seq] = with_seq(ev, seq)

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
        """Wait for the background publisher and for any publisher holding the lock (tests, stop).

        A kick that finds another publisher running (the timer's sweep, an action's publish_soon, the
        tracks consumer) only flags its commit and ends at once; the holder sends it before it lets go.
        So the background task alone being done does not mean the outbox was sent: wait for the holder
        too (the lock is fair, so taking it means the holder has finished)."""
        for _ in range(1000):  # bounded: each turn waits for one publisher to finish
            if self._task is not None and not self._task.done():
                await asyncio.shield(self._task)
            elif self._lock.locked():
                async with self._lock:
                    pass
            else:
                return

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
        behind (and the timer's sweep would take it anyway). A read of less than a page emptied the
        outbox as of that read, so the publisher reads once more only if a caller flagged a commit since
        (each drain ended on an empty read before: one statement per drain).
        """
        if self._lock.locked():
            self._again = True
            return 0
        async with self._lock:
            try:
                conn = await self.leadership.acquire()
                if conn is None:
                    return 0  # another replica is the publisher
                return await self._drain(conn)
            except BaseException:
                if self.leadership.conn is not None and self.leadership.conn.is_closed():
                    self.leadership.lost()  # e.g. its backend was terminated: the lock is gone with it
                raise

    async def _drain(self, conn: asyncpg.Connection) -> int:
        total = 0
        for _ in range(100):  # bounded: at most 50k events per call
            self._again = False
            stage = stage_timer(self.metrics.batch_stage_seconds)
            pending = await self.store.outbox.pending(conn, _PAGE, self._known)
            stage("outbox_read")
            if not pending:
                if self._again:
                    continue
                break
            await self.producer.send_many([(INCIDENTS_EVENTS, ev, ev.key) for _, ev in pending])
            stage("outbox_send")
            await self.store.outbox.mark_published(conn, [s for s, _ in pending])
            stage("outbox_mark")
            self._forget(pending[0][0], [s for s, _ in pending])
            total += len(pending)
            self.metrics.events_published.inc(len(pending))
            if len(pending) < _PAGE and not self._again:
                break  # less than a page: the outbox was empty after it, and nothing here committed since
        return total

    def _forget(self, first: int, sent: Iterable[int]) -> None:
        """Drop the held events just sent, and those below the oldest seq read (another publisher sent them)."""
        for seq in sent:
            self._known.pop(seq, None)
        for seq in [s for s in self._known if s < first]:
            del self._known[seq]
