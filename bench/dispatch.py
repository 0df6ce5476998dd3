"""Throughput of dispatch's apply step: triage decisions → incidents in PostgreSQL, per batch.

Starts the dispatch app in this process (fresh database, fresh topic prefix, the demo geography), registers
one DC-09 account per decision (so each decision is located from the registry, as in ``bench/e2e.py``),
and calls :meth:`Dispatcher.handle_triaged` with batches of ``--batch`` decisions, as the consumer does
with one partition's batch. Prints decisions/s and the batch latency (p50/p99), as JSON.

    .venv/bin/python bench/dispatch.py --decisions 4000 --batch 50
    .venv/bin/python bench/dispatch.py --decisions 2000 --batch 3 --partitions 6   # as at 200/s, 50 ms fetches

Bounded: ``--decisions`` (at most 50,000). Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


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


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    from alarmhub_devstack import BackingServices
    from alarmhub_devstack.testing import new_prefix
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
    try:
        d = app.dispatcher
        assert d is not None
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

        t0 = time.perf_counter()
        await asyncio.gather(*(stream(items[k :: args.partitions]) for k in range(args.partitions)))
        wall = time.perf_counter() - t0
        n = await d.store.p.fetchval("SELECT count(*) FROM incidents WHERE rule_version = 'bench'")
        lat.sort()
        return {
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
            "load_average": os.getloadavg(),
        }
    finally:
        await app.stop()
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
    args = p.parse_args(argv)
    if not 0 < args.decisions <= 50_000 or args.batch <= 0 or not 0 < args.partitions <= 64:
        p.error("decisions in 1..50,000 and a positive batch")
    print(json.dumps(asyncio.run(bench(args)), indent=2))
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
