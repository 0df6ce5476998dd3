"""Throughput of the triage service with Redis in the path: events/s and the CPU cost per event.

    .venv/bin/python bench/triage.py                    # the whole service, and a baseline, in one run
    .venv/bin/python bench/triage.py --mode pipeline    # the stages alone, in-process, on the real Redis

``service`` mode (the figure of issue 6) pre-loads ``alarms.raw`` under a fresh topic prefix on the dev
broker, then runs, one after the other in this process and on the same records:

1. the **baseline**: the same ``ConsumerPipeline`` (poll, decode and validate every record) and
   ``DurableProducer`` (acks=all, awaited before the commit), forwarding each record unchanged —
   what any consume → produce → commit service costs here, without triage;
2. the **triage service**: ``TriageApp`` as ``alarmhub-triage`` runs it (same event loop, same logging
   level), alarms.raw → dedup/throttle/correlate/score/decide on Redis → alarms.triaged → commit.

Each is timed from its first processed batch (the consumer-group join is not throughput) until every
record is consumed; ``us_per_event_cpu`` is this process's CPU time per event (the broker and Redis run
in other processes). The difference of the two CPU figures is what triage itself costs per event.
The machine's load average is printed with each figure: on a shared box compare runs only at a
similar load, and prefer the CPU figure, which the load moves less.

``--ref REV`` (service mode) also runs the service as it was at git revision ``REV`` (its
``services/triage/src`` and ``libs/kafka/src`` (the consumer pipeline and the producer), extracted with
``git archive`` and put first on ``PYTHONPATH`` of a child
process running this script, same libraries, same records under a prefix of its own), alternating with
the current code ``--rounds`` times: the old path and the new one in the same run, then their ratio.

``pipeline`` mode runs only the stages: decode, dedup → throttle → correlate → score → decide against
Redis, encode, ``--partitions`` batches at a time as the consumer runs a poll's partitions.

Bounded: ``--events`` (default 50,000, at most 1,000,000) and ``--max-seconds``. Loopback only.
A backlog hides the per-poll and per-second costs; ``bench/triage_paced.py`` measures the service and the
broker at a steady rate (400 alarms/s, as ``bench/e2e.py``), with the same ``--ref``.
Goal (issue 6): at least 10,000 events/s through one triage process on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from alarmhub_events import AlarmEvent, AlarmKind, Location, Protocol, Qualifier, Source
from alarmhub_kafka import Message

KINDS = [
    (AlarmKind.BURGLARY, 50),
    (AlarmKind.MOTION, 15),
    (AlarmKind.PANIC, 3),
    (AlarmKind.FIRE, 2),
    (AlarmKind.OPEN_CLOSE, 15),
    (AlarmKind.TROUBLE, 5),
    (AlarmKind.VIBRATION, 10),
]


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
        at = t0 + timedelta(milliseconds=i * 20)  # 50 events/s of event time, whatever the bench speed
        vehicle = kind == AlarmKind.VIBRATION
        ev = AlarmEvent(
            kind=kind,
            qualifier=Qualifier.NEW,
            source=Source(
                protocol=Protocol.JT808 if vehicle else Protocol.DC09_CID,
                device_id=f"0139{site:08d}" if vehicle else f"L1#{site:05d}",
                account=None if vehicle else f"{site:05d}",
                path="primary",
            ),
            code="E130",
            zone=f"{rng.randint(1, 8):03d}",
            occurred_at=at,
            received_at=at,
            location=Location(lat=22.5 + (site % 100) * 0.003, lon=114.0 + (site // 100) * 0.003),
            attributes={},
        )
        out.append(ev.to_bytes())
        if rng.random() < 0.1 and len(out) < n:  # the second path of a dual-path communicator
            dup = ev.model_copy(
                update={
                    "event_id": uuid.uuid4(),
                    "source": ev.source.model_copy(update={"path": "secondary"}),
                }
            )
            out.append(dup.to_bytes())
        i += 1
    return out


async def bench_pipeline(
    raw: list[bytes], redis_url: str, batch: int, max_s: float, partitions: int = 1
) -> dict[str, object]:
    """Batches of ``partitions`` partitions run concurrently, as ConsumerPipeline runs a poll's partitions."""
    import zlib

    from alarmhub_triage import Pipeline, TriageState, load_rules
    from redis.asyncio import Redis

    rules = load_rules()
    r = Redis.from_url(redis_url, max_connections=partitions + 2)
    prefix = f"bench{uuid.uuid4().hex[:8]}.triage:"
    state = TriageState(r, prefix, ttl_s=int(rules.longest_window_s) + 600)
    pipe = Pipeline(state, lambda: rules)
    await pipe.run([AlarmEvent.from_bytes(raw[0])])  # load the scripts, warm up
    # partition by key as the broker does (the key is the source device id)
    parts: list[list[bytes]] = [[] for _ in range(partitions)]
    for b in raw:
        dev = json.loads(b)["source"]["device_id"]
        parts[zlib.crc32(dev.encode()) % partitions].append(b)
    counts = {"decisions": 0, "events": 0}

    async def one(chunk: list[bytes]) -> None:
        events = [AlarmEvent.from_bytes(b) for b in chunk]  # the consumer's validation at the boundary
        res = await pipe.run(events, chunk)
        counts["decisions"] += len(res.encoded())  # the decisions' JSON, as the service writes it
        counts["events"] += len(events)

    t0 = time.perf_counter()
    cpu0 = time.process_time()
    try:
        for i in range(0, max(len(p) for p in parts), batch):
            await asyncio.gather(*(one(p[i : i + batch]) for p in parts if p[i : i + batch]))
            if time.perf_counter() - t0 > max_s:
                break
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
    finally:
        keys = [k async for k in r.scan_iter(match=prefix + "*", count=5000)]
        for j in range(0, len(keys), 1000):
            await r.delete(*keys[j : j + 1000])
        await r.aclose()
    done = counts["events"]
    return {
        "mode": "pipeline",
        "events": done,
        "decisions": counts["decisions"],
        "batch": batch,
        "partitions": partitions,
        "seconds": round(elapsed, 3),
        "events_per_s": round(done / elapsed),
        "us_per_event_wall": round(elapsed / done * 1e6, 1),
        "us_per_event_cpu": round(cpu / done * 1e6, 1),
    }


