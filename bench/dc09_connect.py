"""``bench/dc09.py --connect-per-message``: the DC-09 receiver's CPU per message when every message comes
on its own new TCP connection, the shape of ``bench/e2e.py``'s panels (bench/dc09_load.py).

Message ``i`` is due at ``start + i / rate`` (open loop) and goes out from panel ``i % accounts`` on a new
connection from its own loopback source address: connect, one clear ``ADM-CID`` frame without a timestamp
(as ``alarmhub_sim.dc09.Panel`` sends a clear site's alarm), wait for the ACK, close. The accounts are
registered supervised (``supervision_s`` 300, as e2e.py's sites), so the receiver does per message what
it does in e2e.py: accept, decide, claim in the shared state, publish and await the broker, ACK, confirm,
note the account heard, close. The figure is the receiver's CPU (user + system, its workers included)
over the window divided by the ACKs: µs per message, comparable across receivers in one rotation
whatever else runs on the box. Bounded: ``rate × duration`` messages per run, each given 10 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import time
from typing import Any

__all__ = ["drive_per_message", "gather_load", "local_address", "per_message"]


def gather_load(out: Any, workers: list[Any], timeout: float) -> tuple[list[float], float, float, int]:
    """The load processes' reports from ``out`` (latencies, CPU-s, failures each), then the processes
    joined: every latency sorted, the CPU-s in all and of the busiest, the failures in all."""
    lat: list[float] = []
    load_cpu, load_max, failed = 0.0, 0.0, 0
    for _ in workers:
        part, cpu, bad = out.get(timeout=timeout)
        lat += part
        load_cpu += cpu
        load_max = max(load_max, cpu)
        failed += bad
    for p in workers:
        p.join(timeout=30)
    lat.sort()
    return lat, load_cpu, load_max, failed


def local_address(i: int) -> str:
    """Panel ``i``'s own loopback source address (as bench/dc09_load.py)."""
    return f"127.2.{i // 250 % 250}.{i % 250 + 1}"


async def _fire(port: int, frame: bytes, source: str, lat: list[float], failed: list[int]) -> None:
    t0 = time.perf_counter()
    writer = None
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        writer.write(frame)
        reply = await asyncio.wait_for(reader.readuntil(b"\r"), 10)
        if b'"ACK"' not in reply:
            raise RuntimeError(f"not an ACK: {reply!r}")
        lat.append(time.perf_counter() - t0)
    except (OSError, RuntimeError, TimeoutError, asyncio.IncompleteReadError):
        failed[0] += 1
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def _load_process(
    port: int,
    shard: int,
    shards: int,
    count: int,
    accounts: int,
    rate: float,
    line: str,
    run_no: int,
    polls: bool,
    out: Any,
) -> None:
    from alarmhub_ingest_contactid.protocols import dc09

    async def run() -> tuple[list[float], int]:
        lat: list[float] = []
        failed = [0]
        tasks = []
        start = time.monotonic() + 0.2
        for i in range(shard, count, shards):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            acct = f"D{i % accounts:03X}"  # bench/dc09.py's clear accounts (account(i, False))
            # a message of its own in every run (the zone is the run's): none is a retransmission of another
            seq = i // accounts % 9999 + 1
            if polls:  # a link test: ACKed at once, nothing published (the connection's own cost)
                frame = dc09.encode("NULL", seq, acct, "", line=line)
            else:
                frame = dc09.encode("ADM-CID", seq, acct, f"#{acct}|1110 01 {run_no % 1000:03d}", line=line)
            tasks.append(asyncio.create_task(_fire(port, frame, local_address(i % accounts), lat, failed)))
        if tasks:
            await asyncio.wait(tasks, timeout=15)
        return lat, failed[0]

    c0 = time.process_time()
    try:
        import uvloop  # the panels' own loop, as bench/dc09_load.py

        lat, failed = uvloop.run(run())
    except ImportError:
        lat, failed = asyncio.run(run())
    out.put((lat, time.process_time() - c0, failed))


_runs = [0]


