"""A triage process SIGKILLed mid-stream and restarted loses nothing and changes nothing dispatch sees.

At-least-once means a replayed batch republishes decisions. Each decision's ``event_id`` is derived
from the raw event's id and its incident id is memoized in Redis, so a replayed decision is the SAME
decision (same id, incident, outcome): dispatch, which keeps decisions by id, sees no duplicate.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import pytest
from alarmhub_devstack.testing import ServiceProcess, consume, service_env
from alarmhub_events import ALARMS_RAW, ALARMS_TRIAGED, AlarmEvent
from alarmhub_kafka import DurableProducer, KafkaMetrics
from alarmhub_triage import decision_event_id
from prometheus_client import CollectorRegistry

from .conftest import MakeEvent

pytestmark = [pytest.mark.drill, pytest.mark.slow]  # a fault drill: `make drills`

SITES = 60
ROUNDS = 5


async def test_killed_mid_stream_loses_and_duplicates_nothing(
    stack: Any, topic_prefix: str, ev: MakeEvent
) -> None:
    env = service_env(stack, topic_prefix, ALARMHUB_TRIAGE_BATCH="20")
    proc = ServiceProcess.create("alarmhub_triage", env).start()
    producer = DurableProducer(
        stack.kafka_bootstrap,
        metrics=KafkaMetrics(CollectorRegistry()),
        client_id="t",
        topic_prefix=topic_prefix,
    )
    await producer.start()
    sent: list[AlarmEvent] = []
    try:
        for r in range(ROUNDS):
            batch = [
                ev("burglary", device=f"L2#{6000 + s}", zone=f"{r + 1:03d}", at_s=60 * r + s * 0.01)
                for s in range(SITES)
            ]
            # a dual-path duplicate of every tenth signal: must stay merged across the crash too
            batch += [
                ev(
                    "burglary",
                    device=f"L2#{6000 + s}",
                    zone=f"{r + 1:03d}",
                    at_s=60 * r + s * 0.01 + 0.5,
                    path="secondary",
                )
                for s in range(0, SITES, 10)
            ]
            await producer.send_many([(ALARMS_RAW, x, None) for x in batch])
            sent += batch[:SITES]
            if r == 1:
                await asyncio.sleep(0.3)
                proc.kill()  # SIGKILL: no drain, no final commit
                proc = ServiceProcess(module=proc.module, env=proc.env, ports=proc.ports).start()
            await asyncio.sleep(0.1)
        expected = {decision_event_id(x.event_id) for x in sent}
        await _wait_decided(stack, topic_prefix, len(expected))
        # Worst case of a crash: nothing was committed. Rewind the group and let it replay everything.
        proc.stop()
        await _rewind(stack, topic_prefix + "triage", topic_prefix + ALARMS_RAW)
        proc = ServiceProcess(module=proc.module, env=proc.env, ports=proc.ports).start()
        got: list[dict[str, Any]] = []
        for _ in range(30):
            got = await consume(stack.kafka_bootstrap, topic_prefix + ALARMS_TRIAGED, 10_000, timeout=2.0)
            if len(got) >= 2 * len(expected):
                break
    finally:
        await producer.stop()
        proc.stop()
    print(f"\n{len(got)} decisions on the topic for {len(expected)} signals (replays included)")
    by_id: dict[str, set[tuple[str, str, int]]] = defaultdict(set)
    for d in got:
        by_id[d["event_id"]].add((d["incident_id"], d["decision"], d["score"]))
    assert len(got) >= 2 * len(expected), "the rewound group replayed the stream"
    assert set(by_id) == {str(e) for e in expected}, "every signal decided once, no duplicate decided"
    assert all(len(v) == 1 for v in by_id.values()), "a replayed decision is the same decision"
    incidents: dict[str, set[str]] = defaultdict(set)
    for d in got:
        incidents[d["event"]["source"]["device_id"]].add(d["incident_id"])
    assert all(len(v) == 1 for v in incidents.values()), "one incident per site across the crash"


async def _wait_decided(stack: Any, prefix: str, n: int) -> None:
    for _ in range(30):
        got = await consume(stack.kafka_bootstrap, prefix + ALARMS_TRIAGED, n, timeout=2.0)
        if len({d["event_id"] for d in got}) >= n:
            return


async def _rewind(stack: Any, group: str, topic: str) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    c = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap, group_id=group, enable_auto_commit=False)
    await c.start()
    try:
        parts = c.partitions_for_topic(topic) or set()
        for _ in range(20):
            if parts:
                break
            await asyncio.sleep(0.2)
            await c._client.force_metadata_update()
            parts = c.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        c.assign(tps)
        await c.commit({tp: 0 for tp in tps})
    finally:
        await c.stop()
