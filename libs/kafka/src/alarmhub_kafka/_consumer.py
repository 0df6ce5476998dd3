"""At-least-once consumption: poll, decode, process, then commit.

The loop is the asyncio shape of arroyo's strategy chain: decode → the service's step → commit.

- Offsets are committed only after the whole polled batch was processed (auto-commit is off), so a
  crash replays at most the polls in flight and handlers must be idempotent.
- Each partition's records are processed in order (ordering per key holds); partitions of one batch
  run concurrently, bounded by ``max_concurrency``.
- Polls are pipelined: up to ``max_polls_in_flight`` (default 2) polls are handled at once, so the
  next poll's records are decoded and its other partitions handled while the previous poll's last
  batch still waits on its dependencies or its commit is in flight. Per partition a batch starts only
  after the partition's previous batch finished (offset order). Commits go out in poll order, each
  once every batch of its poll (and of every earlier poll) was handled: only handled offsets are
  committed (at-least-once). Before partitions are revoked (rebalance) and on stop, the work in flight
  is finished and committed.
- Commits are coalesced: the offsets of finished polls are committed at most every
  ``commit_interval_ms`` (default 200), not after every poll — at 400 records/s the consumer polls ~20
  times a second and each commit is a round trip the client and the broker pay for. Only finished polls'
  offsets are ever committed; a crash replays at most ``commit_interval_ms`` more (handlers are
  idempotent). Whatever is finished is committed on stop, before a revoke, and while the loop waits on
  a poll still in flight once the interval is up. ``commit_interval_ms=0`` commits after every poll.
- A record that cannot be decoded, or that the handler rejects with :class:`InvalidEvent`, goes to
  ``alarms.dlq`` with its raw bytes and the offset moves on.
- Any other exception is judged by :func:`classify` (``_failures.py``). A transient one (the broker, a
  connection, a timeout, PostgreSQL shutting down) retries the batch with exponential backoff and
  nothing is committed meanwhile; the loop does not poll further while it retries, which is the
  backpressure: Kafka holds the backlog, not our memory. A deterministic one (validation, PostgreSQL
  DataError/IntegrityError) or an unknown one splits the batch in halves, in order, until the failing
  record is alone; that record goes to ``alarms.dlq`` with the reason (an unknown error after a few
  retries of the record alone) and the records before and after it are handled: one poison record
  never holds its partition. A dead-lettered alarm of a life-safety kind counts in
  ``alarmhub_kafka_dlq_life_safety_messages_total``, which pages at once.
- ``fetch_max_wait_ms`` bounds how long the broker may hold a fetch when no data is waiting. Kafka
  answers as soon as one byte is there, but the dev broker (Tansu) holds every fetch for the whole wait,
  so aiokafka's default of 500 ms added up to half a second per consumer hop (measured: 115 ms median
  for a record sent at a random moment, against 7 ms at 50 ms). 50 ms costs ~20 idle fetches/s per
  consumer and bounds each hop's added latency to 50 ms on either broker.
- ``fetch_min_bytes`` (default 1: a fetch is answered once any record is there) lets the broker hold a
  fetch until that many bytes wait, or ``fetch_max_wait_ms`` passed: fewer, larger fetches and polls (and
  handler calls) for up to ``fetch_max_wait_ms`` more per hop. Under load a consumer with 1 fetches about
  once per produce request it reads (``bench/kafka_requests.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from alarmhub_events import Event
from alarmhub_runtime import get_logger
from pydantic import ValidationError

from ._failures import Failure, classify
from ._kinds import LIFE_SAFETY as _LIFE_SAFETY
from ._kinds import alarm_kind, alarm_kind_of_raw
from ._metrics import KafkaMetrics
from ._producer import DurableProducer
from ._security import PLAINTEXT, KafkaSecurity
from .errors import InvalidEvent

__all__ = ["BatchHandler", "ConsumerPipeline", "Message"]

log = get_logger("alarmhub.kafka")

E = TypeVar("E", bound=Event)


@dataclass(frozen=True, slots=True)
class Message(Generic[E]):
    topic: str
    partition: int
    offset: int
    key: str | None
    value: E
    raw: bytes
    timestamp_ms: int


BatchHandler = Callable[[Sequence[Message[Any]]], Awaitable[None]]


@dataclass(slots=True)
class _Poll:
    """One poll in flight: a task per partition batch, and the offsets to commit once all are done."""

    tasks: list[asyncio.Task[None]]
    offsets: dict[TopicPartition, int] = field(default_factory=dict)

    def done(self) -> bool:
        return all(t.done() for t in self.tasks)


class _FinishBeforeRevoke(ConsumerRebalanceListener):
    """Before partitions are taken away, the polls in flight are finished and committed (the new owner
    starts from there instead of replaying them)."""

    def __init__(self, pipeline: ConsumerPipeline) -> None:
        self._pipeline = pipeline

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._pipeline._drain(timeout=self._pipeline._revoke_timeout_s)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        return None


class ConsumerPipeline:
    """Consume ``topics`` in ``group``, decode each value as ``model``, and hand batches to ``handler``.

    ``handler`` receives the decoded messages of one partition, in offset order (after a failure, a part
    of them). It may raise :class:`InvalidEvent` naming one bad message (``source_id`` =
    ``topic/partition/offset``); that message goes to the DLQ and the rest of the batch is retried
    without it. Any other error is classified (transient: retried; the record's: isolated and
    dead-lettered), so the handler must be idempotent and must not leave half a batch applied when it
    raises (one transaction, or work keyed so a replay repeats nothing).
    """

    #: records decoded between two yields to the event loop: decoding a poll of thousands holds the loop
    #: for tens of ms, during which the other batches in flight could not send their next request
    DECODE_SLICE = 256

    @classmethod
    def from_settings(
        cls,
        settings: Any,
        *,
        topics: Sequence[str],
        model: type[Any],  # an Event subclass
        handler: BatchHandler,
        producer: DurableProducer,
        metrics: KafkaMetrics,
        client_id: str,
        group_suffix: str = "",
        **options: Any,
    ) -> ConsumerPipeline:
        """Build from a service's settings (``alarmhub_runtime.BaseServiceSettings`` with a ``group``): the
        bootstrap servers, the group (``settings.group`` + ``group_suffix``), the topic prefix and the
        session timeout come from them; ``options`` are the other keyword arguments (``max_records`` …)."""
        return cls(
            bootstrap=settings.kafka_bootstrap,
            group=settings.group + group_suffix,
            topics=topics,
            model=model,
            handler=handler,
            producer=producer,
            metrics=metrics,
            topic_prefix=settings.topic_prefix,
            client_id=client_id,
            session_timeout_ms=settings.kafka_session_timeout_ms,
            security=KafkaSecurity.from_settings(settings),
            **options,
        )

    def __init__(
        self,
        *,
        bootstrap: str,
        group: str,
        topics: Sequence[str],
        model: type[E],
        handler: BatchHandler,
        producer: DurableProducer,
        metrics: KafkaMetrics,
        topic_prefix: str = "",
        max_records: int = 500,
        max_concurrency: int = 8,
        backoff_max_s: float = 5.0,
        client_id: str = "alarmhub",
        session_timeout_ms: int = 10_000,
        fetch_max_wait_ms: int = 50,
        fetch_min_bytes: int = 1,
        max_polls_in_flight: int = 2,
        unknown_max_attempts: int = 8,
        security: KafkaSecurity = PLAINTEXT,
        wanted: Callable[[bytes], bool] | None = None,
        commit_interval_ms: int = 200,
    ) -> None:
        """``wanted``: a cheap test of a record's raw value; a record it refuses is neither decoded nor handed
        to the handler (its offset is committed with the rest): for a consumer that acts on a few records of a
        busy topic. It must accept every record the handler would act on (and may accept more)."""
        self._bootstrap = bootstrap
        self._group = topic_prefix + group
        self._topics = [topic_prefix + t for t in topics]
        self._model = model
        self._wanted = wanted
        self._handler = handler
        self._producer = producer
        self._metrics = metrics
        self._max_records = max_records
        self._sem = asyncio.Semaphore(max_concurrency)
        self._backoff_max_s = backoff_max_s
        self._client_id = client_id
        self._session_timeout_ms = session_timeout_ms
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._fetch_min_bytes = fetch_min_bytes
        self._security = security
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._last_poll = 0.0
        self._max_polls = max(1, max_polls_in_flight)
        self._inflight: deque[_Poll] = deque()
        self._last_batch: dict[TopicPartition, asyncio.Task[None]] = {}
        self._finish_lock = asyncio.Lock()
        self._revoke_timeout_s = max(5.0, session_timeout_ms / 1000)
        self._unknown_max_attempts = max(1, unknown_max_attempts)
        self._last_success = 0.0
        self._commit_interval_s = max(0, commit_interval_ms) / 1000
        self._pending: dict[TopicPartition, int] = {}  # finished polls' offsets not committed yet
        self._last_commit = 0.0
        self._commit_lock = asyncio.Lock()
        self.processed = 0
        for topic in self._topics:  # every series exists from the start: an alert sees its first increase
            for kind in _LIFE_SAFETY:
                metrics.dlq_life_safety.labels(topic, kind)

    def new_client(self) -> AIOKafkaConsumer:
        """The aiokafka consumer :meth:`start` connects (built, not started: its options can be inspected)."""
        return AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=self._group,
            client_id=self._client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self._max_records,
            session_timeout_ms=self._session_timeout_ms,
            heartbeat_interval_ms=max(1000, self._session_timeout_ms // 4),
            fetch_max_wait_ms=self._fetch_max_wait_ms,
            fetch_min_bytes=self._fetch_min_bytes,
            **self._security.client_kwargs(),
        )

    async def start(self) -> None:
        delay = 0.2
        while True:
            consumer = self.new_client()
            # subscribed before start, as topics given to the constructor are (start then waits for them)
            consumer.subscribe(self._topics, listener=_FinishBeforeRevoke(self))
            try:
                await consumer.start()
                break
            except KafkaError as exc:
                await consumer.stop()
                log.warning("kafka_consumer_connect_failed", error=repr(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff_max_s)
        self._consumer = consumer
        self._last_poll = time.monotonic()
        self._task = asyncio.create_task(self._run(), name=f"consume:{self._group}")
        log.info("kafka_consumer_started", group=self._group, topics=self._topics)

    def ready(self) -> bool:
        """Polling recently (a stuck retry loop or a dead task makes the service not ready)."""
        return self._task is not None and not self._task.done() and time.monotonic() - self._last_poll < 30.0

    async def stop(self) -> None:
        """Finish the batch in hand, commit it, leave the group."""
        self._stopping.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 15.0)
            except TimeoutError:
                self._task.cancel()
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def _run(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        try:
            while not self._stopping.is_set():
                # finish what is done (in poll order); hold at most max_polls_in_flight polls
                while self._inflight and (len(self._inflight) >= self._max_polls or self._inflight[0].done()):
                    await self._finish_oldest()
                if self._pending and self._commit_due() <= 0:
                    await self._commit_pending()
                try:
                    # with work in flight, take only what is already fetched: if nothing is, finish the
                    # oldest poll rather than wait for records; with offsets waiting, wait no longer than
                    # their commit is due
                    wait_ms = 0 if self._inflight else 200
                    if self._pending:
                        wait_ms = min(wait_ms, max(0, int(self._commit_due() * 1000) + 1))
                    batches = await consumer.getmany(timeout_ms=wait_ms, max_records=self._max_records)
                except KafkaError as exc:
                    log.warning("kafka_poll_failed", error=repr(exc))
                    await asyncio.sleep(0.5)
                    continue
                self._last_poll = time.monotonic()
                if not batches:
                    if self._inflight:
                        await self._finish_oldest()
                    continue
                self._inflight.append(self._start_poll(batches))
            await self._drain()
        except Exception:
            await self._commit_pending()  # what finished before the failure stays committed
            raise
        finally:
            for poll in self._inflight:  # only left when a handler failed for good or the task was cancelled
                for t in poll.tasks:
                    t.cancel()

    def _start_poll(self, batches: dict[TopicPartition, list[ConsumerRecord]]) -> _Poll:
        poll = _Poll(tasks=[])
        for tp, recs in batches.items():
            if not recs:
                continue
            task = asyncio.create_task(self._process_partition(tp, recs, after=self._last_batch.get(tp)))
            self._last_batch[tp] = task
            poll.tasks.append(task)
            poll.offsets[tp] = recs[-1].offset + 1
        return poll

    async def _finish_oldest(self) -> None:
        """Wait for the oldest poll in flight, add its offsets to the ones to commit, drop it; commit them
        once due (:meth:`_commit_due`). Offsets join in poll order, so a commit never skips a poll."""
        async with self._finish_lock:
            if not self._inflight:
                return
            poll = self._inflight[0]
            if self._pending and poll.tasks and not poll.done():
                # waiting anyway: what finished before goes out when due, not only after this poll
                await asyncio.wait(poll.tasks, timeout=max(0.0, self._commit_due()))
                if not poll.done():
                    await self._commit_pending()
            await asyncio.gather(*poll.tasks)
            self._pending.update(poll.offsets)
            self._inflight.popleft()
            for tp, task in list(self._last_batch.items()):
                if task.done():
                    del self._last_batch[tp]
            if self._commit_due() <= 0:
                await self._commit_pending()

    def _commit_due(self) -> float:
        """Seconds until the finished offsets are due for commit (≤ 0: now)."""
        return self._last_commit + self._commit_interval_s - time.monotonic()

    async def _commit_pending(self) -> None:
        """Commit the finished polls' offsets now (if any)."""
        async with self._commit_lock:  # one commit at a time: a later one never lands before an earlier
            if not self._pending or self._consumer is None:
                return
            offsets, self._pending = self._pending, {}
            self._last_commit = time.monotonic()
            await self._commit(self._consumer, offsets)
            self._update_lag(self._consumer, offsets)

    async def _drain(self, timeout: float | None = None) -> None:
        """Finish and commit every poll in flight (stop, and before partitions are revoked)."""
        try:
            async with asyncio.timeout(timeout):
                while self._inflight:
                    await self._finish_oldest()
        except TimeoutError:
            # the new owner replays what is left uncommitted (at-least-once); our late commits then fail
            log.warning("kafka_inflight_not_finished_before_revoke", polls=len(self._inflight))
        await self._commit_pending()

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        delay = 0.2
        while True:
            try:
                await consumer.commit(offsets)
                return
            except KafkaError as exc:
                # A rebalance took the partition away: the new owner replays from the last commit.
                if "CommitFailed" in type(exc).__name__ or "IllegalState" in type(exc).__name__:
                    log.warning("kafka_commit_lost_to_rebalance", error=repr(exc))
                    return
                log.warning("kafka_commit_failed", error=repr(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff_max_s)

    def _update_lag(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        for tp, committed in offsets.items():
            end = consumer.highwater(tp)
            if end is not None:
                self._metrics.lag.labels(self._group, tp.topic, str(tp.partition)).set(
                    max(0, end - committed)
                )

    def _decode(self, rec: ConsumerRecord) -> Message[Any] | None:
        if self._wanted is not None and not self._wanted(rec.value or b""):
            return None
        return Message(
            topic=rec.topic,
            partition=rec.partition,
            offset=rec.offset,
            key=rec.key.decode("utf-8", "replace") if rec.key else None,
            value=self._model.model_validate_json(rec.value or b""),
            raw=rec.value or b"",
            timestamp_ms=rec.timestamp,
        )

    async def _process_partition(
        self, tp: TopicPartition, records: list[ConsumerRecord], after: asyncio.Task[None] | None = None
    ) -> None:
        """Decode ``records``, then (once ``after``, the partition's previous batch, finished) handle them."""
        msgs: list[Message[Any]] = []
        for i, rec in enumerate(records):
            if i and not i % self.DECODE_SLICE:
                await asyncio.sleep(0)  # let other tasks' I/O continuations run (e.g. the next state call)
            try:
                msg = self._decode(rec)
            except (ValidationError, ValueError) as exc:
                await self._dead_letter(
                    rec.topic,
                    rec.partition,
                    rec.offset,
                    rec.value or b"",
                    "decode",
                    str(exc),
                    key=rec.key.decode("utf-8", "replace") if rec.key else None,
                )
                continue
            if msg is not None:
                msgs.append(msg)
        if after is not None and not after.done():
            await asyncio.shield(after)  # offset order within the partition (its failure fails this one too)
        elif after is not None and not after.cancelled() and after.exception() is not None:
            raise RuntimeError("the partition's previous batch failed") from after.exception()
        async with self._sem:
            await self._handle_isolating(tp, msgs)

    async def _handle_isolating(self, tp: TopicPartition, msgs: list[Message[Any]]) -> None:
        """Hand ``msgs`` to the handler; on failure tell whose fault it is (:func:`classify`).

        Transient: the same records again after a backoff, for as long as it takes. The record's fault
        (or unknown): split the batch in halves, in order, until the failing record is alone, then send it
        to the DLQ with the reason; the records before and after it are handled as usual.
        """
        segments: deque[list[Message[Any]]] = deque([msgs])
        delay = 0.2
        attempts = 0  # of the single record at the head, failing with an unknown error
        first_failure = 0.0  # when the head record's first failing attempt began
        handled_some = False
        while segments:
            seg = segments[0]
            t0, started = time.perf_counter(), time.monotonic()
            try:
                await self._handler(seg)
            except asyncio.CancelledError:
                raise
            except InvalidEvent as exc:
                await self._drop_invalid(segments, exc)
                continue
            except Exception as exc:
                kind = classify(exc)
                if kind is Failure.TRANSIENT:
                    self._metrics.retries.labels(tp.topic).inc()
                    log.warning(
                        "batch_failed_retrying",
                        topic=tp.topic,
                        partition=tp.partition,
                        first_offset=seg[0].offset,
                        records=len(seg),
                        error=repr(exc)[:500],
                        retry_in_s=delay,
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._backoff_max_s)
                    continue
                if len(seg) > 1:
                    self._split(tp, segments, kind, exc)
                    continue
                if kind is Failure.UNKNOWN:
                    attempts += 1
                    if attempts == 1:
                        # from the attempt's start: another partition's batch handled in the same call
                        # (a Coalescer's joint call, run again per batch) succeeded just before it failed
                        first_failure = started
                    # the handler works for other records (this batch's, or any since): the record is the problem
                    others_ok = handled_some or self._last_success > first_failure
                    if attempts < self._unknown_max_attempts and not (attempts >= 3 and others_ok):
                        self._metrics.retries.labels(tp.topic).inc()
                        log.warning(
                            "record_failed_retrying",
                            topic=tp.topic,
                            partition=tp.partition,
                            offset=seg[0].offset,
                            attempt=attempts,
                            error=repr(exc)[:500],
                            retry_in_s=delay,
                        )
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, self._backoff_max_s)
                        continue
                reason = f"{kind.value}: {type(exc).__name__}: {exc}"
                if attempts:
                    reason += f" (failed alone {attempts} times)"
                await self._dead_letter_message(seg[0], reason)
                segments.popleft()
                attempts, delay = 0, 0.2
                continue
            self._last_success = time.monotonic()
            handled_some = True
            seconds, consumed = self._metrics.handled(tp.topic)
            seconds.observe(time.perf_counter() - t0)
            consumed.inc(len(seg))
            self.processed += len(seg)
            segments.popleft()
            attempts, delay = 0, 0.2

    async def _drop_invalid(self, segments: deque[list[Message[Any]]], exc: InvalidEvent) -> None:
        """The handler named the record it cannot take: that one to the DLQ, the rest of the segment stays."""
        seg = segments[0]
        bad = [m for m in seg if f"{m.topic}/{m.partition}/{m.offset}" == exc.source_id]
        if not bad:
            raise RuntimeError(f"InvalidEvent names no message of the batch: {exc.source_id}") from exc
        await self._dead_letter_message(bad[0], exc.reason)
        segments[0] = [m for m in seg if m is not bad[0]]
        if not segments[0]:
            segments.popleft()

    def _split(
        self, tp: TopicPartition, segments: deque[list[Message[Any]]], kind: Failure, exc: Exception
    ) -> None:
        """Replace the failing head segment by its two halves, in order (bisecting towards the bad record)."""
        seg = segments.popleft()
        half = len(seg) // 2
        segments.extendleft((seg[half:], seg[:half]))
        self._metrics.splits.labels(tp.topic).inc()
        log.warning(
            "batch_split_to_isolate_failure",
            topic=tp.topic,
            partition=tp.partition,
            first_offset=seg[0].offset,
            records=len(seg),
            failure=kind.value,
            error=repr(exc)[:500],
        )

    async def _dead_letter_message(self, msg: Message[Any], reason: str) -> None:
        await self._dead_letter(
            msg.topic,
            msg.partition,
            msg.offset,
            msg.raw,
            "process",
            reason,
            kind=alarm_kind(msg.value),
            key=msg.key,
        )

    async def _dead_letter(
        self,
        topic: str,
        partition: int,
        offset: int,
        raw: bytes,
        stage: str,
        error: str,
        *,
        kind: str | None = None,
        key: str | None = None,
    ) -> None:
        kind = kind or alarm_kind_of_raw(raw)
        self._metrics.consumed.labels(topic, "dlq").inc()
        delay = 0.2
        while True:
            try:
                await self._producer.dead_letter(
                    stage=stage,
                    source_id=f"{topic}/{partition}/{offset}",
                    error=error,
                    raw=raw,
                    source_topic=topic,
                    source_partition=partition,
                    source_offset=offset,
                    kind=kind,
                    source_key=key,
                )
                break
            except Exception as exc:  # the DLQ write must succeed before the offset may move on
                log.warning("dlq_write_failed", error=repr(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff_max_s)
        if kind in _LIFE_SAFETY:
            self._metrics.dlq_life_safety.labels(topic, kind).inc()
            log.error(
                "life_safety_alarm_dead_lettered",
                topic=topic,
                partition=partition,
                offset=offset,
                kind=kind,
                error=error[:500],
            )
