"""The Kafka plumbing against the real broker: durable send, at-least-once consumption, DLQ, retry."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from alarmhub_events import ALARMS_DLQ, ALARMS_RAW, AlarmEvent, AlarmKind, DlqRecord, Source, utcnow
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
    return AlarmEvent(
        kind="burglary",
        source=Source(protocol="dc09-cid", device_id=device),
        zone=f"{i:03d}",
        occurred_at=utcnow(),
        received_at=utcnow(),
        raw=f"frame {i}",
    )


async def _producer(stack: Any, prefix: str, registry: CollectorRegistry | None = None) -> DurableProducer:
    p = DurableProducer(
        stack.kafka_bootstrap,
        metrics=KafkaMetrics(registry or CollectorRegistry()),
        client_id="test",
        topic_prefix=prefix,
        service="test",
    )
    await p.start()
    return p


def _pipeline(
    stack: Any,
    prefix: str,
    group: str,
    handler: Any,
    producer: DurableProducer,
    *,
    metrics: KafkaMetrics | None = None,
    **options: Any,
) -> ConsumerPipeline:
    """A pipeline over the test's ``alarms.raw`` (its topic prefix), the dev broker's short session timeout."""
    return ConsumerPipeline(
        bootstrap=stack.kafka_bootstrap,
        group=group,
        topics=[ALARMS_RAW],
        model=AlarmEvent,
        handler=handler,
        producer=producer,
        metrics=metrics or KafkaMetrics(CollectorRegistry()),
        topic_prefix=prefix,
        **{"session_timeout_ms": 3000, **options},
    )


@pytest.fixture
def next_in_group(stack: Any, topic_prefix: str) -> Any:
    """``await next_in_group(group, producer)``: a new member of ``group`` is started, event 6 is sent, and
    the zones it handled are returned once it handled any (the producer is stopped): only event 6 when the
    group's earlier records were all committed."""

    async def run(group: str, producer: DurableProducer) -> list[str]:
        zones: list[str] = []

        async def record(batch: Sequence[Message[AlarmEvent]]) -> None:
            zones.extend(m.value.zone or "" for m in batch)

        again = _pipeline(stack, topic_prefix, group, record, producer)
        await again.start()
        try:
            await producer.send(ALARMS_RAW, _event(6))
            for _ in range(200):
                if zones:
                    break
                await asyncio.sleep(0.05)
        finally:
            await again.stop()
            await producer.stop()
        return zones

    return run


async def test_send_returns_after_the_broker_has_the_record(
    stack: Any, topic_prefix: str, consume_topic: Any
) -> None:
    registry = CollectorRegistry()
    metrics = KafkaMetrics(registry)
    producer = DurableProducer(
        stack.kafka_bootstrap, metrics=metrics, client_id="test", topic_prefix=topic_prefix, service="test"
    )
    await producer.start()
    try:
        events = [_event(i) for i in range(5)]
        await producer.send_many([(ALARMS_RAW, e, None) for e in events])
        got = await consume_topic(topic_prefix, ALARMS_RAW, 5)
        assert [g["event_id"] for g in got] == [
            str(e.event_id) for e in events
        ]  # one key → one partition, in order
        ok = registry.get_sample_value(
            "alarmhub_kafka_produced_messages_total", {"topic": topic_prefix + ALARMS_RAW, "result": "ok"}
        )
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
    stack: Any, topic_prefix: str, consume_topic: Any
) -> None:
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

    pipeline = _pipeline(stack, topic_prefix, "g1", handler, producer)
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

    again = _pipeline(stack, topic_prefix, "g1", record, producer)
    await again.start()
    await producer.send(ALARMS_RAW, _event(4))
    for _ in range(200):
        if replayed:
            break
        await asyncio.sleep(0.05)
    await again.stop()
    await producer.stop()
    assert [m.value.zone for m in replayed] == ["004"]


