"""A poison record in the middle of a batch, per consumer (issue #13): the records before and after it become
incidents within seconds, it alone is in ``alarms.dlq`` with its reason, and nothing is retried forever.

Triage and dispatch run in the test's event loop on the real broker, Redis and PostgreSQL; every record of a
test is keyed into one partition, so the poison record sits inside the batch its neighbours arrive in.

- triage: a bug tripped by one event (a stage that raises for one device) — an unknown error, isolated by
  splitting the batch and dead-lettered after a few retries of the record alone;
- dispatch: a row PostgreSQL refuses (IntegrityError: a CHECK constraint the test adds, refusing one
  device's incident; the NUL that used to do this is now escaped before it gets there,
  libs/events/tests/test_text.py) — deterministic, dead-lettered at once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from alarmhub_events import (
    ALARMS_DLQ,
    ALARMS_RAW,
    ALARMS_TRIAGED,
    TOPICS,
    AlarmEvent,
    AlarmKind,
    Decision,
    DlqRecord,
    Location,
    Protocol,
    Source,
    TriagedAlarm,
)
from alarmhub_kafka import DurableProducer, KafkaMetrics, murmur2
from prometheus_client import CollectorRegistry

from .conftest import needs_services

pytestmark = [pytest.mark.drill, needs_services("alarmhub_dispatch", "alarmhub_triage")]  # `make drills`

#: incidents must exist this soon after the batch was written
WITHIN_S = 10.0
PARTITIONS = {t.name: t.partitions for t in TOPICS}


def _partition(topic: str, key: str) -> int:
    return (murmur2(key.encode()) & 0x7FFFFFFF) % PARTITIONS[topic]


def _same_partition(topic: str, candidates: Callable[[int], str], n: int) -> list[str]:
    """``n`` keys from ``candidates(0), candidates(1) …`` that all go to the first one's partition."""
    first = candidates(0)
    want = _partition(topic, first)
    out, i = [first], 1
    while len(out) < n:
        key = candidates(i)
        if _partition(topic, key) == want:
            out.append(key)
        i += 1
    return out


def _alarm(device: str, i: int) -> AlarmEvent:
    now = datetime.now(UTC)
    return AlarmEvent(
        kind=AlarmKind.PANIC,
        source=Source(protocol=Protocol.DC09_SIA, device_id=device, account=device.split("#")[-1]),
        code="PA",
        zone="001",
        occurred_at=now,
        received_at=now,
        location=Location(lat=22.53 + 0.004 * i, lon=114.03 + 0.004 * i),
    )


async def _producer(stack: Any, prefix: str) -> DurableProducer:
    p = DurableProducer(
        stack.kafka_bootstrap, metrics=KafkaMetrics(CollectorRegistry()), client_id="t", topic_prefix=prefix
    )
    await p.start()
    return p


async def _incident_devices(
    db: asyncpg.Connection, devices: list[str], want: int, timeout: float
) -> set[str]:
    found: set[str] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = await db.fetch(
            "SELECT DISTINCT source_device_id FROM incidents WHERE source_device_id = ANY($1::text[])",
            devices,
        )
        found = {r["source_device_id"] for r in rows}
        if len(found) >= want:
            break
        await asyncio.sleep(0.1)
    return found


async def _dead_letters(consume_topic: Any, prefix: str, n: int) -> list[DlqRecord]:
    return [DlqRecord.model_validate(d) for d in await consume_topic(prefix, ALARMS_DLQ, n, timeout=20)]


