"""Open-loop DC-09 panels for ``bench/e2e.py``, in a process of their own (several: ``--shards``).

Alarm ``i`` of ``--count`` is due at ``start + i / rate`` (wall clock, the same schedule in every shard) and
goes out from panel ``i`` (site ``i`` of ``demo_sites(count, seed)``, the sites e2e.py registered) on its own
new TCP connection from its own loopback address, as a panel that connects per message does; shard ``k`` of
``K`` sends the alarms with ``i % K == k``. The panels are ``alarmhub_sim.dc09.Panel`` (retransmission after
``--ack-timeout`` without a reply, 2 retries).

Why a process: e2e.py paced, connected and read the SSE stream in one event loop. At 400 alarms/s on the
shared 2-core box that loop lagged (a 10 ms timer fired up to 0.5-3 s late) and the panels' connect times
(p50 0.6-1.1 s, the kernel counted no SYN retransmission, no listen overflow) were the driver's lag, not
the receiver's; the same lag delayed reading the stream (``opened_to_stream``).

Protocol on stdin/stdout (JSON lines): prints ``{"event": "ready", ...}`` once its sites are built, waits for
one line ``{"start": <wall-clock seconds>}`` on stdin, sends, writes ``{"event": "done", "alarms":
[[device_id, sent, connected, replied, reply], ...], "loop_lag_ms": {...}}`` to ``--out`` with wall-clock times
(``connected`` / ``replied`` null when it did not happen) and prints ``{"event": "done", "out": ...}``. Bounded: ``count`` alarms, each given up after its retries;
loopback addresses only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any


def local_address(i: int) -> str:
    """Panel ``i``'s own loopback source address (the receiver limits connections per address)."""
    return f"127.1.{i // 250 % 250}.{i % 250 + 1}"


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from alarmhub_sim import dc09
    from alarmhub_sim.sites import demo_sites

    sites = demo_sites(args.count, seed=args.seed, line="3", company="bench")
    mine = [(i, s) for i, s in enumerate(sites) if i % args.shards == args.shard]
    print(json.dumps({"event": "ready", "shard": args.shard, "alarms": len(mine)}), flush=True)
    line = await asyncio.to_thread(sys.stdin.readline)
    start = float(json.loads(line)["start"])

    results: list[list[Any]] = []
    stats: Counter[str] = Counter()
    lags: list[float] = []

    async def watch_lag() -> None:  # this loop's own lag: how late a 10 ms timer fires
        while True:
            t = time.monotonic()
            await asyncio.sleep(0.01)
            lags.append(time.monotonic() - t - 0.01)

    async def fire(i: int, site: Any) -> None:
        panel = dc09.Panel(
            site,
            args.host,
            args.port,
            ack_timeout_s=args.ack_timeout,
            retries=2,
            local_host=local_address(i),
        )
        sent = time.time()
        connected: float | None = None
        reply = "connect_failed"
        try:
            with contextlib.suppress(OSError):
                await panel.connect()
                connected = time.time()
            reply = await panel.send("ADM-CID", f"#{site.account}|1110 01 003", stats)
        except ValueError as exc:  # a reply that does not decode: counted by its kind, never lost
            reply = type(exc).__name__
        finally:
            await panel.close()
        results.append([site.device_id, sent, connected, time.time(), reply])

    lag_task = asyncio.create_task(watch_lag())
    tasks = []
    for i, site in mine:  # bounded: this shard's alarms, each at its slot of the global schedule
        delay = start + i / args.rate - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(fire(i, site)))
    if tasks:
        await asyncio.wait(tasks, timeout=args.ack_timeout * 3 + 30)
    lag_task.cancel()
    s = sorted(lags) or [0.0]
    return {
        "event": "done",
        "shard": args.shard,
        "alarms": results,
        "retransmissions": stats.get("retransmitted", 0),
        "loop_lag_ms": {
            "p50": round(1000 * s[len(s) // 2], 1),
            "p99": round(1000 * s[min(len(s) - 1, int(0.99 * len(s)))], 1),
            "max": round(1000 * s[-1], 1),
        },
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--rate", type=float, required=True, help="alarms per second, all shards together")
    p.add_argument("--count", type=int, required=True, help="alarms (and sites) in all")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--shards", type=int, default=1)
    p.add_argument("--shard", type=int, default=0)
    p.add_argument("--ack-timeout", type=float, default=5.0)
    p.add_argument("--out", required=True, help="file for the results (JSON)")
    args = p.parse_args()
    if not (0 < args.count <= 50_000 and args.rate > 0 and 0 <= args.shard < args.shards <= 16):
        p.error("0 < count <= 50,000, rate > 0, 0 <= shard < shards <= 16")
    if not args.host.startswith("127."):
        p.error("loopback only")
    try:
        import uvloop  # the panels' own loop: libuv's per-connection overhead is lower than asyncio's

        result = uvloop.run(run(args))
    except ImportError:
        result = asyncio.run(run(args))
    # the results go to a file (a 100 kB line on the pipe came back cut at 64 kB with a log line in it)
    Path(args.out).write_text(json.dumps(result))
    print(json.dumps({"event": "done", "out": args.out}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
