"""The triage service on the real broker and Redis: alarms.raw in, alarms.triaged out."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest_asyncio
from alarmhub_events import ALARMS_RAW, ALARMS_TRIAGED, INCIDENTS_EVENTS, Actor, IncidentEvent, TriagedAlarm
from alarmhub_kafka import DurableProducer, KafkaMetrics
from alarmhub_triage.app import TriageApp
from alarmhub_triage.config import TriageSettings
from alarmhub_triage.ruleset import DEFAULT_RULES
from prometheus_client import CollectorRegistry

from .conftest import MakeEvent

Consume = Callable[..., Awaitable[list[dict[str, Any]]]]


def settings_for(stack: Any, prefix: str, **extra: Any) -> TriageSettings:
    return TriageSettings(
        KAFKA_BOOTSTRAP=stack.kafka_bootstrap,
        REDIS_URL=stack.redis_url,
        ALARMHUB_TOPIC_PREFIX=prefix,
        ALARMHUB_HEALTH_PORT=0,
        **extra,
    )


@pytest_asyncio.fixture
async def producer(stack: Any, topic_prefix: str) -> AsyncIterator[DurableProducer]:
    p = DurableProducer(
        stack.kafka_bootstrap,
        metrics=KafkaMetrics(CollectorRegistry()),
        client_id="test",
        topic_prefix=topic_prefix,
    )
    await p.start()
    yield p
    await p.stop()


@pytest_asyncio.fixture
async def service(stack: Any, topic_prefix: str) -> AsyncIterator[TriageApp]:
    app = TriageApp(settings_for(stack, topic_prefix), CollectorRegistry())
    await app.start()
    yield app
    await app.stop()


async def test_an_alarm_becomes_a_decision_and_a_duplicate_is_merged(
    service: TriageApp, producer: DurableProducer, topic_prefix: str, consume_topic: Consume, ev: MakeEvent
) -> None:
    a = ev("panic", code="E120", zone="001", path="primary")
    b = ev("panic", code="E120", zone="001", path="secondary", at_s=0.8)
    c = ev("burglary", device="L1#2001", code="E130", zone="003", at_s=2)
    await producer.send_many([(ALARMS_RAW, x, None) for x in (a, b, c)])
    got = await consume_topic(topic_prefix, ALARMS_TRIAGED, 3, timeout=10)
    decisions = [TriagedAlarm.model_validate(x) for x in got]
    assert sorted(str(d.event.event_id) for d in decisions) == sorted([str(a.event_id), str(c.event_id)])
    panic = next(d for d in decisions if d.event.event_id == a.event_id)
    assert panic.decision == "dispatch" and panic.rule_version == service.rules.rule_version
    assert any(r.code == "decision" for r in panic.reasons)


async def test_decisions_are_keyed_by_incident(
    service: TriageApp, producer: DurableProducer, stack: Any, topic_prefix: str, ev: MakeEvent
) -> None:
    from aiokafka import AIOKafkaConsumer

    x = ev("burglary", device="L1#3001", zone="001")
    y = ev("burglary", device="L1#3001", zone="002", at_s=30)
    await producer.send_many([(ALARMS_RAW, x, None), (ALARMS_RAW, y, None)])
    consumer = AIOKafkaConsumer(
        topic_prefix + ALARMS_TRIAGED,
        bootstrap_servers=stack.kafka_bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    recs = []
    try:
        for _ in range(50):
            for rs in (await consumer.getmany(timeout_ms=200)).values():
                recs.extend(rs)
            if len(recs) >= 2:
                break
    finally:
        await consumer.stop()
    assert len(recs) == 2
    ids = {TriagedAlarm.from_bytes(r.value).incident_id for r in recs}
    assert len(ids) == 1 and {r.key.decode() for r in recs} == {str(ids.pop())}


async def test_verdicts_from_incidents_events_are_learned(
    service: TriageApp, producer: DurableProducer, ev: MakeEvent
) -> None:
    from alarmhub_devstack.testing import wait_until
    from alarmhub_events import IncidentEventType, IncidentStatus, Verdict, utcnow

    closed = [
        IncidentEvent(
            incident_id=uuid.uuid4(),
            type=IncidentEventType.CLOSED,
            status=IncidentStatus.CLOSED,
            verdict=Verdict.FALSE_ALARM,
            actor=Actor(user="op1"),
            at=utcnow(),
            source_device_id="L1#4001",
        )
        for _ in range(3)
    ]
    await producer.send_many(
        [(INCIDENTS_EVENTS, e, None) for e in closed] + [(INCIDENTS_EVENTS, closed[0], None)]
    )

    async def learned() -> bool:
        ans = await service.state.verdicts(["L1#4001"])
        return ans[0] == (0, 3)

    await wait_until(learned, timeout=10)


async def test_rules_reload_without_restart(stack: Any, topic_prefix: str, tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    text = DEFAULT_RULES.read_text(encoding="utf-8")
    path.write_text(text, encoding="utf-8")
    app = TriageApp(settings_for(stack, topic_prefix, ALARMHUB_TRIAGE_RULES=str(path)), CollectorRegistry())
    before = app.rules.rule_version
    path.write_text("version: broken\nthresholds: {dispatch: 10, verify: 90}\n", encoding="utf-8")
    assert not app.reload_rules() and app.rules.rule_version == before  # invalid: the old rules stay
    path.write_text(re.sub(r'(?m)^version: ".*"$', 'version: "2026.11.25-2"', text), encoding="utf-8")
    import os

    os.utime(path, ns=(1, 2))  # a new mtime even on coarse filesystems
    assert app.reload_rules() and app.rules.version == "2026.11.25-2"
    await app.redis.aclose()


class _Boom:
    """A stage that fails on one device: stands for a bug tripped by one event."""

    name = "boom"

    async def exec(self, items: list[Any], ctx: Any) -> list[Any]:
        if any(it.event.source.device_id == "L1#POISON" for it in items):
            raise ValueError("boom")
        return items


async def test_an_event_that_trips_a_bug_goes_to_the_dlq_and_the_rest_flows(
    service: TriageApp, producer: DurableProducer, topic_prefix: str, consume_topic: Consume, ev: MakeEvent
) -> None:
    from alarmhub_events import ALARMS_DLQ

    service.pipeline.stages.insert(2, _Boom())
    good1, bad, good2 = (
        ev("panic", device="L1#8001"),
        ev("panic", device="L1#POISON"),
        ev("panic", device="L1#8002"),
    )
    await producer.send_many([(ALARMS_RAW, x, None) for x in (good1, bad, good2)])
    got = await consume_topic(topic_prefix, ALARMS_TRIAGED, 2, timeout=15)
    assert sorted(d["event"]["source"]["device_id"] for d in got) == ["L1#8001", "L1#8002"]
    dlq = await consume_topic(topic_prefix, ALARMS_DLQ, 1, timeout=10)
    assert len(dlq) == 1 and "boom" in dlq[0]["error"]
