"""The GPS gateway's CPU per fix in ``bench/e2e.py``'s background shape, alone: A/B against a revision.

    .venv/bin/python bench/gps_open.py --ref main --rounds 3               # this tree vs main, alternated
    .venv/bin/python bench/gps_open.py --rounds 2 --workers 1 --workers 2  # this tree, 1 vs 2 workers

Each round starts the gateway (``python -m alarmhub_ingest_gps``, ``ALARMHUB_GPS_WORKERS=--workers``, one
as ``bench/e2e.py`` runs it: ``service_env`` sets 1) on a fresh topic prefix, drives it with
``bench/gps_load.py`` (300 terminals, open loop, ``--rate`` fixes/s for ``--duration`` s: e2e's load) and
reports the gateway's CPU (psutil, user + system, every process) from the first frame to the last, per
fix sent, with the system share, and the producer calls (``alarmhub_kafka_produce_seconds_count`` on
``telemetry.gps``, worker 0) per 1,000 fixes: fewer, bigger calls mean each event-loop wake-up found more
reads, which on this shared box moves the CPU per fix by ±20 % between rounds of the same code — so
alternate and quote every round. ``--ref REV`` runs the gateway with ``services/ingest-gps/src`` and
``libs/kafka/src`` as they were at ``REV`` (``git archive``, first on ``PYTHONPATH``); ``--env K=V`` goes
to every gateway. The broker: ``KAFKA_BOOTSTRAP`` (default a private one on 127.0.0.1:19397, started and
stopped here unless already up). Bounded: rounds × variants runs of ``--duration`` + ~15 s; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
REF_SOURCES = ("services/ingest-gps/src", "libs/kafka/src")
PORTS = (
    "ALARMHUB_JT808_PORT",
    "ALARMHUB_GT06_PORT",
    "ALARMHUB_H02_PORT",
    "ALARMHUB_GPS_COMMAND_PORT",
    "ALARMHUB_JT809_PORT",
)


def ref_tree(rev: str) -> tuple[str, str]:
    """``REF_SOURCES`` at ``rev`` in a temporary directory: the short sha and the ``PYTHONPATH`` entries."""
    sha = subprocess.run(
        ["git", "rev-parse", "--short", rev], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.strip()
    tmp = tempfile.mkdtemp(prefix="bench-gps-open-")
    archive = subprocess.run(["git", "archive", sha, *REF_SOURCES], capture_output=True, check=True, cwd=ROOT)
    subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
    return sha, os.pathsep.join(os.path.join(tmp, d) for d in REF_SOURCES)


def cpu_s(ps: psutil.Process) -> tuple[float, float]:
    """User and system CPU seconds of the gateway and its workers."""
    user = system = 0.0
    for p in [ps, *ps.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            user, system = user + t.user, system + t.system
    return user, system


def produce_calls(health_port: int) -> float:
    url = f"http://127.0.0.1:{health_port}/metrics"
    with contextlib.suppress(OSError):
        for line in urllib.request.urlopen(url, timeout=5).read().decode().splitlines():
            if line.startswith("alarmhub_kafka_produce_seconds_count{") and "telemetry.gps" in line:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def one_run(
    stack: Any, args: argparse.Namespace, label: str, pythonpath: str | None, workers: int
) -> dict[str, Any]:
    from alarmhub_devstack.testing import ServiceProcess, new_prefix, service_env
    from alarmhub_kafka import ensure_topics

    prefix = "gpsopen" + new_prefix()
    asyncio.run(ensure_topics(stack.kafka_bootstrap, prefix=prefix))
    env = service_env(
        stack,
        prefix,
        ALARMHUB_GPS_AUTH_SECRET="bench-secret",
        ALARMHUB_GPS_UNREGISTERED="accept",
        ALARMHUB_LOG_LEVEL="WARNING",
        ALARMHUB_GPS_WORKERS=str(workers),
        **dict(kv.split("=", 1) for kv in args.env),
    )
    if pythonpath:
        env["PYTHONPATH"] = pythonpath + os.pathsep + env.get("PYTHONPATH", "")
    svc = ServiceProcess.create("alarmhub_ingest_gps", env, PORTS)
    svc.log_dir = ROOT / "artifacts" / "logs"
    svc.start(timeout=120)
    assert svc.proc is not None
    ps = psutil.Process(svc.proc.pid)
    try:
        port = str(svc.ports["ALARMHUB_JT808_PORT"])
        load = subprocess.Popen(
            [
                *(
                    sys.executable,
                    str(ROOT / "bench" / "gps_load.py"),
                    "--port",
                    port,
                    "--rate",
                    str(args.rate),
                ),
                *("--connections", "300", "--duration", str(args.duration), "--lead", "3"),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert load.stdout is not None
        json.loads(load.stdout.readline())  # ready: every terminal logged in, the first frame in 3 s
        time.sleep(3.0)
        (u0, s0), calls0 = cpu_s(ps), produce_calls(svc.ports["ALARMHUB_HEALTH_PORT"])
        done = json.loads(load.stdout.readline())
        (u1, s1), calls1 = cpu_s(ps), produce_calls(svc.ports["ALARMHUB_HEALTH_PORT"])
        load.wait(30)
    finally:
        svc.stop()
    sent = max(1, done["sent"])
    return {
        "variant": label,
        "workers": workers,
        "sent": done["sent"],
        "replies": done["replies"],
        "skipped": done["skipped"],
        "cpu_us_per_fix": round((u1 - u0 + s1 - s0) / sent * 1e6, 1),
        "system_us_per_fix": round((s1 - s0) / sent * 1e6, 1),
        "produce_calls_per_1000_fixes_w0": round((calls1 - calls0) / sent * 1000 * workers, 1),
        "load_average": round(os.getloadavg()[0], 1),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref", help="also run the gateway as it was at this revision, alternating")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--rate", type=float, default=5000.0)
    p.add_argument("--duration", type=float, default=12.0)
    p.add_argument("--workers", type=int, action="append", help="ALARMHUB_GPS_WORKERS (repeatable)")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    a = p.parse_args()
    a.rounds, a.duration = min(a.rounds, 10), min(a.duration, 60.0)
    from alarmhub_devstack import BackingServices
    from alarmhub_store import migrate_sync

    backing = BackingServices(
        kafka_bootstrap=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:19397"),
        redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        postgres_url=os.environ.get("ALARMHUB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
        state_dir=ROOT / ".devstack" / "test",
    ).start()
    variants: list[tuple[str, str | None, int]] = [(f"this:{w}", None, w) for w in a.workers or [1]]
    if a.ref:
        sha, ref_path = ref_tree(a.ref)
        variants = [
            v for w in a.workers or [1] for v in ((f"{sha}:{w}", ref_path, w), (f"this:{w}", None, w))
        ]
    runs = []
    try:
        database = f"{backing.postgres_url.rsplit('/', 1)[0]}/alarmhub_bench"
        migrate_sync(database)

        class Stack:
            kafka_bootstrap, redis_url, database_url = backing.kafka_bootstrap, backing.redis_url, database

        for _ in range(a.rounds):
            for label, path, workers in variants:
                runs.append(one_run(Stack, a, label, path, workers))
                print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    finally:
        backing.stop()
    summary = {
        label: {
            "cpu_us_per_fix": [r["cpu_us_per_fix"] for r in runs if r["variant"] == label],
            "median": statistics.median(r["cpu_us_per_fix"] for r in runs if r["variant"] == label),
        }
        for label, _, _ in variants
    }
    print(json.dumps({"bench": "gps_open", "rate": a.rate, "duration": a.duration, "summary": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
