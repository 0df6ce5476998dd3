"""A partition's batch of decisions is applied in one transaction, idempotently per (incident id, event id)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from alarmhub_dispatch.app import DispatchApp

from .conftest import triaged
from .test_service import _publish


async def test_batch_applies_in_order_and_replays_are_skipped(dispatch: tuple[DispatchApp, str]) -> None:
    app, _ = dispatch
    d = app.dispatcher
    assert d is not None
    first = triaged(decision="verify", score=60, priority=3)
    again = first.model_copy()  # the same decision twice in one batch
    more = triaged(
        incident_id=first.incident_id, score=95, priority=1
    )  # a later, stronger alarm, same incident
    other = triaged(device="L7#9999", lat=None, lon=None)  # no position: opened, not routed

    def opened() -> dict[str, float]:  # incidents opened, per decision (counted once per batch and value)
        return {
            s.labels["decision"]: s.value
            for s in app.metrics.incidents_opened.collect()[0].samples
            if s.name.endswith("_total")
        }

    opened0 = opened()
    assert await d.handle_triaged([first, again, more, other]) == 3
    grew = {k: v - opened0.get(k, 0) for k, v in opened().items() if v != opened0.get(k, 0)}
    assert grew == {"verify": 1, other.decision.value: 1}

    row = await d.store.get_incident(None, first.incident_id)
    assert row is not None
    # opened and changed in the same batch: inserted with its final values
    assert row["alarm_count"] == 2 and row["priority"] == 1 and row["score"] == 95
    alarms = await d.store.incident_alarms(first.incident_id)
    assert sorted(str(a["event_id"]) for a in alarms) == sorted([str(first.event_id), str(more.event_id)])
    timeline = await d.store.timeline(first.incident_id)
    seqs = [e["seq"] for e in timeline]
    assert seqs == sorted(seqs) and [e["type"] for e in timeline][:2] == ["opened", "routed"]
    lone = await d.store.get_incident(None, other.incident_id)
    assert lone is not None and lone["status"] == "opened" and lone["station"] is None
    # each alarm row carries its incident's district ('' for none), as the schema's trigger would set it
    districts = await d.store.p.fetch(
        "SELECT a.district, COALESCE(i.district, '') AS incident FROM incident_alarms a"
        " JOIN incidents i ON i.id = a.incident_id WHERE a.incident_id = ANY($1::uuid[])",
        [first.incident_id, other.incident_id],
    )
    assert len(districts) == 3 and all(r["district"] == r["incident"] for r in districts)
    assert {r["district"] for r in districts} == {row["district"], ""} and row["district"]

    # the whole batch redelivered (a crash before the commit of offsets): nothing new
    replays0 = app.metrics.replays._value.get()
    assert await d.handle_triaged([first, more, other]) == 0
    assert app.metrics.replays._value.get() - replays0 == 3
    assert (await d.store.get_incident(None, first.incident_id) or {})["alarm_count"] == 2
    assert len(await d.store.timeline(first.incident_id)) == len(timeline)

    # a batch mixing a replay and a new decision about the same incident applies only the new one
    late = triaged(incident_id=first.incident_id, score=97)
    assert await d.handle_triaged([more, late]) == 1
    assert (await d.store.get_incident(None, first.incident_id) or {})["alarm_count"] == 3
    await d.drain_publisher()  # the outbox is sent by a background task, after the batch's commit
    outbox: Any = await d.store.p.fetchval(
        "SELECT count(*) FROM incident_outbox o JOIN incident_events e USING (seq) WHERE e.incident_id = $1",
        first.incident_id,
    )
    assert outbox == 0  # published to incidents.events


async def test_partitions_of_one_poll_share_one_transaction(
    dispatch: tuple[DispatchApp, str], stack: Any, topic_prefix: str
) -> None:
    """Decisions spread over every partition of alarms.triaged: each becomes its incident, and the
    partitions' batches handed over together are applied in fewer transactions than there were batches."""
    from alarmhub_events import ALARMS_TRIAGED

    app, _ = dispatch
    d = app.dispatcher
    coalescer = app._triaged
    assert d is not None and coalescer is not None
    batches = app.kafka_metrics.batch_seconds.labels(topic_prefix + ALARMS_TRIAGED)

    def batch_count() -> float:
        return sum(s.value for s in batches.collect()[0].samples if s.name.endswith("_count"))

    calls0, batches0 = coalescer.calls, batch_count()
    items = [triaged() for _ in range(120)]  # 120 incidents: their keys cover every partition
    await _publish(stack, topic_prefix, items)
    ids = [t.incident_id for t in items]

    async def all_there() -> bool:
        return len(await d.store.get_incidents(ids)) == len(ids)

    deadline = asyncio.get_running_loop().time() + 30
    while not await all_there():
        assert asyncio.get_running_loop().time() < deadline, "not every decision became an incident"
        await asyncio.sleep(0.1)
    transactions, partition_batches = coalescer.calls - calls0, batch_count() - batches0
    assert partition_batches >= 2  # the decisions came over several partitions
    assert 1 <= transactions < partition_batches
    for t in items:
        row = (await d.store.get_incidents([t.incident_id]))[t.incident_id]
        assert row["alarm_count"] == 1 and row["status"] == "routed"


