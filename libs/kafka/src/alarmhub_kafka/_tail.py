"""A group-less reader of what is new on a topic, for fan-out to every replica of a service.

Unlike :class:`ConsumerPipeline` (one consumer group: each record to one member, at least once, offsets
committed), a :class:`TopicTail` has no group: it reads every partition, starting at the end when it
starts, and commits nothing. Every replica running one sees every new record; records published while
it was down are not replayed. Use it for notifications whose durable path is elsewhere (e.g. live
streams to browsers, which reload their state on reconnect).

Undecodable records are skipped (logged); a handler error is logged and the batch dropped: a tail must
never stop on one bad record.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from alarmhub_events import Event
from alarmhub_runtime import get_logger
from pydantic import ValidationError

from ._security import PLAINTEXT, KafkaSecurity

__all__ = ["TopicTail"]

log = get_logger("alarmhub.kafka")


class TopicTail:
    def __init__(
        self,
        *,
        bootstrap: str,
        topic: str,
        model: type[Event],
        handler: Callable[[Sequence[Any]], Awaitable[None]],
        topic_prefix: str = "",
        client_id: str = "alarmhub-tail",
        max_records: int = 500,
        backoff_max_s: float = 5.0,
        security: KafkaSecurity = PLAINTEXT,
        decode: Callable[[bytes], Any] | None = None,
    ) -> None:
        """``decode``: what the handler gets from a record's value, instead of a ``model`` (e.g. the few fields
        it reads, without validating the whole event); a ValueError, KeyError or TypeError skips the record."""
        self._bootstrap = bootstrap
        self._topic = topic_prefix + topic
        self._model = model
        self._decode: Callable[[bytes], Any] = decode or model.model_validate_json
        self._handler = handler
        self._client_id = client_id
        self._max_records = max_records
        self._backoff_max_s = backoff_max_s
        self._security = security
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_poll = 0.0
        self.seen = 0

    async def start(self) -> None:
        delay = 0.2
        while True:
            consumer = AIOKafkaConsumer(
                self._topic,
                bootstrap_servers=self._bootstrap,
                group_id=None,
                client_id=self._client_id,
                enable_auto_commit=False,
                auto_offset_reset="latest",
                max_poll_records=self._max_records,
                **self._security.client_kwargs(),
            )
            try:
                await consumer.start()
                break
            except KafkaError as exc:
                await consumer.stop()
                log.warning("kafka_tail_connect_failed", topic=self._topic, error=repr(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff_max_s)
        # pin the start to the end now, so records published once start() returns are seen
        assigned = list(consumer.assignment())
        for _ in range(50):
            if assigned:
                break
            await asyncio.sleep(0.1)
            assigned = list(consumer.assignment())
        if assigned:
            await consumer.seek_to_end(*assigned)
            for tp in assigned:
                await consumer.position(tp)
        self._consumer = consumer
        self._last_poll = time.monotonic()
        self._task = asyncio.create_task(self._run(), name=f"tail:{self._topic}")
        log.info("kafka_tail_started", topic=self._topic, partitions=len(assigned))

    def ready(self) -> bool:
        return self._task is not None and not self._task.done() and time.monotonic() - self._last_poll < 30.0

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            try:
                batches = await self._consumer.getmany(timeout_ms=500, max_records=self._max_records)
            except KafkaError as exc:
                log.warning("kafka_tail_poll_failed", topic=self._topic, error=repr(exc))
                await asyncio.sleep(1.0)
                continue
            self._last_poll = time.monotonic()
            items = []
            for recs in batches.values():
                for r in recs:
                    try:
                        items.append(self._decode(r.value or b""))
                    except (ValidationError, ValueError, KeyError, TypeError) as exc:
                        log.warning(
                            "kafka_tail_undecodable",
                            topic=self._topic,
                            partition=r.partition,
                            offset=r.offset,
                            error=str(exc)[:300],
                        )
            if not items:
                continue
            self.seen += len(items)
            try:
                await self._handler(items)
            except Exception as exc:  # a notification path: log and go on
                log.warning(
                    "kafka_tail_handler_failed", topic=self._topic, error=repr(exc), records=len(items)
                )
