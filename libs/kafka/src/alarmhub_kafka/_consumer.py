"""At-least-once consumption: poll, decode, process, then commit.

The loop is the asyncio shape of arroyo's strategy chain: decode → the service's step → commit.

- Offsets are committed only after the whole polled batch was processed (auto-commit is off), so a
  crash replays at most one batch and handlers must be idempotent.
- Each partition's records are processed in order (ordering per key holds); partitions of one batch
  run concurrently, bounded by ``max_concurrency``.
- A record that cannot be decoded, or that the handler rejects with :class:`InvalidEvent`, goes to
  ``alarms.dlq`` with its raw bytes and the offset moves on.
- ``fetch_max_wait_ms`` bounds how long the broker may hold a fetch when no data is waiting. Kafka
  answers as soon as one byte is there, but the dev broker (Tansu) holds every fetch for the whole wait,
  so aiokafka's default of 500 ms added up to half a second per consumer hop (measured: 115 ms median
  for a record sent at a random moment, against 7 ms at 50 ms). 50 ms costs ~20 idle fetches/s per
  consumer and bounds each hop's added latency to 50 ms on either broker.
- Any other exception is treated as transient: the batch is retried with exponential backoff and
  nothing is committed meanwhile. The loop does not poll further while it retries, which is the
  backpressure: Kafka holds the backlog, not our memory.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from alarmhub_events import Event
from pydantic import ValidationError

from ._metrics import KafkaMetrics
from ._producer import DurableProducer
from .errors import InvalidEvent

__all__ = ["BatchHandler", "ConsumerPipeline", "Message"]

log = structlog.get_logger("alarmhub.kafka")

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


class ConsumerPipeline:
    """Consume ``topics`` in ``group``, decode each value as ``model``, and hand batches to ``handler``.

    ``handler`` receives the decoded messages of one partition, in offset order. It may raise
    :class:`InvalidEvent` naming one bad message (``source_id`` = ``topic/partition/offset``); that message
    goes to the DLQ and the rest of the batch is retried without it.
    """

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
    ) -> None:
        self._bootstrap = bootstrap
        self._group = topic_prefix + group
        self._topics = [topic_prefix + t for t in topics]
        self._model = model
        self._handler = handler
        self._producer = producer
        self._metrics = metrics
        self._max_records = max_records
        self._sem = asyncio.Semaphore(max_concurrency)
        self._backoff_max_s = backoff_max_s
        self._client_id = client_id
        self._session_timeout_ms = session_timeout_ms
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._last_poll = 0.0
        self.processed = 0

    async def start(self) -> None:
        delay = 0.2
        while True:
            consumer = AIOKafkaConsumer(
                *self._topics, bootstrap_servers=self._bootstrap, group_id=self._group,
                client_id=self._client_id, enable_auto_commit=False, auto_offset_reset="earliest",
                max_poll_records=self._max_records, session_timeout_ms=self._session_timeout_ms,
                heartbeat_interval_ms=max(1000, self._session_timeout_ms // 4),
                fetch_max_wait_ms=self._fetch_max_wait_ms,
            )
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
        return (self._task is not None and not self._task.done()
                and time.monotonic() - self._last_poll < 30.0)

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
        while not self._stopping.is_set():
            try:
                batches = await consumer.getmany(timeout_ms=200, max_records=self._max_records)
            except KafkaError as exc:
                log.warning("kafka_poll_failed", error=repr(exc))
                await asyncio.sleep(0.5)
                continue
            self._last_poll = time.monotonic()
            if not batches:
                continue
            await asyncio.gather(*(self._process_partition(tp, recs) for tp, recs in batches.items()))
            offsets = {tp: recs[-1].offset + 1 for tp, recs in batches.items() if recs}
            await self._commit(consumer, offsets)
            self._update_lag(consumer, offsets)

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
                self._metrics.lag.labels(self._group, tp.topic, str(tp.partition)).set(max(0, end - committed))

    def _decode(self, rec: ConsumerRecord) -> Message[Any] | None:
        return Message(
            topic=rec.topic, partition=rec.partition, offset=rec.offset,
            key=rec.key.decode("utf-8", "replace") if rec.key else None,
            value=self._model.model_validate_json(rec.value or b""), raw=rec.value or b"",
            timestamp_ms=rec.timestamp,
        )

    async def _process_partition(self, tp: TopicPartition, records: list[ConsumerRecord]) -> None:
        msgs: list[Message[Any]] = []
        for rec in records:
            try:
                msg = self._decode(rec)
            except (ValidationError, ValueError) as exc:
                await self._dead_letter(rec.topic, rec.partition, rec.offset, rec.value or b"", "decode", str(exc))
                continue
            if msg is not None:
                msgs.append(msg)
        delay = 0.2
        async with self._sem:
            while msgs:
                t0 = time.perf_counter()
                try:
                    await self._handler(msgs)
                except InvalidEvent as exc:
                    bad = [m for m in msgs if f"{m.topic}/{m.partition}/{m.offset}" == exc.source_id]
                    if not bad:
                        raise RuntimeError(f"InvalidEvent names no message of the batch: {exc.source_id}") from exc
                    await self._dead_letter(tp.topic, tp.partition, bad[0].offset, bad[0].raw, "process", exc.reason)
                    msgs = [m for m in msgs if m is not bad[0]]
                    continue
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self._metrics.retries.labels(tp.topic).inc()
                    log.warning("batch_failed_retrying", topic=tp.topic, partition=tp.partition,
                                first_offset=msgs[0].offset, error=repr(exc), retry_in_s=delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._backoff_max_s)
                    continue
                self._metrics.batch_seconds.labels(tp.topic).observe(time.perf_counter() - t0)
                self._metrics.consumed.labels(tp.topic, "ok").inc(len(msgs))
                self.processed += len(msgs)
                return

    async def _dead_letter(self, topic: str, partition: int, offset: int, raw: bytes, stage: str, error: str) -> None:
        self._metrics.consumed.labels(topic, "dlq").inc()
        delay = 0.2
        while True:
            try:
                await self._producer.dead_letter(
                    stage=stage, source_id=f"{topic}/{partition}/{offset}", error=error, raw=raw,
                    source_topic=topic, source_partition=partition, source_offset=offset)
                return
            except Exception as exc:  # the DLQ write must succeed before the offset may move on
                log.warning("dlq_write_failed", error=repr(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff_max_s)