def drive_per_message(
    port: int, rate: float, duration: float, accounts: int, line: str, procs: int = 2, polls: bool = False
) -> dict[str, float]:
    """Send ``rate × duration`` messages, each on its own connection, from ``procs`` processes; ``polls``:
    NULL link tests instead of alarms."""
    count = min(int(rate * duration), accounts * 9999)
    _runs[0] += 1
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    workers = [
        ctx.Process(
            target=_load_process,
            args=(port, k, procs, count, accounts, rate, line, _runs[0], polls, out),
        )
        for k in range(procs)
    ]
    for p in workers:
        p.start()
    lat, load_cpu, load_max, failed = gather_load(out, workers, duration + 60)
    n = len(lat)
    return {
        "msgs_per_s": n / duration,
        "acked": n,
        "failed": failed,
        "p50_ms": lat[n // 2] * 1000 if n else float("nan"),
        "p99_ms": lat[min(n - 1, int(n * 0.99))] * 1000 if n else float("nan"),
        "load_cpu_ms_per_1000": load_cpu * 1e6 / max(1, n),
        "load_cpu_pct_max": load_max / duration * 100,
        "transmitters_failed": failed,
    }


def per_message(
    h: Any,
    args: Any,
    backing: Any,
    db_url: str,
    prefix: str,
    duration: float,
    rounds: int,
    workers: int,
    accounts: int,
) -> None:
    """``bench/dc09.py --connect-per-message``: alarmhub (and --baseline-python's) in alternating rounds,
    the receiver's CPU per message; ``h`` is bench/dc09.py (its receivers, CPU and metrics helpers)."""
    receivers = [("alarmhub", *h.start_alarmhub(backing, db_url, prefix, args.log_level, workers=workers))]
    if args.baseline_python:
        receivers.append(
            (
                "alarmhub_base",
                *h.start_alarmhub(
                    backing, db_url, prefix, args.log_level, python=args.baseline_python, workers=workers
                ),
            )
        )
    broker = h.broker_pid(backing.kafka_bootstrap)
    rows: list[tuple[str, int, dict[str, float]]] = []
    try:
        time.sleep(1.0)
        for _, _, port, _ in receivers:  # warm-up: every account heard once, code paths hot
            drive_per_message(
                port, args.rate, max(2.0, accounts / args.rate), accounts, h.LINE, h.LOAD_PROCS, args.polls
            )
        for rnd in range(rounds):
            for name, proc, port, health in receivers:
                before = h.published_events(health, workers)
                r = h.measured(
                    proc.pid,
                    lambda port=port: drive_per_message(
                        port, args.rate, duration, accounts, h.LINE, h.LOAD_PROCS, args.polls
                    ),
                    broker,
                )
                r["published"] = h.published_events(health, workers) - before
                rows.append((name, rnd, r))
    finally:
        for _, proc, _, _ in receivers:
            h.stop(proc)
    if args.json:
        print(json.dumps([{"receiver": n, "round": k, **r} for n, k, r in rows], indent=2))
        return
    print(
        f"DC-09 receiver, one new connection per {'NULL poll' if args.polls else 'alarm'}: {args.rate:.0f} msgs/s offered for {duration:.0f} s "
        f"over {accounts} supervised accounts, {rounds} alternating round(s), {workers} worker(s), load "
        f"from {h.LOAD_PROCS} processes"
    )
    print(
        f"{'receiver':<16}{'round':>6}{'ACKed':>8}{'failed':>8}{'published':>10}{'rx CPU µs/msg':>15}"
        f"{'of it sys':>10}{'rx CPU%':>9}{'p50 ms':>9}{'p99 ms':>9}{'load µs/msg':>13}{'broker%':>9}"
    )
    for name, rnd, r in rows:
        print(
            f"{name:<16}{rnd + 1:>6}{int(r['acked']):>8}{int(r['failed']):>8}{int(r['published']):>10}"
            f"{r['cpu_ms_per_1000']:>15.0f}{r['sys_share']:>10.0%}{r['cpu_pct']:>9.0f}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}"
            f"{r['load_cpu_ms_per_1000']:>13.0f}{r['broker_cpu_pct']:>9.0f}"
        )
    print(f"machine load average after the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
