"""The triage service's fixed costs: CPU per second and per alarm at a steady, moderate rate.

    .venv/bin/python bench/triage_paced.py --rate 400 --ref main       # the e2e rate, A/B against main
    .venv/bin/python bench/triage_paced.py --rate 5 --ref main         # nearly idle: the per-second cost

``bench/triage.py`` measures a backlog: polls of thousands of records, where the per-poll costs (fetch,
commit, a Redis call, a produce request per batch) vanish. At the rates the platform runs (400 alarms/s in
``bench/e2e.py``, ~20 polls a second of ~20 records over 6 partitions) they are most of the cost. This runs
``alarmhub-triage`` as its own process (``python -m alarmhub_triage``, uvloop, INFO logging) under a fresh
topic prefix, feeds ``alarms.raw`` at ``--rate`` from this process (acks=all, every 50 ms), and after
``--warm`` seconds (the group join) reads, over ``--seconds``, the CPU of the service process and of the
broker process (Tansu: give the bench a broker of its own, ``--kafka``, or other work counts). The feeding
costs the broker the same on both sides of a comparison.

``--events-rate R`` also writes R ``incidents.events`` records a second (opened/routed events, as dispatch
publishes them, none a verdict: the verdict consumer's fetches and filter, not its Redis writes), in the
same 50 ms ticks; the broker's CPU for them counts on both sides of a comparison alike.

``--ref REV`` runs the service as it was at ``REV`` too (``services/triage/src`` and ``libs/kafka/src``
from ``git archive``, first on ``PYTHONPATH``), alternating with this tree ``--rounds`` times; this tree is
copied at the start, so editing it during a run changes nothing. ``--env NAME=VALUE`` goes to this tree's
service only (e.g. ``ALARMHUB_TRIAGE_COALESCE=0``). Each run takes ``--warm + --seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psutil
from aiokafka import AIOKafkaProducer
from alarmhub_kafka import ensure_topics
from triage import REF_SOURCES, _ref_tree, synth

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _this_tree() -> tuple[str, str]:
    """``REF_SOURCES`` of the working tree as they are now, copied (a run is not changed by later edits)."""
    tmp = tempfile.mkdtemp(prefix="bench-triage-paced-")
    paths = []
    for d in REF_SOURCES:
        dest = os.path.join(tmp, *d.split("/"))
        shutil.copytree(os.path.join(ROOT, *d.split("/")), dest)
        paths.append(dest)
    return tmp, os.pathsep.join(paths)


Side = tuple[str, str, dict[str, str]]  # label, the sources' PYTHONPATH, extra environment


def sides_of(env: list[str], ref: str | None) -> tuple[str, list[Side]]:
    """This tree's sources (copied: a temporary folder to remove) and, with ``ref``, that revision's."""
    tmp, this = _this_tree()
    sides: list[Side] = [("this tree", this, dict(e.split("=", 1) for e in env))]
    if ref:
        sha, path = _ref_tree(ref)
        sides.insert(0, (f"at {sha}", path, {}))
    return tmp, sides


def rotation(sides: list[Side], rounds: int) -> Iterator[Side]:
    """The sides in turn, ``rounds`` times, every other round reversed (the box's load drifts)."""
    for r in range(max(1, rounds)):
        yield from sides if r % 2 == 0 else sides[::-1]


def _incident_events(n: int) -> list[bytes]:
    """``n`` opened/routed incident events (what most of ``incidents.events`` is), as dispatch writes them."""
    from alarmhub_events import Actor, IncidentEvent, IncidentEventType, IncidentStatus, utcnow

    kinds = [
        (IncidentEventType.OPENED, IncidentStatus.OPENED),
        (IncidentEventType.ROUTED, IncidentStatus.ROUTED),
    ]
    out = []
    for k in range(n):
        typ, status = kinds[k % 2]
        out.append(
            IncidentEvent(
                event_id=uuid.uuid4(),
                incident_id=uuid.uuid4(),
                type=typ,
                status=status,
                station="st-1",
                actor=Actor(user="system"),
                at=utcnow(),
                source_device_id=f"L3#{1000 + k}",
                data={"rule": "default", "score": 55},
                seq=1 + k % 2,
            ).to_bytes()
        )
    return out


def _broker(bootstrap: str) -> psutil.Process:
    port = bootstrap.split(",")[0].rsplit(":", 1)[1]
    for proc in psutil.process_iter(["cmdline"]):
        if "tansu" in " ".join(proc.info["cmdline"] or []) and f":{port}" in " ".join(proc.info["cmdline"]):
            return proc
    raise SystemExit(f"no tansu process listening on :{port} on this machine (its CPU is what we read)")


def _cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


async def run_one(
    label: str,
    pythonpath: str,
    env_extra: dict[str, str],
    args: argparse.Namespace,
    raw: list[bytes],
    events: list[bytes],
) -> dict[str, Any]:
    """One service process fed at ``args.rate`` for ``warm + seconds``; its CPU and the broker's in the window."""
    prefix = f"paced{uuid.uuid4().hex[:8]}."
    await ensure_topics(args.kafka, prefix=prefix)
    env = dict(
        os.environ,
        KAFKA_BOOTSTRAP=args.kafka,
        REDIS_URL=args.redis_url,
        ALARMHUB_TOPIC_PREFIX=prefix,
        ALARMHUB_HEALTH_PORT="0",
        ALARMHUB_LOG_LEVEL="INFO",
        PYTHONPATH=pythonpath + os.pathsep + os.environ.get("PYTHONPATH", ""),
        **env_extra,
    )
    broker = _broker(args.kafka)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "alarmhub_triage",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    service = psutil.Process(child.pid)
    producer = AIOKafkaProducer(bootstrap_servers=args.kafka, acks="all", linger_ms=5)
    await producer.start()
    topic, tick, owed, sent, i = prefix + "alarms.raw", 0.05, 0.0, 0, 0
    ev_topic, ev_owed, j = prefix + "incidents.events", 0.0, 0
    t0 = time.monotonic()
    mark: tuple[float, float, float] | None = None
    try:
        while (now := time.monotonic()) < t0 + args.warm + args.seconds:
            if mark is None and now >= t0 + args.warm:
                mark, sent = (now, _cpu(service), _cpu(broker)), 0
            owed += args.rate * tick
            futures = []
            while owed >= 1:
                futures.append(await producer.send(topic, raw[i % len(raw)], key=str(i % 6000).encode()))
                i, sent, owed = i + 1, sent + 1, owed - 1
            ev_owed += args.events_rate * tick
            while ev_owed >= 1:
                ev = events[j % len(events)]
                futures.append(await producer.send(ev_topic, ev, key=str(j % 6000).encode()))
                j, ev_owed = j + 1, ev_owed - 1
            if futures:
                await asyncio.gather(*futures)
            await asyncio.sleep(max(0.0, t0 + tick * (int((now - t0) / tick) + 1) - time.monotonic()))
        assert mark is not None
        wall = time.monotonic() - mark[0]
        service_s, broker_s = _cpu(service) - mark[1], _cpu(broker) - mark[2]
        if child.returncode is not None:
            raise RuntimeError(f"{label}: the service exited ({child.returncode}) during the run")
    finally:
        await producer.stop()
        if child.returncode is None:
            child.terminate()
        await asyncio.wait_for(child.wait(), 30)
    return {
        "side": label,
        "rate": args.rate,
        "seconds": round(wall, 1),
        "alarms": sent,
        "service_cpu_pct": round(100 * service_s / wall, 2),
        "broker_cpu_pct": round(100 * broker_s / wall, 2),
        "service_ms_per_alarm": round(1000 * service_s / max(1, sent), 3),
        "broker_ms_per_alarm": round(1000 * broker_s / max(1, sent), 3),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=400.0, help="alarms per second fed to alarms.raw")
    ap.add_argument("--seconds", type=float, default=15.0, help="measured window per run")
    ap.add_argument("--warm", type=float, default=6.0, help="seconds fed before the window (group join)")
    ap.add_argument("--ref", metavar="REV", help="also run the service as it was at this git revision")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="this tree's service only"
    )
    ap.add_argument(
        "--events-rate", type=float, default=0.0, help="incidents.events records per second (no verdicts)"
    )
    ap.add_argument("--kafka", default=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    ap.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = ap.parse_args()
    raw = synth(20_000, 6000)
    events = _incident_events(2000)
    tmp, sides = sides_of(args.env, args.ref)
    rows = []
    try:
        for label, path, extra in rotation(sides, args.rounds):
            rows.append(await run_one(label, path, extra, args, raw, events))
            print(rows[-1], flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for label, _, _ in sides:
        mine = [x for x in rows if x["side"] == label]
        print(
            {
                "side": label,
                "runs": len(mine),
                **{
                    k: round(sum(x[k] for x in mine) / len(mine), 3)
                    for k in (
                        "service_cpu_pct",
                        "broker_cpu_pct",
                        "service_ms_per_alarm",
                        "broker_ms_per_alarm",
                    )
                },
            }
        )


if __name__ == "__main__":
    asyncio.run(main())
