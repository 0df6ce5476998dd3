"""The DC-09 receiver's shared state alone (services/ingest-contactid shared.py), this tree's against
another revision's, in one process each: ``--transmitters`` stop-and-wait tasks claim a message, wait
``--produce-ms`` (the broker write), confirm it and note the account heard, ``--messages`` times each;
the process's CPU µs and write syscalls (/proc/self/io) per message, and shared-state errors.

    .venv/bin/python bench/dc09_shared.py [--ref main] [--transmitters 8] [--messages 500] [--rounds 3]

Needs Redis at ``--redis`` (the dev stack's, default redis://127.0.0.1:6379/0); keys under a fresh prefix,
expiring (horizon 60 s). Rounds alternate between the revisions. Bounded: at most 64 × 5,000 messages.
Each transmitter claims on its own here; in the receiver the claims of one loop iteration's connections
were already one call before 5b33be7 (Dc09Receiver._enqueue), so this shape overstates what changes there.
Above ~50 transmitters a revision before 5b33be7 runs out of redis-py's pool (100 connections: a claim
and a confirm per transmitter at once) and answers from local memory: see the errors column.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = "services/ingest-contactid/src/alarmhub_ingest_contactid/shared.py"


def _writes() -> int:
    with open("/proc/self/io") as f:
        return int(dict(line.split(": ") for line in f.read().splitlines())["syscw"])


async def _run(path: str, transmitters: int, messages: int, produce_s: float, url: str) -> str:
    from alarmhub_ingest_contactid.metrics import ContactIdMetrics
    from alarmhub_redis import connect_redis
    from alarmhub_redis._client import RedisAddress
    from prometheus_client import CollectorRegistry

    spec = importlib.util.spec_from_file_location("alarmhub_ingest_contactid._bench_shared", path)
    assert spec is not None and spec.loader is not None
    mod: Any = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    metrics = ContactIdMetrics(CollectorRegistry())
    state = mod.SharedState(
        connect_redis(RedisAddress(url=url), timeout_s=0.5),
        f"benchdc09:{uuid.uuid4().hex[:8]}:",
        node="bench",
        metrics=metrics,
        horizon_s=60,
    )

    async def transmitter(i: int, tag: str, n: int) -> None:
        for j in range(n):
            key = state._key(f"LB#{i}", f"m:{tag}{j}")
            await state.claim([key])
            await asyncio.sleep(produce_s)
            state.confirm([key])
            state.heard(f"LB#{i}", datetime.now(UTC))

    await asyncio.gather(*(transmitter(i, "w", 20) for i in range(transmitters)))  # warm-up
    w0, c0 = _writes(), time.process_time()
    await asyncio.gather(*(transmitter(i, "m", messages) for i in range(transmitters)))
    c1, w1 = time.process_time(), _writes()
    await state.close()
    errors = sum(
        s.value for m in metrics.shared_errors.collect() for s in m.samples if s.name.endswith("_total")
    )
    n = transmitters * messages
    return f"{1e6 * (c1 - c0) / n:8.1f} µs CPU/msg {(w1 - w0) / n:6.2f} writes/msg {errors:6.0f} errors"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", default="main", help="the other revision (its shared.py)")
    ap.add_argument("--transmitters", type=int, default=8)
    ap.add_argument("--messages", type=int, default=500, help="per transmitter")
    ap.add_argument("--produce-ms", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # run one measurement of this shared.py (child)
    args = ap.parse_args()
    if not (1 <= args.transmitters <= 64 and 1 <= args.messages <= 5000 and 1 <= args.rounds <= 5):
        ap.error("--transmitters 1-64, --messages 1-5000, --rounds 1-5")
    if args.one:
        import uvloop

        line = uvloop.run(
            _run(args.one, args.transmitters, args.messages, args.produce_ms / 1000, args.redis)
        )
        print(line)
        return
    with tempfile.TemporaryDirectory() as tmp:
        ref = Path(tmp) / "shared.py"
        ref.write_bytes(
            subprocess.run(
                ["git", "show", f"{args.ref}:{SHARED}"], cwd=ROOT, check=True, capture_output=True
            ).stdout
        )
        for r in range(args.rounds):
            for name, path in (("this tree", ROOT / SHARED), (args.ref, ref)):
                cmd = [sys.executable, __file__, "--one", str(path), "--redis", args.redis]
                cmd += ["--transmitters", str(args.transmitters), "--messages", str(args.messages)]
                cmd += ["--produce-ms", str(args.produce_ms)]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300).stdout
                print(f"round {r + 1} {name:>12}: {out.strip().splitlines()[-1]}", flush=True)


if __name__ == "__main__":
    main()