def _sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_triage_isolates_an_event_that_trips_a_bug(
    stack: Any, topic_prefix: str, consume_topic: Any
) -> None:
    from alarmhub_triage.app import TriageApp
    from alarmhub_triage.config import TriageSettings

    from ..e2e.inproc import dispatch_app, new_token

    tag = uuid.uuid4().hex[:6].upper()
    devices = _same_partition(ALARMS_RAW, lambda i: f"L9#{tag}{i:03d}", 7)
    poison = devices[3]

    class BugOnOneEvent:
        """A stage that fails on one device's events: stands for a bug tripped by one event."""

        name = "bug"

        async def exec(self, items: list[Any], ctx: Any) -> list[Any]:
            if any(it.event.source.device_id == poison for it in items):
                raise ZeroDivisionError("division by zero in a rule")
            return items

    registry = CollectorRegistry()
    triage = TriageApp(
        TriageSettings(
            KAFKA_BOOTSTRAP=stack.kafka_bootstrap,
            REDIS_URL=stack.redis_url,
            ALARMHUB_TOPIC_PREFIX=topic_prefix,
            ALARMHUB_HEALTH_PORT=0,
            ALARMHUB_TRIAGE_REDIS_PREFIX=f"{topic_prefix}triage:",
        ),
        registry,
    )
    triage.pipeline.stages.insert(2, BugOnOneEvent())
    dispatch = dispatch_app(stack, topic_prefix, new_token(), "http://127.0.0.1:9/commands")
    await asyncio.gather(triage.start(), dispatch.start())
    producer = await _producer(stack, topic_prefix)
    db = await asyncpg.connect(stack.database_url)
    try:
        t0 = time.monotonic()
        await producer.send_many([(ALARMS_RAW, _alarm(d, i), None) for i, d in enumerate(devices)])
        good = [d for d in devices if d != poison]
        found = await _incident_devices(db, good, len(good), timeout=WITHIN_S)
        took = time.monotonic() - t0
        assert found == set(good), f"missing incidents after {took:.1f} s: {set(good) - found}"
        (dlq,) = await _dead_letters(consume_topic, topic_prefix, 1)
        assert AlarmEvent.from_bytes(dlq.raw_bytes()).source.device_id == poison
        assert dlq.service == "triage" and dlq.stage == "process" and dlq.kind == "panic"
        assert dlq.error.startswith("unknown: ZeroDivisionError: division by zero in a rule")
        assert dlq.source_topic == topic_prefix + ALARMS_RAW and dlq.source_key == poison
        assert not await _incident_devices(db, [poison], 1, timeout=0.5)
        raw = topic_prefix + ALARMS_RAW
        assert (
            _sample(registry, "alarmhub_kafka_dlq_life_safety_messages_total", topic=raw, kind="panic") == 1
        )
        # nothing retried forever: the retries stopped with the dead letter, and the consumer is ready
        retries = _sample(registry, "alarmhub_kafka_batch_retries_total", topic=raw)
        assert 0 < retries <= 8
        await asyncio.sleep(1.0)
        assert _sample(registry, "alarmhub_kafka_batch_retries_total", topic=raw) == retries
        assert triage.consumer.ready()
        print(f"triage: {len(good)} incidents and 1 dead letter {took:.1f} s after the write")
    finally:
        await db.close()
        await producer.stop()
        await asyncio.gather(triage.stop(), dispatch.stop())


async def test_dispatch_isolates_a_row_postgresql_refuses(
    stack: Any, topic_prefix: str, consume_topic: Any
) -> None:
    from ..e2e.inproc import dispatch_app, new_token

    tag = uuid.uuid4().hex[:6].upper()
    incident_ids = _same_partition(ALARMS_TRIAGED, lambda i: str(uuid.uuid4()), 7)
    devices = [f"L9#{tag}{i:03d}" for i in range(7)]
    poison = devices[3]
    constraint = f"poison_{tag.lower()}"
    db = await asyncpg.connect(stack.database_url)
    await db.execute(
        f"ALTER TABLE incidents ADD CONSTRAINT {constraint} CHECK (source_device_id IS DISTINCT FROM '{poison}')"
    )
    registry = CollectorRegistry()
    dispatch = dispatch_app(stack, topic_prefix, new_token(), "http://127.0.0.1:9/commands", registry)
    await dispatch.start()
    producer = await _producer(stack, topic_prefix)
    try:
        now = datetime.now(UTC)
        decisions = [
            TriagedAlarm(
                incident_id=uuid.UUID(iid),
                event=_alarm(d, i),
                decision=Decision.DISPATCH,
                score=90,
                priority=1,
                rule_version="test",
                decided_at=now,
            )
            for i, (iid, d) in enumerate(zip(incident_ids, devices, strict=True))
        ]
        t0 = time.monotonic()
        await producer.send_many([(ALARMS_TRIAGED, t, None) for t in decisions])
        good = [d for d in devices if d != poison]
        found = await _incident_devices(db, good, len(good), timeout=WITHIN_S)
        took = time.monotonic() - t0
        assert found == set(good), f"missing incidents after {took:.1f} s: {set(good) - found}"
        (dlq,) = await _dead_letters(consume_topic, topic_prefix, 1)
        assert TriagedAlarm.from_bytes(dlq.raw_bytes()).event.source.device_id == poison
        assert dlq.service == "dispatch" and dlq.stage == "process" and dlq.kind == "panic"
        assert dlq.error.startswith("deterministic: CheckViolationError") and constraint in dlq.error
        triaged = topic_prefix + ALARMS_TRIAGED
        assert (
            _sample(registry, "alarmhub_kafka_dlq_life_safety_messages_total", topic=triaged, kind="panic")
            == 1
        )
        # deterministic: never retried, dead-lettered at the first failure of the record alone
        assert _sample(registry, "alarmhub_kafka_batch_retries_total", topic=triaged) == 0
        assert _sample(registry, "alarmhub_kafka_batch_splits_total", topic=triaged) >= 1
        assert dispatch.consumer is not None and dispatch.consumer.ready()
        print(f"dispatch: {len(good)} incidents and 1 dead letter {took:.1f} s after the write")
    finally:
        await producer.stop()
        await dispatch.stop()
        await db.execute(f"ALTER TABLE incidents DROP CONSTRAINT {constraint}")
        await db.close()


