"""A producer whose ``send`` returns only once the broker has the write (``acks=all``).

Callers ACK upstream (a panel, a tracker, an HTTP client) only after ``send`` returns: that is the
platform's durability rule. ``send_many`` pipelines many writes and waits for all of them, which
is how ingest services batch without giving up that rule.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import TopicPartition
from alarmhub_events import ALARMS_DLQ, DlqRecord, Event, utcnow
from alarmhub_runtime import get_logger

from ._metrics import KafkaMetrics
from ._security import PLAINTEXT, KafkaSecurity
from .errors import PublishError

__all__ = ["DurableProducer", "murmur2"]

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 of a record key (the Java client's ``Utils.murmur2``), as aiokafka computes it.

    Same result as ``aiokafka.partitioner.murmur2``, reading the 4-byte blocks with one
    ``struct.unpack_from`` instead of byte by byte: about half the cost per key.
    """
    n = len(data)
    h = (0x9747B28C ^ n) & _MASK
    n4 = n >> 2
    if n4:
        for k in struct.unpack_from(f"<{n4}I", data):
            k = (k * _M) & _MASK
            k ^= k >> 24
            h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    rest = n & 3
    if rest:
        i = n4 << 2
        if rest == 3:
            h ^= data[i + 2] << 16
        if rest >= 2:
            h ^= data[i + 1] << 8
        h ^= data[i]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


log = get_logger("alarmhub.kafka")


