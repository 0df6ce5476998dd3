"""Throughput of triage with Redis in the path: events/s and the cost per event.

    .venv/bin/python bench/triage.py                    # in-process pipeline on the real Redis
    .venv/bin/python bench/triage.py --mode service     # the whole service: alarms.raw → alarms.triaged

``pipeline`` mode measures what one triage process does per batch: decode the raw JSON (as the consumer
does), run dedup → throttle → correlate → score → decide against Redis (one pipelined round trip per
stage), encode the decisions (as the producer does). ``service`` mode pre-loads ``alarms.raw`` under a
fresh topic prefix, starts the triage app in this process and times until every decision is on
``alarms.triaged`` — that adds the broker, whose speed on this machine then dominates.

Bounded: ``--events`` (default 50,000, at most 1,000,000) and ``--max-seconds``. Loopback only.
Goal (issue 6): at least 10,000 events/s on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

from alarmhub_events import AlarmEvent, AlarmKind, Location, Protocol, Qualifier, Source

KINDS = [(AlarmKind.BURGLARY, 50), (AlarmKind.MOTION, 15), (AlarmKind.PANIC, 3), (AlarmKind.FIRE, 2),
         (AlarmKind.OPEN_CLOSE, 15), (AlarmKind.TROUBLE, 5), (AlarmKind.VIBRATION, 10)]


def synth(n: int, sites: int, seed: int = 1) -> list[bytes]:
    """``n`` raw alarm events as ingest publishes them (JSON bytes), 10% of them dual-path duplicates."""
    rng = random.Random(seed)
    kinds, weights = zip(*KINDS, strict=True)
    t0 = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
    out: list[bytes] = []
    i = 0
    while len(out) < n:
        kind = rng.choices(kinds, weights)[0]
        site = rng.randrange(sites)
        at = t0 + timedelta(milliseconds=i * 20)   # 50 events/s of event time, whatever the bench speed
        vehicle = kind == AlarmKind.VIBRATION
        ev = AlarmEvent(
            kind=kind, qualifier=Qualifier.NEW,
            source=Source(protocol=Protocol.JT808 if vehicle else Protocol.DC09_CID,
                          device_id=f"0139{site:08d}" if vehicle else f"L1#{site:05d}",
                          account=None if vehicle else f"{site:05d}", path="primary"),
            code="E130", zone=f"{rng.randint(1, 8):03d}", occurred_at=at, received_at=at,
            location=Location(lat=22.5 + (site % 100) * 0.003, lon=114.0 + (site // 100) * 0.003),
            attributes={})
        out.append(ev.to_bytes())
        if rng.random() < 0.1 and len(out) < n:   # the second path of a dual-path communicator
            dup = ev.model_copy(update={"event_id": uuid.uuid4(),
                                        "source": ev.source.model_copy(update={"path": "secondary"})})
            out.append(dup.to_bytes())
        i += 1
    return out


async def bench_pipeline(raw: list[bytes], redis_url: str, batch: int, max_s: float,
                         partitions: int = 1) -> dict[str, object]:
    """Batches of ``partitions`` partitions run concurrently, as ConsumerPipeline runs a poll's partitions."""
    import zlib

    from alarmhub_triage import Pipeline, TriageState, load_rules
    from redis.asyncio import Redis

    rules = load_rules()
    r = Redis.from_url(redis_url, max_connections=partitions + 2)
    prefix = f"bench{uuid.uuid4().hex[:8]}.triage:"
    state = TriageState(r, prefix, ttl_s=int(rules.longest_window_s) + 600)
    pipe = Pipeline(state, lambda: rules)
    await pipe.run([AlarmEvent.from_bytes(raw[0])])   # load the scripts, warm up
    # partition by key as the broker does (the key is the source device id)
    parts: list[list[bytes]] = [[] for _ in range(partitions)]
    for b in raw:
        dev = json.loads(b)["source"]["device_id"]
        parts[zlib.crc32(dev.encode()) % partitions].append(b)
    counts = {"decisions": 0, "events": 0}

    async def one(chunk: list[bytes]) -> None:
        events = [AlarmEvent.from_bytes(b) for b in chunk]
        res = await pipe.run(events)
        for d in res.decisions:
            d.to_bytes()
        counts["decisions"] += len(res.decisions)
        counts["events"] += len(events)

    t0 = time.perf_counter()
    cpu0 = time.process_time()
    try:
        for i in range(0, max(len(p) for p in parts), batch):
            await asyncio.gather(*(one(p[i:i + batch]) for p in parts if p[i:i + batch]))
            if time.perf_counter() - t0 > max_s:
                break
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
    finally:
        keys = [k async for k in r.scan_iter(match=prefix + "*", count=5000)]
        for j in range(0, len(keys), 1000):
            await r.delete(*keys[j:j + 1000])
        await r.aclose()
    done = counts["events"]
    return {"mode": "pipeline", "events": done, "decisions": counts["decisions"], "batch": batch,
            "partitions": partitions, "seconds": round(elapsed, 3), "events_per_s": round(done / elapsed),
            "us_per_event_wall": round(elapsed / done * 1e6, 1), "us_per_event_cpu": round(cpu / done * 1e6, 1)}