async def test_events_sent_without_reading_back_are_the_rows_as_stored(
    dispatch: tuple[DispatchApp, str],
) -> None:
    """The publisher sends the events its own batches committed from memory (not read back from
    incident_events): each must be the event the stored audit row reads back as, seq included."""
    from alarmhub_dispatch.store.outbox import to_event

    app, _ = dispatch
    d = app.dispatcher
    assert d is not None
    await d.publish_outbox()  # this replica is the outbox's publisher: its commits are held for the drain
    await d.drain_publisher()  # (the timer's sweep, every 0.2 s here, may have held the lock: wait for it)
    assert d.outbox.leadership.held
    first = triaged()
    batch = [first, triaged(incident_id=first.incident_id, score=97), triaged(lat=None, lon=None, major=True)]
    assert await d.handle_triaged(batch) == 3
    held = dict(d.outbox._known)  # the drain has not run yet: it starts at the next await
    assert held, "the committed events are held for the drain"
    rows = await d.store.p.fetch(
        "SELECT e.*, i.source_device_id FROM incident_events e JOIN incidents i ON i.id = e.incident_id"
        " WHERE e.seq = ANY($1::bigint[])",
        list(held),
    )
    stored = {r["seq"]: to_event(r) for r in rows}
    assert sorted(stored) == sorted(held)
    for seq, ev in held.items():
        assert ev.seq == seq
        assert ev.model_dump(mode="json") == stored[seq].model_dump(mode="json")
        assert json.loads(ev.to_bytes()) == json.loads(stored[seq].to_bytes())
    await d.drain_publisher()
    assert not d.outbox._known  # sent, and let go
    left: Any = await d.store.p.fetchval(
        "SELECT count(*) FROM incident_outbox WHERE seq = ANY($1)", list(held)
    )
    assert left == 0


async def test_drain_waits_for_the_publisher_holding_the_lock(dispatch: tuple[DispatchApp, str]) -> None:
    """A batch's kick that finds another publisher draining (the timer's sweep, an action's publish) only
    flags its commit; drain must wait for that publisher, not only for its own background task (CI saw
    test_batch read the outbox while the sweep was still sending)."""
    app, _ = dispatch
    d = app.dispatcher
    assert d is not None
    outbox = d.outbox
    await outbox.drain()
    async with outbox._lock:  # another publisher holds it, as the sweep does while it sends
        item = triaged(device="L7#7100")
        assert await d.handle_triaged([item]) == 1  # commits, kicks: the kick's publish finds the lock held
        waiting = asyncio.create_task(outbox.drain())
        for _ in range(20):
            await asyncio.sleep(0.01)
        assert not waiting.done()  # the background task ended at once, but the holder has not finished
        conn = await outbox.leadership.acquire()
        assert conn is not None
        assert await outbox._drain(conn) >= 2  # the holder's drain sends what the kick flagged
    await asyncio.wait_for(waiting, 5)
    left: Any = await d.store.p.fetchval(
        "SELECT count(*) FROM incident_outbox o JOIN incident_events e USING (seq) WHERE e.incident_id = $1",
        item.incident_id,
    )
    assert left == 0
