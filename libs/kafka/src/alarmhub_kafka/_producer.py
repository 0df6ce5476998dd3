"""A producer whose ``send`` returns only once the broker has the write (``acks=all``).

Callers ACK upstream (a panel, a tracker, an HTTP client) only after ``send`` returns: that is the
platform's durability rule. ``send_many`` pipelines many writes and waits for all of them, which
is how ingest services batch without giving up that rule.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from alarmhub_events import ALARMS_DLQ, DlqRecord, Event, utcnow

from ._metrics import KafkaMetrics
from .errors import PublishError

__all__ = ["DurableProducer"]

log = structlog.get_logger("alarmhub.kafka")


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
    ) -> None:
        # Idempotence is off by default because the dev broker (Tansu) does not implement it; production
        # turns it on through configuration. acks=all is what makes a write durable on a real cluster
        # with min.insync.replicas=2.
        self._bootstrap = bootstrap
        self._metrics = metrics
        self._prefix = topic_prefix
        self._service = service or client_id
        self._kwargs = dict(
            bootstrap_servers=bootstrap, client_id=client_id, acks="all", linger_ms=linger_ms,
            request_timeout_ms=request_timeout_ms, enable_idempotence=enable_idempotence,
            max_batch_size=256 * 1024, retry_backoff_ms=200,
        )
        self._producer: AIOKafkaProducer | None = None
        self._started = asyncio.Event()
        self._last_ok = 0.0
        self._last_error = 0.0

    @classmethod
    def from_settings(cls, settings: Any, *, metrics: KafkaMetrics, client_id: str) -> DurableProducer:
        """Build from a service's settings (``alarmhub_runtime.BaseServiceSettings``)."""
        return cls(settings.kafka_bootstrap, metrics=metrics, client_id=client_id,
                   topic_prefix=settings.topic_prefix, service=client_id,
                   enable_idempotence=settings.kafka_idempotence)

    def topic(self, name: str) -> str:
        return self._prefix + name

    async def start(self, *, wait: bool = True, backoff_max_s: float = 5.0) -> None:
        """Connect, retrying with backoff while the broker is unreachable."""
        delay = 0.2
        while True:
            producer = AIOKafkaProducer(**self._kwargs)
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

    async def send_many(self, items: Sequence[tuple[str, Event, str | None]]) -> None:
        """Write every item and return when the broker acknowledged all of them; raise PublishError otherwise."""
        values = [(t, ev.to_bytes(), k if k is not None else getattr(ev, "key", None)) for t, ev, k in items]
        await self._send_values(values)

    async def _send_values(self, values: Iterable[tuple[str, bytes, str | None]]) -> None:
        if self._producer is None:
            raise PublishError("producer not started")
        t0 = time.perf_counter()
        futures = []
        topics = []
        try:
            for topic, value, key in values:
                full = self._prefix + topic
                topics.append(full)
                futures.append(await self._producer.send(full, value, key=key.encode() if key else None))
            await asyncio.gather(*futures)
        except (TimeoutError, KafkaError) as exc:
            self._last_error = time.monotonic()
            for t in topics:
                self._metrics.produced.labels(t, "error").inc()
            raise PublishError(f"broker did not confirm the write: {exc!r}") from exc
        elapsed = time.perf_counter() - t0
        self._last_ok = time.monotonic()
        for t in topics:
            self._metrics.produced.labels(t, "ok").inc()
            self._metrics.produce_seconds.labels(t).observe(elapsed)

    async def dead_letter(
        self, *, stage: str, source_id: str, error: str, raw: bytes, protocol: str | None = None,
        peer: str | None = None, source_topic: str | None = None, source_partition: int | None = None,
        source_offset: int | None = None,
    ) -> DlqRecord:
        """Write a DLQ record (raw bytes + reason) and wait for the broker."""
        rec = DlqRecord(
            service=self._service, stage=stage, source_id=source_id, error=error[:2000],
            raw_b64=DlqRecord.encode_raw(raw[:1_000_000]), protocol=protocol, peer=peer,
            source_topic=source_topic, source_partition=source_partition, source_offset=source_offset,
            occurred_at=utcnow(),
        )
        await self.send(ALARMS_DLQ, rec, key=source_id)
        self._metrics.dlq.labels(self._prefix + ALARMS_DLQ, stage).inc()
        log.warning("dlq_written", stage=stage, source_id=source_id, error=error[:200])
        return rec