def _retrieve(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


async def _all_confirmed(futures: list[asyncio.Future[Any]]) -> None:
    """Wait until every record's future is resolved; raise the first failure in send order.

    The records of one call mostly share a record batch, whose futures aiokafka resolves together: awaiting
    them in turn suspends about once per batch and the rest are already done. ``asyncio.gather`` added a
    callback to each, run as a loop callback per record when its batch landed (≈1.4 µs a record,
    in-process). When one fails (or the wait is cancelled) the others' outcomes are still retrieved, so
    none is logged as an exception never retrieved.
    """
    for i, fut in enumerate(futures):
        try:
            await fut
        except BaseException:
            for rest in futures[i + 1 :]:
                rest.add_done_callback(_retrieve)
            raise


class DurableProducer:
    def __init__(
        self,
        bootstrap: str,
        *,
        metrics: KafkaMetrics,
        client_id: str,
        topic_prefix: str = "",
        service: str = "",
        request_timeout_ms: int = 10_000,
        linger_ms: int = 2,
        enable_idempotence: bool = False,
        batch_threshold: int | None = None,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        # Idempotence is off by default because the dev broker (Tansu) does not implement it; production
        # turns it on through configuration. acks=all is what makes a write durable on a real cluster
        # with min.insync.replicas=2.
        self._bootstrap = bootstrap
        self._metrics = metrics
        self._prefix = topic_prefix
        self._service = service or client_id
        self._kwargs = dict(
            bootstrap_servers=bootstrap,
            client_id=client_id,
            acks="all",
            linger_ms=linger_ms,
            request_timeout_ms=request_timeout_ms,
            enable_idempotence=enable_idempotence,
            max_batch_size=256 * 1024,
            retry_backoff_ms=200,
            **security.client_kwargs(),
        )
        self._producer: AIOKafkaProducer | None = None
        # Calls of at least this many records go through the batch API, the others record by record
        # through send(), which appends to the partition's open batch. The batch API makes batches of its
        # own per call and waits for the partition's open one to drain; with many concurrent small calls
        # (the GPS gateway writes each event-loop iteration's reads as its own task) those batches queue a
        # broker round trip each per partition and callers fail with KafkaTimeoutError (bench/gps.py
        # trackers, docs/capacity.md) — such a producer sets a high threshold.
        self._batch_threshold = self.BATCH_THRESHOLD if batch_threshold is None else batch_threshold
        self._partitioner = DefaultPartitioner()
        self._partitions: dict[str, tuple[float, list[int]]] = {}
        # key → partition per topic, valid for one partition list (murmur2 in Python costs ~5 µs a key)
        self._key_partitions: dict[str, tuple[list[int], dict[bytes | None, int]]] = {}
        self._tps: dict[tuple[str, int], TopicPartition] = {}
        self._timeout_s = request_timeout_ms / 1000
        self._started = asyncio.Event()
        self._last_ok = 0.0
        self._last_error = 0.0

    @classmethod
    def from_settings(
        cls, settings: Any, *, metrics: KafkaMetrics, client_id: str, batch_threshold: int | None = None
    ) -> DurableProducer:
        """Build from a service's settings (``alarmhub_runtime.BaseServiceSettings``)."""
        return cls(
            settings.kafka_bootstrap,
            metrics=metrics,
            client_id=client_id,
            topic_prefix=settings.topic_prefix,
            service=client_id,
            enable_idempotence=settings.kafka_idempotence,
            batch_threshold=batch_threshold,
            security=KafkaSecurity.from_settings(settings),
        )

    def topic(self, name: str) -> str:
        return self._prefix + name

    def new_client(self) -> AIOKafkaProducer:
        """The aiokafka producer :meth:`start` connects (built, not started: its options can be inspected)."""
        return AIOKafkaProducer(**self._kwargs)

    async def start(self, *, wait: bool = True, backoff_max_s: float = 5.0) -> None:
        """Connect, retrying with backoff while the broker is unreachable."""
        delay = 0.2
        while True:
            producer = self.new_client()
            try:
                await producer.start()
                self._producer = producer
                self._started.set()
                log.info("kafka_producer_started", bootstrap=self._bootstrap)
                return
            except KafkaError as exc:
                await producer.stop()
                if not wait:
                    raise
                log.warning("kafka_producer_connect_failed", error=repr(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, backoff_max_s)

    async def stop(self) -> None:
        if self._producer is not None:
            try:
                await self._producer.flush()
            finally:
                await self._producer.stop()
            self._producer = None

    def ready(self) -> bool:
        """Connected, and no write failed more recently than one succeeded."""
        return self._producer is not None and self._last_error <= self._last_ok

    async def send(self, topic: str, event: Event, key: str | None = None) -> None:
        await self.send_many([(topic, event, key)])

    async def send_raw(self, topic: str, value: bytes, key: str | None) -> None:
        await self._send_values([(topic, value, key)])

    async def send_raw_many(self, items: Sequence[tuple[str, bytes, str | None]]) -> None:
        """Like :meth:`send_many` for values already serialized (saves re-encoding on hot paths)."""
        await self._send_values(items)

    async def send_many(self, items: Sequence[tuple[str, Event, str | None]]) -> None:
        """Write every item and return when the broker acknowledged all of them; raise PublishError otherwise."""
        values = [(t, ev.to_bytes(), k if k is not None else getattr(ev, "key", None)) for t, ev, k in items]
        await self._send_values(values)

    #: from this many records on, one call is written through aiokafka's batch API, which costs
    #: about a third less per record than ``send()`` each (bench: producer 61k → 84k records/s)
    BATCH_THRESHOLD = 16

    async def _send_values(self, values: Iterable[tuple[str, bytes, str | None]]) -> None:
        if self._producer is None:
            raise PublishError("producer not started")
        t0 = time.perf_counter()
        items = values if isinstance(values, list) else list(values)
        per_topic: dict[str, int] = {}
        prefix = self._prefix
        try:
            if len(items) >= self._batch_threshold:
                futures = await self._send_batched(items, per_topic)
            else:
                send, append = self._producer.send, self._append
                futures = []
                memos: dict[str, tuple[list[int], dict[bytes | None, int]]] = {}
                for topic, value, key in items:
                    full = prefix + topic
                    per_topic[full] = per_topic.get(full, 0) + 1
                    if key:
                        # the partition from the memo (as the batched path): aiokafka's own partitioner
                        # hashes every key again in Python and lists the topic's partitions twice
                        kb = key.encode()
                        memo = memos.get(full)
                        if memo is None:
                            memo = memos[full] = await self._key_memo(full)
                        futures.append(await append(full, self._keyed_partition(memo, kb), kb, value))
                    else:
                        futures.append(await send(full, value, key=None))
            await _all_confirmed(futures)
        except (TimeoutError, KafkaError) as exc:
            self._last_error = time.monotonic()
            for t, n in per_topic.items():
                self._metrics.produced.labels(t, "error").inc(n)
            raise PublishError(f"broker did not confirm the write: {exc!r}") from exc
        elapsed = time.perf_counter() - t0
        self._last_ok = time.monotonic()
        # Metrics once per topic per call, not per record, their series resolved once per topic: this is
        # the ingest hot path.
        for t, n in per_topic.items():
            produced, seconds = self._metrics.produced_ok(t)
            produced.inc(n)
            seconds.observe(elapsed)

    async def _partitions_of(self, topic: str) -> list[int]:
        cached = self._partitions.get(topic)
        if cached is not None and time.monotonic() - cached[0] < 60.0:
            return cached[1]
        assert self._producer is not None
        parts = sorted(await self._producer.partitions_for(topic))
        self._partitions[topic] = (time.monotonic(), parts)
        return parts

    async def _key_memo(self, topic: str) -> tuple[list[int], dict[bytes | None, int]]:
        """The topic's partitions and its key → partition memo, reset whenever the partitions change."""
        parts = await self._partitions_of(topic)
        memo = self._key_partitions.get(topic)
        if memo is None or memo[0] != parts:
            memo = self._key_partitions[topic] = (parts, {})
        return memo

    @staticmethod
    def _keyed_partition(memo: tuple[list[int], dict[bytes | None, int]], kb: bytes) -> int:
        """aiokafka's DefaultPartitioner for a key (murmur2 over the sorted partitions), with the faster
        murmur2 and a memo per key."""
        partition = memo[1].get(kb)
        if partition is None:
            parts = memo[0]
            partition = parts[(murmur2(kb) & 0x7FFFFFFF) % len(parts)]
            if len(memo[1]) >= 100_000:
                memo[1].clear()
            memo[1][kb] = partition
        return partition

    async def _append(
        self, topic: str, partition: int, key: bytes | None, value: bytes
    ) -> asyncio.Future[Any]:
        """A record for a known partition into that partition's open batch, as ``AIOKafkaProducer.send`` does
        it, without what ``send`` costs on top per record and we need not: waiting on the topic's metadata
        (the partition came from it), the serializers (none) and a new set of the topic's partitions to
        assert the partition is one. Records of ``_FAST_MAX`` bytes or more, or an aiokafka without the
        accumulator, go through ``send`` (which also refuses a record over ``max_request_size``)."""
        assert self._producer is not None
        acc = getattr(self._producer, "_message_accumulator", None)
        if acc is None or len(value) + (len(key) if key else 0) >= self._FAST_MAX:
            return await self._producer.send(topic, value, key=key, partition=partition)
        tp = self._tps.get((topic, partition))
        if tp is None:
            tp = self._tps[(topic, partition)] = TopicPartition(topic, partition)
        fut: asyncio.Future[Any] = await acc.add_message(tp, key, value, self._timeout_s)
        return fut

    #: records from this size on go through aiokafka's ``send`` (its size check, 1 MB by default)
    _FAST_MAX = 256 * 1024

    def _queued_batches(self) -> Any:
        """aiokafka's per-partition queue of batches not yet drained to the broker (None if not found)."""
        acc = getattr(self._producer, "_message_accumulator", None)
        batches = getattr(acc, "_batches", None)
        return batches if isinstance(batches, dict) else None

    async def _send_batched(
        self, items: list[tuple[str, bytes, str | None]], per_topic: dict[str, int]
    ) -> list[asyncio.Future[Any]]:
        """Group records by (topic, partition) in order and send each group as record batches.

        Partitions are chosen with aiokafka's default (murmur2) partitioner, the one ``send()`` uses,
        so a key lands on the same partition whichever path wrote it and per-key order holds.
        """
        assert self._producer is not None
        groups: dict[tuple[str, int], list[tuple[bytes | None, bytes]]] = {}
        memos: dict[str, tuple[list[int], dict[bytes | None, int]]] = {}  # per topic, for this call
        for topic, value, key in items:
            full = self._prefix + topic
            per_topic[full] = per_topic.get(full, 0) + 1
            memo = memos.get(full)
            if memo is None:
                memo = memos[full] = await self._key_memo(full)
            kb = key.encode() if key else None
            if kb is None:  # no key: the partitioner picks at random, every time
                parts = memo[0]
                partition = self._partitioner(kb, parts, parts)
            else:
                partition = self._keyed_partition(memo, kb)
            groups.setdefault((full, partition), []).append((kb, value))
        futures: list[asyncio.Future[Any]] = []
        queued = self._queued_batches()
        for (topic, partition), records in groups.items():
            if queued is not None and queued.get(TopicPartition(topic, partition)):
                # The partition already has a batch waiting (another caller's): aiokafka's add_batch
                # would wait until the partition's queue is empty, which concurrent send()s into its
                # open batch can put off indefinitely, and it takes the elapsed time off its timeout
                # cumulatively — so append to that open batch instead, as send() does.
                for kb, value in records:
                    futures.append(await self._append(topic, partition, kb, value))
                continue
            batch = self._producer.create_batch()
            for kb, value in records:
                if batch.append(key=kb, value=value, timestamp=None) is None:
                    futures.append(await self._producer.send_batch(batch, topic, partition=partition))
                    batch = self._producer.create_batch()
                    batch.append(key=kb, value=value, timestamp=None)
            futures.append(await self._producer.send_batch(batch, topic, partition=partition))
        return futures

    async def dead_letter(
        self,
        *,
        stage: str,
        source_id: str,
        error: str,
        raw: bytes,
        protocol: str | None = None,
        peer: str | None = None,
        source_topic: str | None = None,
        source_partition: int | None = None,
        source_offset: int | None = None,
        kind: str | None = None,
        source_key: str | None = None,
    ) -> DlqRecord:
        """Write a DLQ record (raw bytes + reason) and wait for the broker."""
        rec = DlqRecord(
            service=self._service,
            stage=stage,
            source_id=source_id,
            error=error[:2000],
            raw_b64=DlqRecord.encode_raw(raw[:1_000_000]),
            protocol=protocol,
            peer=peer,
            source_topic=source_topic,
            source_partition=source_partition,
            source_offset=source_offset,
            source_key=source_key,
            kind=kind,
            occurred_at=utcnow(),
        )
        await self.send(ALARMS_DLQ, rec, key=source_id)
        self._metrics.dlq.labels(self._prefix + ALARMS_DLQ, stage).inc()
        log.warning("dlq_written", stage=stage, source_id=source_id, kind=kind, error=error[:200])
        return rec