async def _preload(raw: list[bytes], bootstrap: str, prefix: str) -> None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from alarmhub_events import ALARMS_RAW
    from alarmhub_kafka import ensure_topics

    await ensure_topics(bootstrap, prefix=prefix)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-triage")
    await admin.start()
    try:  # the pass-through baseline writes here, so triage's own topics stay untouched
        await admin.create_topics([NewTopic(prefix + PASSTHROUGH_TOPIC, 6, 1)])
    finally:
        await admin.close()
    prod = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=512 * 1024)
    await prod.start()
    try:
        futs = [
            await prod.send(prefix + ALARMS_RAW, b, key=json.loads(b)["source"]["device_id"].encode())
            for b in raw
        ]
        await asyncio.gather(*futs)
    finally:
        await prod.stop()


PASSTHROUGH_TOPIC = "bench.passthrough"


async def _count(bootstrap: str, topic: str) -> int:
    from aiokafka import AIOKafkaConsumer

    cons = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=f"bench-{uuid.uuid4().hex[:6]}",
    )
    await cons.start()
    n = 0
    try:
        t1 = time.monotonic()
        while time.monotonic() - t1 < 10:
            batch = await cons.getmany(timeout_ms=500, max_records=10_000)
            if not batch:
                break
            n += sum(len(v) for v in batch.values())
    finally:
        await cons.stop()
    return n