async def test_records_not_wanted_are_not_decoded_or_handled_and_are_committed(
    stack: Any, topic_prefix: str, next_in_group: Any
) -> None:
    producer = await _producer(stack, topic_prefix)
    seen: list[str] = []

    async def handler(batch: Sequence[Message[AlarmEvent]]) -> None:
        seen.extend(m.value.zone or "" for m in batch)

    await producer.send_many([(ALARMS_RAW, _event(i), None) for i in (1, 2, 3)])
    await producer.send_raw(ALARMS_RAW, b"\x00not json", "L1#1234")  # not wanted: not even dead-lettered
    await producer.send_many([(ALARMS_RAW, _event(i), None) for i in (4, 5)])
    wanted = [b'"zone":"002"', b'"zone":"005"']
    pipeline = _pipeline(
        stack, topic_prefix, "g-wanted", handler, producer, wanted=lambda raw: any(w in raw for w in wanted)
    )
    await _run_until(pipeline, lambda: len(seen) >= 2, timeout=10.0)
    assert seen == ["002", "005"]

    # the records it skipped were committed with the rest: the group goes on after them
    assert await next_in_group("g-wanted", producer) == ["006"]


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
    consumer = AIOKafkaConsumer(
        topic_prefix + ALARMS_RAW,
        bootstrap_servers=stack.kafka_bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
    )
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


async def test_batched_send_appends_behind_a_queued_batch(stack: Any, topic_prefix: str) -> None:
    """A batched call whose partition already has a batch waiting appends to it (send()) rather than
    waiting for aiokafka's queue to empty (add_batch), which concurrent small calls can put off until
    it times out; the records are still confirmed in key order on send()'s partition."""
    p = DurableProducer(
        stack.kafka_bootstrap,
        metrics=KafkaMetrics(CollectorRegistry()),
        client_id="test",
        topic_prefix=topic_prefix,
        service="test",
        linger_ms=300,  # the first record's batch stays queued while the big call is made
    )
    await p.start()
    assert p._producer is not None
    batched: list[tuple[str, int]] = []
    send_batch = p._producer.send_batch

    async def spy(batch: Any, topic: str, *, partition: int) -> Any:
        batched.append((topic, partition))
        return await send_batch(batch, topic, partition=partition)

    p._producer.send_batch = spy  # type: ignore[method-assign]
    device = "L1#0000"
    try:
        first = await p._producer.send(
            topic_prefix + ALARMS_RAW, _event(0, device).to_bytes(), key=device.encode()
        )
        queued = p._queued_batches()
        assert queued is not None and any(queued.values())
        big = [(ALARMS_RAW, _event(i, device), None) for i in range(1, 40)]
        await p.send_many(big)
        await first
    finally:
        await p.stop()
    assert batched == []  # the device's partition had a batch queued: no batch of its own
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic_prefix + ALARMS_RAW,
        bootstrap_servers=stack.kafka_bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    zones: list[int] = []
    try:
        for _ in range(100):
            for recs in (await consumer.getmany(timeout_ms=200)).values():
                zones.extend(int(AlarmEvent.from_bytes(r.value).zone or 0) for r in recs)
            if len(zones) >= 40:
                break
    finally:
        await consumer.stop()
    assert zones == list(range(40))


# Three devices whose keys land on three different partitions (murmur2, 6 partitions): 3, 5 and 1.
_DEVICES = ("L1#0000", "L1#0001", "L1#0002")


