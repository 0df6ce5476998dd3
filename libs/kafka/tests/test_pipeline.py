"""The Kafka plumbing against the real broker: durable send, at-least-once consumption, DLQ, retry."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from alarmhub_events import ALARMS_DLQ, ALARMS_RAW, AlarmEvent, DlqRecord, Source, utcnow
from alarmhub_kafka import (
    ConsumerPipeline,
    DurableProducer,
    InvalidEvent,
    KafkaMetrics,
    Message,
    PublishError,
)
from prometheus_client import CollectorRegistry


def _event(i: int, device: str = "L1#1234") -> AlarmEvent:
    return AlarmEvent(kind="burglary", source=Source(protocol="dc09-cid", device_id=device), zone=f"{i:03d}",
                      occurred_at=utcnow(), received_at=utcnow(), raw=f"frame {i}")


async def _producer(stack: Any, prefix: str, registry: CollectorRegistry | None = None) -> DurableProducer:
    p = DurableProducer(stack.kafka_bootstrap, metrics=KafkaMetrics(registry or CollectorRegistry()),
                        client_id="test", topic_prefix=prefix, service="test")
    await p.start()
    return p


async def test_send_returns_after_the_broker_has_the_record(stack: Any, topic_prefix: str, consume_topic: Any) -> None:
    registry = CollectorRegistry()
    producer = await _producer(stack, topic_prefix, registry)
    try:
        events = [_event(i) for i in range(5)]
        await producer.send_many([(ALARMS_RAW, e, None) for e in events])
        got = await consume_topic(topic_prefix, ALARMS_RAW, 5)
        assert [g["event_id"] for g in got] == [str(e.event_id) for e in events]  # one key → one partition, in order
        ok = registry.get_sample_value("alarmhub_kafka_produced_messages_total",
                                       {"topic": topic_prefix + ALARMS_RAW, "result": "ok"})
        assert ok == 5
    finally:
        await producer.stop()


async def test_send_raises_when_no_broker_confirms() -> None:
    p = DurableProducer("127.0.0.1:1", metrics=KafkaMetrics(CollectorRegistry()), client_id="t")
    try:
        await p.send(ALARMS_RAW, _event(1))
    except PublishError:
        pass
    else:
        raise AssertionError("send without a broker must raise PublishError")
    assert not p.ready()


async def test_consumer_commits_after_processing_and_dead_letters_bad_input(
        stack: Any, topic_prefix: str, consume_topic: Any) -> None:
    producer = await _producer(stack, topic_prefix)
    seen: list[str] = []
    failures = {"left": 2}

    async def handler(batch: Sequence[Message[AlarmEvent]]) -> None:
        for m in batch:
            if m.value.zone == "666":
                raise InvalidEvent("zone 666 is refused", source_id=f"{m.topic}/{m.partition}/{m.offset}")
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("redis down")  # transient: retried, not committed
        seen.extend(m.value.zone or "" for m in batch)

    await producer.send_many([(ALARMS_RAW, _event(i), None) for i in (1, 2)])
    await producer.send_raw(ALARMS_RAW, b"\x00not json", "L1#1234")
    await producer.send_many([(ALARMS_RAW, _event(i), None) for i in (666, 3)])

    pipeline = ConsumerPipeline(bootstrap=stack.kafka_bootstrap, group="g1", topics=[ALARMS_RAW], model=AlarmEvent,
                                handler=handler, producer=producer, metrics=KafkaMetrics(CollectorRegistry()),
                                topic_prefix=topic_prefix, session_timeout_ms=3000)
    await pipeline.start()
    try:
        for _ in range(200):
            if len(seen) >= 3:
                break
            await asyncio.sleep(0.05)
        assert sorted(set(seen)) == ["001", "002", "003"]
    finally:
        await pipeline.stop()

    dlq = [DlqRecord.model_validate(d) for d in await consume_topic(topic_prefix, ALARMS_DLQ, 2)]
    assert {d.stage for d in dlq} == {"decode", "process"}
    assert any(d.raw_bytes() == b"\x00not json" for d in dlq)
    assert any("zone 666" in d.error for d in dlq)

    # A second consumer in the same group starts after the committed offsets: nothing is replayed.
    replayed: list[Any] = []

    async def record(batch: Sequence[Message[AlarmEvent]]) -> None:
        replayed.extend(batch)

    again = ConsumerPipeline(bootstrap=stack.kafka_bootstrap, group="g1", topics=[ALARMS_RAW], model=AlarmEvent,
                             handler=record, producer=producer, metrics=KafkaMetrics(CollectorRegistry()),
                             topic_prefix=topic_prefix, session_timeout_ms=3000)
    await again.start()
    await producer.send(ALARMS_RAW, _event(4))
    for _ in range(200):
        if replayed:
            break
        await asyncio.sleep(0.05)
    await again.stop()
    await producer.stop()
    assert [m.value.zone for m in replayed] == ["004"]


async def test_batched_send_keeps_per_key_partition_and_order(stack: Any, topic_prefix: str) -> None:
    """Above the batch threshold records go through record batches; keys must land where send() puts them."""
    from aiokafka import AIOKafkaConsumer

    producer = await _producer(stack, topic_prefix)
    try:
        devices = [f"L1#{i:04d}" for i in range(8)]
        small = [(ALARMS_RAW, _event(0, d), None) for d in devices]  # below the threshold: send() each
        await producer.send_many(small)
        big = [(ALARMS_RAW, _event(i, devices[i % 8]), None) for i in range(1, 200)]
        assert len(big) >= producer.BATCH_THRESHOLD
        await producer.send_many(big)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic_prefix + ALARMS_RAW, bootstrap_servers=stack.kafka_bootstrap,
                                group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    seen: dict[str, list[tuple[int, int]]] = {}
    try:
        total = 0
        for _ in range(100):
            batch = await consumer.getmany(timeout_ms=200)
            for recs in batch.values():
                for r in recs:
                    ev = AlarmEvent.from_bytes(r.value)
                    seen.setdefault(ev.source.device_id, []).append((r.partition, int(ev.zone or 0)))
                    total += 1
            if total >= 8 + 199:
                break
    finally:
        await consumer.stop()
    assert sum(len(v) for v in seen.values()) == 207
    for device, recs in seen.items():
        assert len({p for p, _ in recs}) == 1, f"{device} spread over partitions"
        zones = [z for _, z in recs]
        assert zones == sorted(zones), f"{device} out of order"
