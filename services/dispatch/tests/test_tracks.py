"""Tracks from telemetry.gps, and a stolen vehicle followed from station to station."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import asyncpg
import pytest
from alarmhub_devstack.testing import wait_until
from alarmhub_dispatch.app import DispatchApp
from alarmhub_dispatch.store.tracks import _INSERT_FIXES, partition_name
from alarmhub_events import (
    TELEMETRY_GPS,
    AlarmEvent,
    AlarmKind,
    Decision,
    GpsFix,
    Location,
    Protocol,
    Source,
    TriagedAlarm,
    utcnow,
)
from alarmhub_kafka import DurableProducer, Failure, KafkaMetrics, classify
from prometheus_client import CollectorRegistry

from .test_service import _client, _publish, _wait_incident


async def test_stolen_vehicle_is_tracked_and_rerouted(
    dispatch: tuple[DispatchApp, str], stack: Any, topic_prefix: str
) -> None:
    app, token = dispatch
    router = app.dispatcher.router  # type: ignore[union-attr]
    device = "0139" + uuid.uuid4().hex[:8].translate(str.maketrans("abcdef", "123456"))
    start = (114.0550, 22.5410)  # Futian
    luohu = next(s for s in router.stations if s.district == "440303").geometry.representative_point()
    now = utcnow()
    ev = AlarmEvent(
        kind=AlarmKind.VEHICLE_THEFT,
        source=Source(protocol=Protocol.JT808, device_id=device),
        occurred_at=now,
        received_at=now,
        location=Location(lat=start[1], lon=start[0]),
    )
    t = TriagedAlarm(
        incident_id=uuid.uuid4(),
        event=ev,
        decision=Decision.DISPATCH,
        score=88,
        priority=1,
        rule_version="test-1",
        decided_at=now,
    )
    await _publish(stack, topic_prefix, [t])
    async with _client(app, token) as c:
        first = await _wait_incident(c, str(t.incident_id))
        assert first["district"] == "440304"

        producer = DurableProducer(
            stack.kafka_bootstrap,
            metrics=KafkaMetrics(CollectorRegistry()),
            client_id="test",
            topic_prefix=topic_prefix,
            service="test",
        )
        await producer.start()
        try:
            fixes = []
            for i in range(5):  # drives from Futian to Luohu
                f = i / 4
                fixes.append(
                    GpsFix(
                        device_id=device,
                        protocol=Protocol.JT808,
                        lat=start[1] + (luohu.y - start[1]) * f,
                        lon=start[0] + (luohu.x - start[0]) * f,
                        speed_kmh=40.0,
                        heading_deg=90,
                        occurred_at=now + timedelta(seconds=10 * i),
                        received_at=now + timedelta(seconds=10 * i),
                    )
                )
            await producer.send_many([(TELEMETRY_GPS, fx, fx.key) for fx in fixes])
        finally:
            await producer.stop()

        async def moved() -> dict[str, Any] | None:
            inc = (await c.get(f"/api/v1/incidents/{t.incident_id}")).json()
            return inc if inc["district"] == "440303" else None

        inc = await wait_until(moved, timeout=20, interval=0.2)
        rerouted = [
            e for e in inc["timeline"] if e["type"] == "routed" and e["data"].get("reason") == "vehicle_moved"
        ]
        assert rerouted and rerouted[-1]["data"]["from_district"] in ("440304", "440303")
        assert inc["location"]["source"] == "device"
        track = (await c.get(f"/api/v1/incidents/{t.incident_id}/track")).json()
        assert track["device_id"] == device and len(track["points"]) == 5
        assert track["points"][0]["lat"] == start[1]


async def test_old_partitions_are_dropped_keeping_open_incidents_vehicles(
    dispatch: tuple[DispatchApp, str], stack: Any, topic_prefix: str
) -> None:
    app, token = dispatch
    tracks = app.tracks
    assert tracks is not None
    now = utcnow()
    old = now - timedelta(days=3)
    await tracks.ensure_partitions(old)  # the partitions of that day exist
    kept, gone = "kept-" + uuid.uuid4().hex[:8], "gone-" + uuid.uuid4().hex[:8]
    ev = AlarmEvent(
        kind=AlarmKind.VEHICLE_THEFT,
        source=Source(protocol=Protocol.GT06, device_id=kept),
        occurred_at=now,
        received_at=now,
        location=Location(lat=22.5410, lon=114.0550),
    )
    t = TriagedAlarm(
        incident_id=uuid.uuid4(),
        event=ev,
        decision=Decision.DISPATCH,
        score=88,
        priority=1,
        rule_version="test-1",
        decided_at=now,
    )
    await _publish(stack, topic_prefix, [t])
    async with _client(app, token) as c:
        await _wait_incident(c, str(t.incident_id))
    await tracks.handle(
        [
            GpsFix(
                device_id=d, protocol=Protocol.GT06, lat=22.54, lon=114.05, occurred_at=old, received_at=old
            )
            for d in (kept, gone)
        ]
    )
    await tracks.expire(now)  # (the service's own maintenance tick may already have dropped some days)
    left = {
        r["device_id"]
        for r in await app.store.fetch(
            "SELECT device_id FROM tracks WHERE device_id = ANY($1) UNION ALL"
            " SELECT device_id FROM tracks_kept WHERE device_id = ANY($1)",
            [kept, gone],
        )
    }
    assert left == {kept}
    assert len(await tracks.track(kept, old - timedelta(minutes=1))) == 1


async def test_concurrent_maintenance_passes_drop_each_old_day_once(
    dispatch: tuple[DispatchApp, str],
) -> None:
    """Two replicas' maintenance ticks at once: no deadlock, every old day dropped exactly once.

    CI once failed here: a test's expire() and the service's own tick dropped partitions together and
    PostgreSQL killed one of them for a deadlock on the AccessExclusiveLocks.
    """
    app, _ = dispatch
    tracks = app.tracks
    assert tracks is not None
    now = utcnow()
    for back in (6, 5, 4, 3):
        await tracks.ensure_partitions(now - timedelta(days=back))
    days = [partition_name((now - timedelta(days=d)).date()) for d in range(2, 9)]  # all older than 24 h
    count = "SELECT count(*) AS n FROM pg_class WHERE relname = ANY($1)"
    old = (await app.store.fetch(count, days))[0]["n"]
    assert old >= 4

    async def tick() -> int:
        await tracks.ensure_partitions(now)
        return await tracks.expire(now)

    dropped = await asyncio.gather(*(tick() for _ in range(4)))
    assert sum(dropped) <= old  # a day is dropped once, whoever gets it
    assert (await app.store.fetch(count, days))[0]["n"] == 0
    assert (await app.store.fetch(count, [partition_name(now.date())]))[0]["n"] == 1


async def test_a_replayed_batch_of_fixes_is_stored_once(dispatch: tuple[DispatchApp, str]) -> None:
    """At-least-once delivery: the batch insert skips fixes already stored, and repeats inside one batch."""
    app, _ = dispatch
    tracks = app.tracks
    assert tracks is not None
    device = "replay-" + uuid.uuid4().hex[:8]
    now = utcnow().replace(microsecond=0)  # the records' times travel in milliseconds
    fixes = [
        GpsFix(
            device_id=device,
            protocol=Protocol.JT808,
            lat=22.54 + i * 1e-4,
            lon=114.05,
            speed_kmh=30.0 + i,
            heading_deg=90,
            occurred_at=now + timedelta(seconds=i),
            received_at=now + timedelta(seconds=i),
        )
        for i in range(4)
    ]
    invalid = GpsFix(
        device_id=device,
        protocol=Protocol.JT808,
        lat=0.0,
        lon=0.0,
        valid=False,
        occurred_at=now + timedelta(seconds=9),
        received_at=now,
    )
    await tracks.handle([*fixes, fixes[1], invalid])  # a repeat inside the batch, and a fix without position
    await tracks.handle(fixes)  # the whole batch again (redelivered after a crash)
    rows = await app.store.fetch(
        "SELECT at, lat, speed_kmh, heading_deg, valid FROM tracks WHERE device_id = $1 ORDER BY at", device
    )
    assert [(r["at"], r["lat"], r["speed_kmh"]) for r in rows] == [
        (f.occurred_at, f.lat, f.speed_kmh) for f in fixes
    ]
    assert all(r["valid"] and r["heading_deg"] == 90 for r in rows)


async def test_a_record_failing_the_checks_is_its_own_fault(dispatch: tuple[DispatchApp, str]) -> None:
    """The records are stored as they came and checked by PostgreSQL: one that GpsFix would refuse (a
    coordinate out of range, a negative speed, no device id, no JSON) fails the batch with a data error, which
    the consumer pipeline classifies as the record's fault (isolated, then sent to the DLQ); nothing of that
    batch is stored, and the same batch without it is."""
    app, _ = dispatch
    tracks = app.tracks
    assert tracks is not None
    device = "check-" + uuid.uuid4().hex[:8]
    now = utcnow()
    good = GpsFix(
        device_id=device, protocol=Protocol.JT808, lat=22.5, lon=114.0, occurred_at=now, received_at=now
    ).to_bytes()
    doc = json.loads(good)
    bad = [
        json.dumps({**doc, "lat": 91.0}).encode(),
        json.dumps({**doc, "lon": -180.5}).encode(),
        json.dumps({**doc, "speed_kmh": -1}).encode(),
        json.dumps({**doc, "heading_deg": 361}).encode(),
        json.dumps({k: v for k, v in doc.items() if k != "device_id"}).encode(),
        json.dumps({**doc, "device_id": "x" * 129}).encode(),
        b"not json",
    ]
    for record in bad:
        with pytest.raises(asyncpg.PostgresError) as err:
            await tracks.handle_records([good, record])
        assert classify(err.value) is Failure.DETERMINISTIC, record
    assert not await app.store.fetch("SELECT 1 FROM tracks WHERE device_id = $1", device)
    await tracks.handle_records([good])
    assert len(await app.store.fetch("SELECT 1 FROM tracks WHERE device_id = $1", device)) == 1


def _scans(plan: dict[str, Any]) -> list[tuple[str, str]]:
    """(node type, relation) of every node of an EXPLAIN (FORMAT JSON) plan that reads a relation."""
    found = [(plan["Node Type"], plan["Relation Name"])] if "Relation Name" in plan else []
    for child in plan.get("Plans", []):
        found += _scans(child)
    return found


async def test_a_batch_of_fixes_never_scans_every_incident(dispatch: tuple[DispatchApp, str]) -> None:
    """The batch's vehicles are looked up in the open-device index whatever the statistics say. A prepared
    statement's generic plan is made once per connection: made while ``incidents`` is empty (a new
    deployment; every bench run), the join scanned every incident for every batch of fixes until the next
    ANALYZE, 2-5 ms a batch at 6,000 incidents. An empty, never analysed ``incidents`` of this session
    (a temporary table of the same definition, which the statement then reads) plans as a new database
    does; the plan kept is then used with 3,000 rows in it."""
    app, _ = dispatch
    conn = await asyncpg.connect(app.settings.database_url)
    try:
        async with conn.transaction():
            await conn.execute(
                "CREATE TEMP TABLE incidents (LIKE public.incidents INCLUDING ALL) ON COMMIT DROP"
            )
            await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            await conn.execute(f"PREPARE fixes_plan(text, text[]) AS {_INSERT_FIXES}")
            now = utcnow()
            batch = [
                GpsFix(
                    device_id=f"plan-{i}",
                    protocol=Protocol.JT808,
                    lat=22.5,
                    lon=114.0,
                    occurred_at=now,
                    received_at=now,
                ).to_bytes()
                for i in range(3)
            ]
            arg = (b"[" + b",".join(batch) + b"]").decode().replace("'", "''")
            explain = f"EXPLAIN (FORMAT JSON) EXECUTE fixes_plan('{arg}', ARRAY['vehicle_theft'])"
            plans = [json.loads(await conn.fetchval(explain))[0]["Plan"]]  # made now, and kept
            await conn.execute(
                "INSERT INTO incidents (id, decision, priority, score, reasons, kind, station, district, route,"
                " source_device_id, rule_version, opened_at, updated_at, status)"
                " SELECT gen_random_uuid(), 'dispatch', 2, 50, '[]', 'vehicle_theft', 'S1', '440304', '{}',"
                " 'plan-' || g, 'test', now(), now(), 'routed' FROM generate_series(0, 2999) g"
            )
            plans.append(json.loads(await conn.fetchval(explain))[0]["Plan"])
    finally:
        await conn.close()
    for plan in plans:
        on_incidents = [node for node, rel in _scans(plan) if rel == "incidents"]
        assert on_incidents and all(node in {"Index Scan", "Bitmap Heap Scan"} for node in on_incidents), plan


async def test_a_polls_partitions_are_stored_by_one_statement(dispatch: tuple[DispatchApp, str]) -> None:
    """The tracks consumer hands a poll's partitions' batches over at once (telemetry.gps has 12 partitions);
    they are written together, one statement (a statement per partition's batch was ~13 fixes each at
    5,000 fixes/s, and the statement's fixed cost was most of PostgreSQL's CPU per fix)."""
    app, _ = dispatch
    now = utcnow().replace(microsecond=0)
    devices = [f"coalesce-{uuid.uuid4().hex[:8]}-{p}" for p in range(3)]
    batches = [
        [
            SimpleNamespace(
                value=GpsFix(
                    device_id=d,
                    protocol=Protocol.JT808,
                    lat=22.5,
                    lon=114.0,
                    occurred_at=now + timedelta(seconds=i),
                    received_at=now,
                ).to_bytes()
            )
            for i in range(4)
        ]
        for d in devices
    ]
    before = app._fixes.calls
    await asyncio.gather(*(app.handle_gps(b) for b in batches))  # as the pipeline runs a poll's partitions
    assert app._fixes.calls == before + 1
    rows = await app.store.fetch(
        "SELECT device_id, count(*) AS n FROM tracks WHERE device_id = ANY($1::text[]) GROUP BY device_id",
        devices,
    )
    assert {r["device_id"]: r["n"] for r in rows} == dict.fromkeys(devices, 4)
