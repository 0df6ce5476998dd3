"""Attack: two dispatch replicas publishing one outbox (docs/security.md, "Outbox across replicas").

Before: the outbox publisher's lock was an ``asyncio.Lock`` per process. Two replicas draining at the same
moment read the same pending rows and both sent them: every event twice, and an incident's older event
arriving after its newer one (triage keeps the last verdict it reads). Now one replica publishes — the one
holding a PostgreSQL advisory lock on a connection of its own — and when that session dies (a killed
process, a terminated backend) another replica takes over at its next drain.

Replica A is a running dispatch service; replica B is a second publisher as a second dispatch process runs
it (its own PostgreSQL pool and dedicated connection, its own Kafka producer) on the same database and topics.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from alarmhub_dispatch.app import DispatchApp
from alarmhub_dispatch.auth import Principal
from alarmhub_dispatch.metrics import DispatchMetrics
from alarmhub_dispatch.outbox import OutboxPublisher
from alarmhub_dispatch.store import Store
from alarmhub_events import INCIDENTS_EVENTS
from alarmhub_kafka import DurableProducer, KafkaMetrics
from prometheus_client import CollectorRegistry

from .conftest import triaged

pytestmark = pytest.mark.drill  # ~30 s: `make drills`


async def _round(app: DispatchApp, b: OutboxPublisher, ids: set[str], n: int) -> None:
    """n new incidents on replica A, then both replicas drain at once (A's own drain also runs)."""
    assert app.dispatcher is not None
    batch = [triaged(device=f"L7#{uuid.uuid4().hex[:6].upper()}") for _ in range(n)]
    ids.update(str(t.incident_id) for t in batch)
    await app.dispatcher.handle_triaged(batch)  # kicks A's background publisher
    await asyncio.gather(app.dispatcher.outbox.publish(), b.publish(), b.publish())
    d = app.dispatcher
    city = Principal(
        user="desk-1", role="supervisor", unit=next(u for u in d.tree.nodes if d.tree.is_root(u))
    )
    # a newer event of half of them (acknowledged), racing the drains
    await asyncio.gather(
        *(d.act(city, t.incident_id, "ack", {}) for t in batch[: n // 2]), b.publish(), b.publish()
    )
    await asyncio.gather(app.dispatcher.outbox.publish(), b.publish())


async def _published_once_in_order(
    app: DispatchApp,
    store: Store,
    ids: set[str],
    consume: Callable[[int], Awaitable[list[dict[str, Any]]]],
) -> None:
    """Every event of ``ids`` left the outbox, is on the topic once, and each incident's in seq order."""
    assert app.dispatcher is not None
    await app.dispatcher.drain_publisher()
    keys = [uuid.UUID(i) for i in ids]
    left = await store.p.fetchval(
        "SELECT count(*) FROM incident_outbox o JOIN incident_events e ON e.seq = o.seq"
        " WHERE e.incident_id = ANY($1::uuid[])",
        keys,
    )
    assert left == 0  # everything was published
    expected = await store.p.fetchval(
        "SELECT count(*) FROM incident_events WHERE incident_id = ANY($1::uuid[])", keys
    )
    got = await consume(expected + 200)
    twice = [k for k, c in Counter(v["event_id"] for v in got).items() if c > 1]
    assert twice == [], f"{len(twice)} of {expected} events published more than once"
    assert len(got) == expected
    last: dict[str, int] = {}
    for v in got:  # one partition per incident: the topic's order is the order consumers apply
        assert v["seq"] is not None and v["seq"] > last.get(v["incident_id"], 0), "an older event came after"
        last[v["incident_id"]] = v["seq"]


async def test_two_replicas_publish_each_event_once_in_order(
    dispatch: tuple[DispatchApp, str],
    stack: Any,
    topic_prefix: str,
    consume_topic: Callable[..., Awaitable[list[dict[str, Any]]]],
) -> None:
    app, _ = dispatch
    assert app.dispatcher is not None
    store_b = Store(stack.database_url, max_size=2)
    await store_b.start()
    producer_b = DurableProducer.from_settings(
        app.settings, metrics=KafkaMetrics(CollectorRegistry()), client_id="dispatch-b"
    )
    await producer_b.start()
    b = OutboxPublisher(store_b, producer_b, DispatchMetrics(CollectorRegistry()))
    ids: set[str] = set()

    async def consume(n: int) -> list[dict[str, Any]]:
        where = lambda v: v["incident_id"] in ids  # noqa: E731
        return await consume_topic(topic_prefix, INCIDENTS_EVENTS, n, timeout=15, where=where)

    try:
        for _ in range(6):
            await _round(app, b, ids, 10)
        await _published_once_in_order(app, store_b, ids, consume)
        # the leader's session dies (as when its process is killed): the other replica takes over
        holder = app.dispatcher.outbox.leadership
        holder = holder if holder.held else b.leadership
        assert holder.held and holder.conn is not None
        assert await store_b.p.fetchval("SELECT pg_terminate_backend($1)", holder.conn.get_server_pid())
        for _ in range(3):
            with contextlib.suppress(Exception):  # the dead leader's drain fails once; the other's goes on
                await _round(app, b, ids, 10)
        for _ in range(2):
            for publisher in (app.dispatcher.outbox, b):
                with contextlib.suppress(Exception):
                    await publisher.publish()
        assert app.dispatcher.outbox.leadership.held != b.leadership.held  # one leader again
        await _published_once_in_order(app, store_b, ids, consume)
    finally:
        await b.close()
        await producer_b.stop()
        await store_b.stop()