def _server_cpu(bootstrap: str, redis_url: str) -> dict[str, float]:
    """CPU seconds used so far by the broker and Redis processes on this machine (shared: other work counts)."""
    import psutil

    port = int(bootstrap.rsplit(":", 1)[1])
    rport = int(redis_url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
    out: dict[str, float] = {}
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        name = (
            "broker"
            if "tansu" in cmd and f":{port}" in cmd
            else "redis"
            if "redis-server" in cmd and f":{rport}" in cmd
            else None
        )
        if name:
            try:
                t = proc.cpu_times()
                out[name] = out.get(name, 0.0) + t.user + t.system
            except psutil.Error:
                pass
    return out


async def _timed(consumer: object, total: int, max_s: float, servers: tuple[str, str]) -> dict[str, object]:
    """Wait for the first processed batch (group join is not throughput), then time the rest."""
    t_start = time.perf_counter()
    while consumer.processed == 0 and time.perf_counter() - t_start < max_s:  # type: ignore[attr-defined]  # noqa: ASYNC110
        await asyncio.sleep(0.002)
    first = consumer.processed  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    srv0 = _server_cpu(*servers)
    while consumer.processed < total and time.perf_counter() - t0 < max_s:  # type: ignore[attr-defined]  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    srv1 = _server_cpu(*servers)
    done = consumer.processed - first  # type: ignore[attr-defined]
    n = max(done, 1)
    return {
        "events": done,
        "seconds": round(elapsed, 3),
        "events_per_s": round(done / elapsed) if elapsed else 0,
        "us_per_event_wall": round(elapsed / n * 1e6, 1),
        "us_per_event_cpu": round(cpu / n * 1e6, 1),
        **{f"{k}_us_per_event_cpu": round((srv1[k] - v) / n * 1e6, 1) for k, v in srv0.items() if k in srv1},
        "startup_and_join_s": round(t0 - t_start, 2),
    }


async def bench_passthrough(
    n: int, bootstrap: str, redis_url: str, prefix: str, batch: int, max_s: float
) -> dict[str, object]:
    """Baseline: the same consumer pipeline (decode + validate), durable producer and commit, no triage."""
    from alarmhub_events import ALARMS_RAW, AlarmEvent
    from alarmhub_kafka import ConsumerPipeline, DurableProducer, KafkaMetrics
    from prometheus_client import CollectorRegistry

    metrics = KafkaMetrics(CollectorRegistry())
    producer = DurableProducer(bootstrap, metrics=metrics, client_id="bench-passthrough", topic_prefix=prefix)

    async def forward(msgs: Sequence[Message[Any]]) -> None:
        await producer.send_raw_many([(PASSTHROUGH_TOPIC, m.raw, m.key) for m in msgs])

    consumer = ConsumerPipeline(
        bootstrap=bootstrap,
        group="bench-passthrough",
        topics=[ALARMS_RAW],
        model=AlarmEvent,
        handler=forward,
        producer=producer,
        metrics=metrics,
        topic_prefix=prefix,
        max_records=batch,
        client_id="bench-passthrough",
    )
    await producer.start()
    await consumer.start()
    try:
        figures = await _timed(consumer, n, max_s, (bootstrap, redis_url))
    finally:
        await consumer.stop()
        await producer.stop()
    return {
        "mode": "passthrough (baseline: consume + validate + produce acks=all + commit, no triage)",
        **figures,
        "on_topic": await _count(bootstrap, prefix + PASSTHROUGH_TOPIC),
    }


async def bench_service(
    n: int, bootstrap: str, redis_url: str, prefix: str, batch: int, max_s: float
) -> dict[str, object]:
    """The whole triage service, as ``alarmhub-triage`` runs it, in this process."""
    from alarmhub_events import ALARMS_TRIAGED
    from alarmhub_triage.app import TriageApp
    from alarmhub_triage.config import TriageSettings
    from prometheus_client import CollectorRegistry

    settings = TriageSettings(
        KAFKA_BOOTSTRAP=bootstrap,
        REDIS_URL=redis_url,
        ALARMHUB_TOPIC_PREFIX=prefix,
        ALARMHUB_HEALTH_PORT=0,
        ALARMHUB_TRIAGE_BATCH=batch,
    )
    app = TriageApp(settings, CollectorRegistry())
    await app.start()
    try:
        figures = await _timed(app.consumer, n, max_s, (bootstrap, redis_url))
    finally:
        await app.stop()
    from alarmhub_devstack.testing import drop_redis_keys

    await drop_redis_keys(redis_url, settings.key_prefix)
    return {
        "mode": "service (alarms.raw -> Redis -> alarms.triaged acks=all -> commit)",
        **figures,
        "decisions_on_topic": await _count(bootstrap, prefix + ALARMS_TRIAGED),
        "batch": batch,
    }


async def bench_services(
    raw: list[bytes],
    bootstrap: str,
    redis_url: str,
    batch: int,
    max_s: float,
    baseline: bool,
    service: bool = True,
) -> list[dict[str, object]]:
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    await _preload(raw, bootstrap, prefix)
    out = []
    if baseline:
        out.append(await bench_passthrough(len(raw), bootstrap, redis_url, prefix, batch, max_s))
    if service:
        out.append(await bench_service(len(raw), bootstrap, redis_url, prefix, batch, max_s))
    return out


#: what ``--ref`` takes from the old revision (the rest, e.g. the event models, is this tree's)
REF_SOURCES = ("services/triage/src", "libs/kafka/src")


def _ref_tree(rev: str) -> tuple[str, str]:
    """``REF_SOURCES`` as they were at ``rev``, extracted into a temporary directory; returns the short sha
    and the ``PYTHONPATH`` entries (``os.pathsep``-joined)."""
    import subprocess
    import tempfile

    root = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"],
        capture_output=True,
        text=True,
        check=True,
        cwd=os.path.dirname(os.path.abspath(__file__)),
    ).stdout.strip()
    sha = subprocess.run(
        ["git", "rev-parse", "--short", rev], capture_output=True, text=True, check=True, cwd=root
    ).stdout.strip()
    tmp = tempfile.mkdtemp(prefix="bench-triage-ref-")
    archive = subprocess.run(
        ["git", "archive", sha, *REF_SOURCES], capture_output=True, check=True, cwd=root
    ).stdout
    subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
    return sha, os.pathsep.join(os.path.join(tmp, *d.split("/")) for d in REF_SOURCES)


