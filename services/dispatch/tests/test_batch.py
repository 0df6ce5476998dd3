"""A partition's batch of decisions is applied in one transaction, idempotently per (incident id, event id)."""

from __future__ import annotations

from typing import Any

from alarmhub_dispatch.app import DispatchApp

from .conftest import triaged


async def test_batch_applies_in_order_and_replays_are_skipped(dispatch: tuple[DispatchApp, str]) -> None:
    app, _ = dispatch
    d = app.dispatcher
    assert d is not None
    first = triaged(decision="verify", score=60, priority=3)
    again = first.model_copy()                                         # the same decision twice in one batch
    more = triaged(incident_id=first.incident_id, score=95, priority=1)   # a later, stronger alarm, same incident
    other = triaged(device="L7#9999", lat=None, lon=None)               # no position: opened, not routed
    assert await d.handle_triaged([first, again, more, other]) == 3

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
    await d.drain_publisher()   # the outbox is sent by a background task, after the batch's commit
    outbox: Any = await d.store.p.fetchval(
        "SELECT count(*) FROM incident_outbox o JOIN incident_events e USING (seq) WHERE e.incident_id = $1",
        first.incident_id)
    assert outbox == 0   # published to incidents.events