async def test_the_nul_that_used_to_poison_dispatch_now_makes_an_incident(
    stack: Any, topic_prefix: str
) -> None:
    """The field case of issue #13: a DC-09 panic with a NUL in its extended data block, through the receiver,
    triage and dispatch. It used to be refused by PostgreSQL in dispatch and retried forever; now it is an
    incident, its text escaped (the frame kept reversibly in ``raw``), and nothing is dead-lettered."""
    from alarmhub_ingest_contactid.app import ContactIdApp
    from alarmhub_ingest_contactid.config import ContactIdSettings
    from alarmhub_ingest_contactid.protocols import dc09

    from ..e2e.inproc import common, dispatch_app, new_token, triage_app

    line, account = f"{uuid.uuid4().int % 0xFFF + 1:X}", f"{uuid.uuid4().int % 0xFFFF + 1:X}"
    device = f"L{line}#{account}"
    contactid = ContactIdApp(
        ContactIdSettings(
            **common(stack, topic_prefix),
            ALARMHUB_DC09_HOST="127.0.0.1",
            ALARMHUB_DC09_PORT=0,
            ALARMHUB_SHUTDOWN_GRACE_S=4,
        ),
        CollectorRegistry(),
    )
    triage = triage_app(stack, topic_prefix)
    dispatch = dispatch_app(stack, topic_prefix, new_token(), "http://127.0.0.1:9/commands")
    db = await asyncpg.connect(stack.database_url)
    await db.execute(
        "INSERT INTO accounts (line, account, company, lat, lon) VALUES ($1, $2, 'poison-test', 22.541, 114.055)",
        line,
        account,
    )
    await asyncio.gather(contactid.start(), triage.start(), dispatch.start())
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        frame = dc09.encode(
            "SIA-DCS",
            7,
            account,
            f"#{account}|NPA001",
            line=line,
            timestamp=now,
            extended=("Xlobby\x00door",),
        )
        reader, writer = await asyncio.open_connection("127.0.0.1", contactid.port)
        writer.write(frame)
        await writer.drain()
        assert dc09.decode_reply(await asyncio.wait_for(reader.readuntil(b"\r"), 10)).token == "ACK"
        writer.close()
        assert await _incident_devices(db, [device], 1, timeout=WITHIN_S) == {device}
        row = await db.fetchrow(
            "SELECT a.triaged FROM incident_alarms a JOIN incidents i ON i.id = a.incident_id"
            " WHERE i.source_device_id = $1",
            device,
        )
        event = TriagedAlarm.model_validate_json(row["triaged"]).event
        assert event.kind == AlarmKind.PANIC and event.attributes["extended"] == ["Xlobby\\x00door"]
        assert event.attributes["raw_escaped"] is True and "\x00" not in event.raw
    finally:
        await asyncio.gather(contactid.stop(), triage.stop(), dispatch.stop())
        await db.execute("DELETE FROM accounts WHERE line = $1 AND account = $2", line, account)
        await db.close()