def _run_child(
    src: str | None, label: str, args: argparse.Namespace, n: int, batch: int
) -> dict[str, object]:
    """The service in a child process on the same records: triage from ``src`` when given (put first on
    ``PYTHONPATH``), else the installed one. Both sides of a comparison run as children, so neither
    inherits the other's heap, caches or collector state."""
    import subprocess
    import sys

    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = src + os.pathsep + os.environ.get("PYTHONPATH", "")
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--mode",
        "service",
        "--no-baseline",
        "--events",
        str(n),
        "--sites",
        str(args.sites),
        "--batch",
        str(batch),
        "--max-seconds",
        str(args.max_seconds),
        "--redis-url",
        args.redis_url,
        "--kafka",
        args.kafka,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.max_seconds * 3 + 120)
    for line in proc.stdout.splitlines():
        if line.startswith('{"mode": "service'):
            out: dict[str, object] = json.loads(line)
            out["mode"] = label
            return out
    raise RuntimeError(f"{label}: no figure printed (exit {proc.returncode}): {proc.stderr[-2000:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["service", "pipeline"], default="service")
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--sites", type=int, default=20_000)
    ap.add_argument(
        "--batch",
        type=int,
        default=None,
        help="records per poll (service; default: the service's ALARMHUB_TRIAGE_BATCH default) "
        "or per partition batch (pipeline; default 500)",
    )
    ap.add_argument(
        "--partitions", type=int, default=4, help="partitions processed concurrently (pipeline mode)"
    )
    ap.add_argument("--no-baseline", action="store_true", help="service mode: skip the pass-through baseline")
    ap.add_argument(
        "--ref", metavar="REV", help="service mode: also run triage as it was at this git revision"
    )
    ap.add_argument("--rounds", type=int, default=1, help="with --ref: reference/current runs, alternating")
    ap.add_argument("--max-seconds", type=float, default=120.0)
    ap.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    ap.add_argument("--kafka", default=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    args = ap.parse_args()
    from alarmhub_runtime import configure_logging
    from alarmhub_triage.config import TriageSettings

    try:
        from alarmhub_triage.__main__ import run as run_loop  # the service's event loop (uvloop)
    except ImportError:  # an older triage (the bench also measures a checkout of an earlier version)
        run_loop = asyncio.run

    configure_logging("triage", "INFO")  # as the service runs: JSON lines, debug filtered out
    n = max(1, min(args.events, 1_000_000))
    raw = synth(n, args.sites)
    load_before = os.getloadavg()
    if args.mode == "pipeline":
        outs = [
            run_loop(
                bench_pipeline(
                    raw, args.redis_url, args.batch or 500, args.max_seconds, max(1, args.partitions)
                )
            )
        ]
    elif args.ref:
        batch = args.batch or TriageSettings.model_fields["max_records"].default
        sha, src = _ref_tree(args.ref)
        outs = []
        if not args.no_baseline:
            before = os.getloadavg()
            outs += run_loop(
                bench_services(raw, args.kafka, args.redis_url, batch, args.max_seconds, True, service=False)
            )
            outs[-1].update(
                {
                    "loadavg_before": [round(x, 2) for x in before],
                    "loadavg_after": [round(x, 2) for x in os.getloadavg()],
                    "cpus": os.cpu_count(),
                }
            )
        ref_label, new_label = f"service at {sha} (reference: the old path)", "service (this tree)"
        for i in range(max(1, args.rounds)):
            # alternate which goes first: the box's load drifts
            order = [(src, ref_label), (None, new_label)]
            for tree, label in order if i % 2 == 0 else order[::-1]:
                outs.append(_run_child(tree, label, args, n, batch))
        import shutil

        shutil.rmtree(
            src.split(os.pathsep)[0].removesuffix(os.path.join("services", "triage", "src")),
            ignore_errors=True,
        )
        _print(outs)
        refs = [o for o in outs if str(o["mode"]).startswith("service at")]
        news = [o for o in outs if str(o["mode"]).startswith("service (this tree)")]
        base = [o for o in outs if str(o["mode"]).startswith("passthrough")]

        def mean(rows: list[dict[str, object]], k: str) -> float:
            vals = [float(r[k]) for r in rows if k in r]  # type: ignore[arg-type]
            return sum(vals) / len(vals) if vals else 0.0

        summary = {"reference": sha, "rounds": len(news)}
        for k in ("events_per_s", "us_per_event_cpu", "redis_us_per_event_cpu", "broker_us_per_event_cpu"):
            summary[f"{k}_reference"] = round(mean(refs, k), 1)
            summary[f"{k}_new"] = round(mean(news, k), 1)
        summary["new_vs_reference_throughput"] = round(
            mean(news, "events_per_s") / max(1.0, mean(refs, "events_per_s")), 2
        )
        summary["new_vs_reference_cpu_per_event"] = round(
            mean(news, "us_per_event_cpu") / max(1.0, mean(refs, "us_per_event_cpu")), 2
        )
        summary["total_cpu_us_per_event_reference"] = round(
            sum(
                summary[f"{k}_reference"]  # type: ignore[misc]
                for k in (
                    "us_per_event_cpu",
                    "redis_us_per_event_cpu",
                    "broker_us_per_event_cpu",
                )
            ),
            1,
        )
        summary["total_cpu_us_per_event_new"] = round(
            sum(
                summary[f"{k}_new"]  # type: ignore[misc]
                for k in (
                    "us_per_event_cpu",
                    "redis_us_per_event_cpu",
                    "broker_us_per_event_cpu",
                )
            ),
            1,
        )
        if base:
            summary["triage_us_per_event_cpu_over_baseline_new"] = round(
                mean(news, "us_per_event_cpu") - mean(base, "us_per_event_cpu"), 1
            )
            summary["triage_us_per_event_cpu_over_baseline_reference"] = round(
                mean(refs, "us_per_event_cpu") - mean(base, "us_per_event_cpu"), 1
            )
        print(json.dumps(summary))
        return
    else:
        batch = args.batch or TriageSettings.model_fields["max_records"].default
        outs = run_loop(
            bench_services(raw, args.kafka, args.redis_url, batch, args.max_seconds, not args.no_baseline)
        )
    load = {
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }
    for out in outs:
        out.update(load)
    _print(outs)
    if len(outs) == 2:
        base, svc = outs
        print(
            json.dumps(
                {
                    "triage_us_per_event_cpu_over_baseline": round(
                        float(svc["us_per_event_cpu"]) - float(base["us_per_event_cpu"]), 1
                    ),
                    "service_vs_baseline_throughput": round(
                        float(svc["events_per_s"]) / max(1.0, float(base["events_per_s"])), 2
                    ),
                }
            )
        )


def _print(outs: list[dict[str, object]]) -> None:
    for out in outs:
        out["goal_events_per_s"] = 10_000
        print(json.dumps(out))


if __name__ == "__main__":
    main()