async def _committed(stack: Any, group: str, topic: str) -> dict[int, int | None]:
    """The group's committed offset per partition, read without joining the group."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    c = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap, group_id=group, enable_auto_commit=False)
    await c.start()
    try:
        return {p: await c.committed(TopicPartition(topic, p)) for p in range(6)}
    finally:
        await c.stop()


async def test_pipelined_polls_keep_partition_order_and_commit_only_handled_offsets(
    stack: Any, topic_prefix: str
) -> None:
    """Two polls in flight: while one partition's batch is held, another partition's batch of the next poll
    is handled, the held partition's next batch waits for it, no third poll starts, and nothing past the
    held batch is committed; once released, everything is handled in offset order and committed."""
    producer = await _producer(stack, topic_prefix)
    starts: list[tuple[int, int, int]] = []  # (partition, first offset, last offset), in start order
    active: set[int] = set()
    last: dict[int, int] = {}
    violations: list[str] = []
    hold = {"armed": True}
    held = asyncio.Event()
    release = asyncio.Event()

    async def handler(batch: Sequence[Message[AlarmEvent]]) -> None:
        p, offsets = batch[0].partition, [m.offset for m in batch]
        if p in active:
            violations.append(f"partition {p}: batch at {offsets[0]} started while another ran")
        if offsets != list(range(last.get(p, -1) + 1, last.get(p, -1) + 1 + len(offsets))):
            violations.append(f"partition {p}: offsets {offsets} after {last.get(p)}")
        active.add(p)
        starts.append((p, offsets[0], offsets[-1]))
        try:
            if hold["armed"]:
                hold["armed"] = False
                held.set()
                await release.wait()
            last[p] = offsets[-1]
        finally:
            active.discard(p)

    async def wait_for(pred: Any, timeout: float = 15.0) -> None:
        for _ in range(int(timeout / 0.05)):
            if pred():
                return
            await asyncio.sleep(0.05)
        raise AssertionError("timed out")

    # four records per partition, polls of four: each poll is one partition's records
    await producer.send_many([(ALARMS_RAW, _event(i, d), None) for d in _DEVICES for i in range(4)])
    topic = topic_prefix + ALARMS_RAW
    pipeline = _pipeline(
        stack, topic_prefix, "pipelined", handler, producer, max_records=4, session_timeout_ms=6000
    )
    await pipeline.start()
    try:
        await wait_for(held.is_set)
        first = starts[0][0]
        # the next poll (another partition) is handled while the first batch is held ...
        await wait_for(lambda: any(p != first for p, _, _ in starts))
        await asyncio.sleep(0.5)
        # ... but not a third poll (two in flight at most), and nothing is committed yet
        assert len(starts) == 2, starts
        assert all(v is None for v in (await _committed(stack, topic_prefix + "pipelined", topic)).values())
        release.set()
        await wait_for(lambda: sum(e - s + 1 for _, s, e in starts) == 12 and not active)
        await wait_for(lambda: sum(1 for v in last.values() if v == 3) == 3)

        # Same partition, two polls: the second batch waits until the held first one is done.
        hold["armed"], before = True, len(starts)
        held.clear()
        release.clear()
        await producer.send_many([(ALARMS_RAW, _event(10 + i, _DEVICES[0]), None) for i in range(8)])
        await wait_for(held.is_set)
        await asyncio.sleep(0.8)
        assert len(starts) == before + 1, starts[before:]  # its next batch (offsets 8–11) did not start
        p0 = starts[before][0]
        committed = await _committed(stack, topic_prefix + "pipelined", topic)
        assert committed[p0] == 4, committed  # only what was handled: the first four
        release.set()
        await wait_for(lambda: last.get(p0) == 11)
    finally:
        release.set()
        await pipeline.stop()
        await producer.stop()
    assert not violations, violations
    # stop finished and committed the work in flight: every partition committed up to its end
    committed = await _committed(stack, topic_prefix + "pipelined", topic)
    assert sorted(v for v in committed.values() if v is not None) == [4, 4, 12], committed


async def _run_until(pipeline: ConsumerPipeline, done: Any, timeout: float = 20.0) -> None:
    await pipeline.start()
    try:
        for _ in range(int(timeout / 0.05)):
            if done():
                break
            await asyncio.sleep(0.05)
    finally:
        await pipeline.stop()


async def test_a_record_postgresql_refuses_is_isolated_and_dead_lettered_and_the_batch_flows(
    stack: Any, topic_prefix: str, consume_topic: Any
) -> None:
    """Issue #13: a poison record (PostgreSQL refuses ``\\u0000`` in jsonb: DataError, deterministic) in the
    middle of a batch; each batch is written in one transaction, as dispatch writes incidents. The records
    before and after it are written in order, it alone goes to the DLQ with its reason, nothing is retried."""
    import asyncpg

    table = "kafka_poison_" + topic_prefix.strip(".-").replace("-", "_").replace(".", "_")
    conn = await asyncpg.connect(stack.database_url)
    await conn.execute(f"CREATE TABLE {table} (seq serial, zone text, doc jsonb)")
    registry = CollectorRegistry()
    metrics = KafkaMetrics(registry)
    producer = DurableProducer(
        stack.kafka_bootstrap, metrics=metrics, client_id="test", topic_prefix=topic_prefix, service="test"
    )
    await producer.start()

    async def write(batch: Sequence[Message[AlarmEvent]]) -> None:
        async with conn.transaction():
            for m in batch:  # the record as received, like dispatch's incident_alarms.triaged
                await conn.execute(
                    f"INSERT INTO {table} (zone, doc) VALUES ($1, $2::jsonb)", m.value.zone, m.raw.decode()
                )

    good = [_event(i) for i in range(1, 11)]
    poison = (
        _event(99)
        .model_copy(update={"kind": AlarmKind.PANIC})
        .to_bytes()
        .replace(b'"raw":"', b'"raw":"\\u0000')
    )
    assert b"\\u0000" in poison
    await producer.send_many([(ALARMS_RAW, e, None) for e in good[:5]])
    await producer.send_raw(ALARMS_RAW, poison, "L1#1234")
    await producer.send_many([(ALARMS_RAW, e, None) for e in good[5:]])

    pipeline = _pipeline(stack, topic_prefix, "poison", write, producer, metrics=metrics)
    try:
        await _run_until(pipeline, lambda: pipeline.processed >= 10)
        zones = [r["zone"] for r in await conn.fetch(f"SELECT zone FROM {table} ORDER BY seq")]
        assert zones == [f"{i:03d}" for i in range(1, 11)]  # in order, the poison record left out
        (dlq,) = [DlqRecord.model_validate(d) for d in await consume_topic(topic_prefix, ALARMS_DLQ, 1)]
        assert dlq.stage == "process" and dlq.raw_bytes() == poison and dlq.kind == "panic"
        assert dlq.error.startswith("deterministic: UntranslatableCharacterError")
        assert dlq.source_topic == topic_prefix + ALARMS_RAW and dlq.source_key == "L1#1234"
        sample = registry.get_sample_value
        labels = {"topic": topic_prefix + ALARMS_RAW}
        assert sample("alarmhub_kafka_dlq_life_safety_messages_total", {**labels, "kind": "panic"}) == 1
        assert sample("alarmhub_kafka_dlq_life_safety_messages_total", {**labels, "kind": "fire"}) == 0
        assert (sample("alarmhub_kafka_batch_retries_total", labels) or 0) == 0  # never treated as transient
        assert (sample("alarmhub_kafka_batch_splits_total", labels) or 0) >= 1
    finally:
        await producer.stop()
        await conn.execute(f"DROP TABLE {table}")
        await conn.close()


async def test_a_record_that_trips_an_unknown_error_alone_is_dead_lettered_after_retries(
    stack: Any, topic_prefix: str, consume_topic: Any
) -> None:
    """An error nobody classified (a bug tripped by one record): split, retried alone a few times while the
    others flow, then dead-lettered — never retried forever."""
    producer = await _producer(stack, topic_prefix)
    seen: list[str] = []

    async def handler(batch: Sequence[Message[AlarmEvent]]) -> None:
        if any(m.value.zone == "999" for m in batch):
            raise KeyError("zone table has no 999")
        seen.extend(m.value.zone or "" for m in batch)

    await producer.send_many([(ALARMS_RAW, _event(i), None) for i in (1, 2, 999, 3, 4)])
    pipeline = _pipeline(stack, topic_prefix, "unknown", handler, producer)
    try:
        await _run_until(pipeline, lambda: len(seen) >= 4)
        dlq = [DlqRecord.model_validate(d) for d in await consume_topic(topic_prefix, ALARMS_DLQ, 1)]
    finally:
        await producer.stop()
    assert seen == ["001", "002", "003", "004"]
    assert (
        len(dlq) == 1
        and dlq[0].error.startswith("unknown: KeyError")
        and "failed alone 3 times" in dlq[0].error
    )


def test_from_settings_takes_the_service_settings() -> None:
    from alarmhub_events import AlarmEvent
    from alarmhub_runtime import BaseServiceSettings

    class Settings(BaseServiceSettings):
        group: str = "triage"

    settings = Settings(
        KAFKA_BOOTSTRAP="127.0.0.1:1", ALARMHUB_TOPIC_PREFIX="t1.", ALARMHUB_KAFKA_SESSION_TIMEOUT_MS=6000
    )

    async def handler(msgs: Any) -> None:
        return None

    p = ConsumerPipeline.from_settings(
        settings,
        group_suffix="-verdicts",
        topics=["alarms.raw"],
        model=AlarmEvent,
        handler=handler,
        producer=None,  # type: ignore[arg-type]
        metrics=KafkaMetrics(CollectorRegistry()),
        client_id="triage-verdicts",
        max_records=7,
        fetch_min_bytes=4096,
    )
    assert (p._bootstrap, p._group, p._topics) == ("127.0.0.1:1", "t1.triage-verdicts", ["t1.alarms.raw"])
    assert (p._session_timeout_ms, p._max_records, p._client_id) == (6000, 7, "triage-verdicts")

    async def built() -> int:
        return int(p.new_client()._fetch_min_bytes)

    assert asyncio.run(built()) == 4096  # the option reaches the aiokafka consumer
    assert p._security.protocol == "PLAINTEXT"  # the dev stack's; tests/transport checks TLS and SASL


async def test_commits_are_coalesced_and_what_is_handled_is_committed_on_stop(
    stack: Any, topic_prefix: str, next_in_group: Any
) -> None:
    """With a commit interval longer than the test, polls handled after the first commit are not committed
    one by one; stop commits every handled offset (and only those), and a restart replays nothing."""
    producer = await _producer(stack, topic_prefix)
    seen: list[str] = []

    async def handler(batch: Sequence[Message[AlarmEvent]]) -> None:
        seen.extend(m.value.zone or "" for m in batch)

    topic = topic_prefix + ALARMS_RAW
    group = topic_prefix + "coalesced"
    await producer.send_many([(ALARMS_RAW, _event(i), None) for i in range(3)])
    pipeline = _pipeline(stack, topic_prefix, "coalesced", handler, producer, commit_interval_ms=600_000)
    await pipeline.start()
    try:
        for _ in range(200):
            if len(seen) >= 3:
                break
            await asyncio.sleep(0.05)
        assert seen == ["000", "001", "002"]
        # the first poll's offsets went out at once (no commit before it); the next poll's wait the interval
        await producer.send_many([(ALARMS_RAW, _event(i), None) for i in range(3, 6)])
        for _ in range(200):
            if len(seen) >= 6:
                break
            await asyncio.sleep(0.05)
        assert seen == [f"{i:03d}" for i in range(6)]
        assert sorted(v for v in (await _committed(stack, group, topic)).values() if v is not None) == [3]
    finally:
        await pipeline.stop()
    assert sorted(v for v in (await _committed(stack, group, topic)).values() if v is not None) == [6]

    assert await next_in_group("coalesced", producer) == ["006"]  # nothing handled is replayed