async def bench_service(raw: list[bytes], bootstrap: str, redis_url: str, max_s: float) -> dict[str, object]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from alarmhub_events import ALARMS_RAW, ALARMS_TRIAGED
    from alarmhub_kafka import ensure_topics
    from alarmhub_triage.app import TriageApp
    from alarmhub_triage.config import TriageSettings
    from prometheus_client import CollectorRegistry

    prefix = f"bench{uuid.uuid4().hex[:8]}."
    await ensure_topics(bootstrap, prefix=prefix)
    prod = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=512 * 1024)
    await prod.start()
    try:
        futs = [await prod.send(prefix + ALARMS_RAW, b, key=json.loads(b)["source"]["device_id"].encode())
                for b in raw]
        await asyncio.gather(*futs)
    finally:
        await prod.stop()
    settings = TriageSettings(KAFKA_BOOTSTRAP=bootstrap, REDIS_URL=redis_url, ALARMHUB_TOPIC_PREFIX=prefix,
                              ALARMHUB_HEALTH_PORT=0)
    app = TriageApp(settings, CollectorRegistry())
    t_start = time.perf_counter()
    await app.start()
    try:
        # Time from the first processed batch on: the consumer group join is not triage's throughput.
        while app.consumer.processed == 0 and time.perf_counter() - t_start < max_s:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        first = app.consumer.processed
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        while app.consumer.processed < len(raw) and time.perf_counter() - t0 < max_s:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        done = app.consumer.processed - first
        join_s = t0 - t_start
    finally:
        await app.stop()
    cons = AIOKafkaConsumer(prefix + ALARMS_TRIAGED, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                            group_id=f"bench-{uuid.uuid4().hex[:6]}")
    await cons.start()
    decisions = 0
    try:
        t1 = time.monotonic()
        while time.monotonic() - t1 < 5:
            batch = await cons.getmany(timeout_ms=300, max_records=10_000)
            if not batch:
                break
            decisions += sum(len(v) for v in batch.values())
    finally:
        await cons.stop()
    return {"mode": "service", "events": done, "decisions_on_topic": decisions, "seconds": round(elapsed, 3),
            "events_per_s": round(done / elapsed) if elapsed else 0,
            "us_per_event_wall": round(elapsed / max(done, 1) * 1e6, 1),
            "us_per_event_cpu": round(cpu / max(done, 1) * 1e6, 1), "startup_and_join_s": round(join_s, 2),
            "partitions": "all of alarms.raw (dev stack)"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["pipeline", "service"], default="pipeline")
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--sites", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--partitions", type=int, default=4, help="partitions processed concurrently (pipeline mode)")
    ap.add_argument("--max-seconds", type=float, default=120.0)
    ap.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    ap.add_argument("--kafka", default=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    args = ap.parse_args()
    n = max(1, min(args.events, 1_000_000))
    raw = synth(n, args.sites)
    if args.mode == "pipeline":
        out = asyncio.run(bench_pipeline(raw, args.redis_url, args.batch, args.max_seconds, max(1, args.partitions)))
    else:
        out = asyncio.run(bench_service(raw, args.kafka, args.redis_url, args.max_seconds))
    out["goal_events_per_s"] = 10_000
    print(json.dumps(out))


if __name__ == "__main__":
    main()
