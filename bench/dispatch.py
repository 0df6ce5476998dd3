"""Throughput of dispatch's apply step: triage decisions → incidents in PostgreSQL, per batch.

Starts the dispatch app in this process (fresh database, fresh topic prefix, the demo geography), registers
one DC-09 account per decision (so each decision is located from the registry, as in ``bench/e2e.py``),
and calls :meth:`Dispatcher.handle_triaged` with batches of ``--batch`` decisions, as the consumer does
with one partition's batch. Prints decisions/s, the batch latency (p50/p99) and the CPU each decision
cost: this process's (the app and the bench driver, which only awaits the calls; user + system, all
threads) and that of the PostgreSQL backends serving the bench's database (psutil; the server may be
shared, its other backends are not counted), as JSON. The CPU window includes the background outbox
publisher's drain to ``incidents.events`` and the live-stream tail's reading of it.

``--idle S`` first measures the same two CPU figures over S seconds with no decisions (the consumers'
polls, the timers, the stream tail): the fixed cost a replica pays whatever the load.

``--gps N`` then measures the tracks side: N ``telemetry.gps`` records (JSON as ingest-gps writes them, over
``--gps-vehicles`` vehicles) decoded as the tracks consumer decodes them (its model's
``model_validate_json``) and handed to :meth:`DispatchApp.handle_gps` in batches of the consumer's
``ALARMHUB_DISPATCH_GPS_BATCH``; the same two CPU figures per fix (``gps``).

    .venv/bin/python bench/dispatch.py --decisions 4000 --batch 50
    .venv/bin/python bench/dispatch.py --decisions 2000 --batch 3 --partitions 6   # as at 200/s, 50 ms fetches
    .venv/bin/python bench/dispatch.py --decisions 3000 --batch 10 --partitions 6 --idle 15
    .venv/bin/python bench/dispatch.py --decisions 2000 --batch 20 --partitions 6 --gps 40000

Bounded: ``--decisions`` (at most 50,000). Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def cpu_seconds(db_name: str) -> tuple[float, float]:
    """CPU seconds (user + system) so far of this process and of the PostgreSQL backends of ``db_name`` (not
    an autovacuum worker's)."""
    import psutil

    t = psutil.Process().cpu_times()
    pg = 0.0
    for p in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            cmd = " ".join(p.info["cmdline"] or ())
            if db_name in cmd and "autovacuum" not in cmd:  # autovacuum's passes come when they come: noise
                c = p.cpu_times()
                pg += c.user + c.system
    return t.user + t.system, pg


class RoundTrips:
    """PostgreSQL round trips of this process's asyncpg connections, counted by wrapping asyncpg's three
    ways to the server (a simple query — BEGIN, COMMIT, an argument-less execute —, a statement with
    arguments, an executemany: one pipelined round trip however many rows). The bench's own process only."""

    def __init__(self) -> None:
        from asyncpg.connection import Connection

        self.n = 0
        self.many_rows = 0
        execute, one, many = Connection.execute, Connection._execute, Connection._executemany
        counter = self

        async def counted_execute(conn: Any, query: str, *args: Any, **kw: Any) -> Any:
            if not args:
                counter.n += 1
            return await execute(conn, query, *args, **kw)

        async def counted_one(conn: Any, *args: Any, **kw: Any) -> Any:
            counter.n += 1
            return await one(conn, *args, **kw)

        async def counted_many(conn: Any, query: str, args: Any, *rest: Any, **kw: Any) -> Any:
            counter.n += 1
            args = list(args)
            counter.many_rows += len(args)
            return await many(conn, query, args, *rest, **kw)

        Connection.execute = counted_execute
        Connection._execute = counted_one
        Connection._executemany = counted_many


class CpuWindow:
    """CPU spent by this process and the database's backends between two readings. A backend that ended in
    between loses its share (the pool keeps its connections: none should)."""

    def __init__(self, db_name: str) -> None:
        self.db_name = db_name
        self.own0, self.pg0 = cpu_seconds(db_name)

    def read(self) -> tuple[float, float]:
        own, pg = cpu_seconds(self.db_name)
        return own - self.own0, pg - self.pg0


def decision(i: int, account: str) -> Any:
    from alarmhub_events import AlarmEvent, AlarmKind, Decision, Protocol, Reason, Source, TriagedAlarm

    t0 = datetime.now(UTC)
    ev = AlarmEvent(
        kind=AlarmKind.FIRE,
        source=Source(protocol=Protocol.DC09_CID, device_id=f"L3#{account}", account=account, line="L3"),
        code="E110",
        zone="003",
        occurred_at=t0,
        received_at=t0,
    )
    return TriagedAlarm(
        incident_id=uuid.uuid4(),
        event=ev,
        decision=Decision.DISPATCH,
        score=90,
        priority=1,
        rule_version="bench",
        decided_at=t0,
        reasons=[Reason(code="fire_code", text="Fire code", text_zh="火警代码", weight=40)],
    )


def gps_records(n: int, vehicles: int) -> list[bytes]:
    from alarmhub_events import GpsFix, Protocol

    t0 = datetime.now(UTC)
    return [
        GpsFix(
            device_id=f"0139{i % vehicles:08d}",
            protocol=Protocol.JT808,
            lat=22.5 + (i % 997) * 1e-4,
            lon=114.0 + (i % 991) * 1e-4,
            speed_kmh=40.5,
            heading_deg=90.0,
            altitude_m=12.0,
            occurred_at=t0 + timedelta(milliseconds=i),
            received_at=t0,
            attributes={"alarm_flags": 0, "status_flags": 3},
        ).to_bytes()
        for i in range(n)
    ]


async def gps(app: Any, db_name: str, args: argparse.Namespace) -> dict[str, Any]:
    """The tracks side's CPU per fix: decode as the tracks consumer does, then its handler, batch by batch."""
    from alarmhub_kafka import Message

    consumer = app.gps_consumer
    model = consumer._model  # what the pipeline decodes each record with
    records = gps_records(args.gps, args.gps_vehicles)
    size = app.settings.gps_batch
    w = CpuWindow(db_name)
    for start in range(0, len(records), size):
        msgs = [
            Message("telemetry.gps", 0, start + i, None, model.model_validate_json(r), r, 0)
            for i, r in enumerate(records[start : start + size])
        ]
        await app.handle_gps(msgs)
    own, pg = w.read()
    return {
        "fixes": len(records),
        "vehicles": args.gps_vehicles,
        "batch": size,
        "cpu_us_per_fix": {
            "dispatch": round(1e6 * own / len(records), 2),
            "postgres": round(1e6 * pg / len(records), 2),
            "total": round(1e6 * (own + pg) / len(records), 2),
        },
    }


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    from alarmhub_devstack import BackingServices
    from alarmhub_devstack.testing import drop_redis_keys, new_prefix
    from alarmhub_dispatch.app import DispatchApp
    from alarmhub_dispatch.config import DispatchSettings
    from alarmhub_kafka import ensure_topics
    from alarmhub_runtime import configure_logging
    from alarmhub_store import migrate_sync
    from prometheus_client import CollectorRegistry

    configure_logging("dispatch", args.log_level)

    backing = BackingServices(state_dir=ROOT / ".devstack").start()
    db_url = f"{backing.postgres_url.rsplit('/', 1)[0]}/alarmhub_bench_{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(migrate_sync, db_url)
    prefix = new_prefix()
    await ensure_topics(backing.kafka_bootstrap, prefix=prefix)
    settings = DispatchSettings(
        KAFKA_BOOTSTRAP=backing.kafka_bootstrap,
        DATABASE_URL=db_url,
        REDIS_URL=backing.redis_url,
        ALARMHUB_TOPIC_PREFIX=prefix,
        ALARMHUB_HTTP_PORT=0,
        ALARMHUB_HTTP_HOST="127.0.0.1",
        ALARMHUB_HEALTH_PORT=0,
        ALARMHUB_LOG_LEVEL="WARNING",
    )
    app = DispatchApp(settings, CollectorRegistry())
    await app.start()
    db_name = db_url.rsplit("/", 1)[1]
    out: dict[str, Any] = {}
    try:
        d = app.dispatcher
        assert d is not None
        if args.idle:
            await asyncio.sleep(3)  # the groups joined, the first timer ticks and maintenance passed
            w = CpuWindow(db_name)
            await asyncio.sleep(args.idle)
            own, pg = w.read()
            out["idle"] = {
                "seconds": args.idle,
                "dispatch_cpu_pct": round(100 * own / args.idle, 2),
                "postgres_cpu_pct": round(100 * pg / args.idle, 2),
            }
        accounts = [f"{90000 + i:06d}" for i in range(args.decisions)]
        rows = [
            (
                "3",
                a,
                "bench",
                22.54 + (i % 100) * 0.001,
                114.05 + (i // 100 % 100) * 0.001,
                f"site {a}",
                f"address {a}",
            )
            for i, a in enumerate(accounts)
        ]
        await d.store.p.executemany(
            "INSERT INTO accounts (line, account, company, lat, lon, site_name, site_address)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT DO NOTHING",
            rows,
        )
        items = [decision(i, a) for i, a in enumerate(accounts)]
        lat: list[float] = []

        async def stream(part: list[Any]) -> None:  # one partition: its batches one after the other
            for start in range(0, len(part), args.batch):
                b0 = time.perf_counter()
                await d.handle_triaged(part[start : start + args.batch])
                lat.append(time.perf_counter() - b0)

        trips = RoundTrips()
        t0 = time.perf_counter()
        w = CpuWindow(db_name)
        await asyncio.gather(*(stream(items[k :: args.partitions]) for k in range(args.partitions)))
        wall = time.perf_counter() - t0
        await d.drain_publisher()  # the outbox's last drain counts too
        own, pg = w.read()
        n_trips, n_rows = trips.n, trips.many_rows
        n = await d.store.p.fetchval("SELECT count(*) FROM incidents WHERE rule_version = 'bench'")
        lat.sort()
        if args.gps:
            out["gps"] = await gps(app, db_name, args)
        return out | {
            "decisions": len(items),
            "batch": args.batch,
            "partitions": args.partitions,
            "incidents": n,
            "seconds": round(wall, 2),
            "decisions_per_s": round(len(items) / wall, 1),
            "batch_ms": {
                "p50": round(1000 * lat[len(lat) // 2], 1),
                "p99": round(1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))], 1),
            },
            "cpu_us_per_decision": {
                "dispatch": round(1e6 * own / len(items), 1),
                "postgres": round(1e6 * pg / len(items), 1),
                "total": round(1e6 * (own + pg) / len(items), 1),
            },
            "postgres_round_trips_per_decision": round(n_trips / len(items), 3),
            "executemany_rows_per_decision": round(n_rows / len(items), 3),
            "load_average": os.getloadavg(),
        }
    finally:
        await app.stop()
        await drop_redis_keys(backing.redis_url, prefix)
        backing.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--decisions", type=int, default=4000)
    p.add_argument(
        "--batch", type=int, default=50, help="decisions per handle_triaged call (one partition's batch)"
    )
    p.add_argument(
        "--partitions", type=int, default=1, help="partitions applied concurrently, as the consumer does"
    )
    p.add_argument("--log-level", default="WARNING", help="as bench/e2e.py runs the services")
    p.add_argument(
        "--idle", type=float, default=0, help="first measure S seconds of idle CPU (0: skip; at most 120)"
    )
    p.add_argument(
        "--gps", type=int, default=0, help="then N telemetry.gps records (0: skip; at most 200,000)"
    )
    p.add_argument("--gps-vehicles", type=int, default=2000, help="vehicles the --gps records come from")
    args = p.parse_args(argv)
    if not 0 < args.decisions <= 50_000 or args.batch <= 0 or not 0 < args.partitions <= 64:
        p.error("decisions in 1..50,000 and a positive batch")
    if not 0 <= args.gps <= 200_000 or args.gps_vehicles <= 0:
        p.error("gps in 0..200,000 and a positive gps-vehicles")
    if not 0 <= args.idle <= 120:
        p.error("idle in 0..120 seconds")
    print(json.dumps(asyncio.run(bench(args)), indent=2))
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
