"""Benchmark of JT/T 809 intake: positions/s over one main link and over ten, durable write included.

The ``Jt809Server`` runs in this process (one process, uvloop) with a real ``DurableProducer`` against
the dev broker (reused if reachable, else started); lower platforms run in separate load processes
and stream pre-encoded 0x1202 frames as fast as the link takes them (2,000 frames, ~180 KB, per
write). A position counts once the broker acknowledged its ``telemetry.gps`` record (the server
awaits the write before reading on).

Each link count runs once per path, alternately, in the same invocation, then a ratio line (new/old):

- ``old``: as before this work: the hot path builds a ``GpsFix`` and serializes it, and every read is
  its own producer call, four at once (``group_commit=False``);
- ``direct``: the hot path writes the fix's JSON itself, writes as in ``old``;
- ``new``: what ingest-gps runs: the direct path and the group commit (the server's defaults).

    .venv/bin/python bench/jt809.py --links 1 10 --positions 100000 --repeat 2
    .venv/bin/python bench/jt809.py --links 10 --positions 50000 --paths new

Prints one JSON line per run: path, links, positions, seconds, positions_per_s, the gateway's CPU
per position (this process: decode, JSON, Kafka client), the load processes' CPU seconds, peak RSS.
Every loop is bounded in count and time; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
from datetime import UTC, datetime
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench809"


def fleet_frames(user_id: int, now: datetime, count: int) -> bytes:
    """``count`` 2011 0x1202 frames of a 500-vehicle fleet (plates stable for ``user_id``), back to back."""
    from alarmhub_ingest_gps.protocols import jt809 as p
    from alarmhub_sim.jt809 import plates

    fleet = plates(500, user_id)
    return b"".join(
        p.encode(
            p.UP_EXG_MSG,
            p.encode_vehicle(
                fleet[i % len(fleet)],
                2,
                p.UP_EXG_MSG_REAL_LOCATION,
                p.encode_position_2011(22.54 + i * 1e-5, 114.05, now, speed=40),
            ),
            serial=i,
            gnss_center_id=user_id,
        )
        for i in range(count)
    )


def _loader(
    port: int, user_id: int, positions: int, ready: MpEvent, go: MpEvent, timeout: float, cpu: Any
) -> None:
    import uvloop

    uvloop.run(_load(port, user_id, positions, ready, go, timeout, cpu))


async def _load(
    port: int, user_id: int, positions: int, ready: MpEvent, go: MpEvent, timeout: float, cpu: Any
) -> None:
    from alarmhub_ingest_gps.protocols import jt809 as p

    batch = 500
    frames = fleet_frames(user_id, datetime.now(UTC), batch)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        p.encode(
            p.UP_CONNECT_REQ,
            p.encode_login(p.Login(user_id, PASSWORD, "127.0.0.1", 0)),
            serial=0,
            gnss_center_id=user_id,
        )
    )
    await writer.drain()
    await asyncio.wait_for(reader.read(4096), timeout)
    ready.set()
    await asyncio.get_running_loop().run_in_executor(None, go.wait, timeout)
    cpu0 = time.process_time()
    big = (
        frames * 4
    )  # one large write: the generator's cost per position stays a small fraction of the gateway's
    sent = 0
    deadline = time.monotonic() + timeout
    while sent < positions and time.monotonic() < deadline:
        if positions - sent >= 4 * batch:
            writer.write(big)
            sent += 4 * batch
        else:
            writer.write(frames)
            sent += batch
        await writer.drain()
    writer.write(p.encode(p.UP_LINKTEST_REQ, b"", serial=1, gnss_center_id=user_id))
    await writer.drain()
    await asyncio.wait_for(reader.read(4096), timeout)  # 0x1006: everything before it was published
    cpu.value = time.process_time() - cpu0  # the load must not be what limits the figure: report its CPU
    writer.close()


#: server settings per path (see the module docstring)
PATHS: dict[str, dict[str, Any]] = {
    "old": {"direct": False, "group_commit": False, "inflight_total": 4},
    "direct": {"direct": True, "group_commit": False, "inflight_total": 4},
    "new": {},  # the server's defaults: direct path, group commit
}


async def _bench(
    bootstrap: str, prefix: str, links: int, positions: int, timeout: float, path: str
) -> dict[str, Any]:
    from alarmhub_ingest_gps.jt809 import Jt809Server, PlatformDirectory, PlatformRecord, raw_items
    from alarmhub_kafka import DurableProducer, KafkaMetrics
    from prometheus_client import CollectorRegistry

    producer = DurableProducer(
        bootstrap,
        metrics=KafkaMetrics(CollectorRegistry()),
        client_id="bench-jt809",
        topic_prefix=prefix,
        service="bench",
        batch_threshold=int(os.environ.get("BENCH_JT809_BATCH_THRESHOLD", "1000")),  # ingest-gps's
    )
    await producer.start()

    calls: list[tuple[int, float]] = []  # records and seconds of each producer call

    async def publish(items: list[tuple[str, Any]]) -> None:
        t = time.perf_counter()
        await producer.send_raw_many(raw_items(items))  # as ingest-gps's app does
        calls.append((len(items), time.perf_counter() - t))

    records = [PlatformRecord(90000 + i, PASSWORD, 90000 + i, f"bench-{i}") for i in range(links)]
    server = Jt809Server(
        host="127.0.0.1",
        port=0,
        directory=PlatformDirectory(records),
        publish=publish,
        slave_enabled=False,
        **PATHS[path],
    )
    await server.start()
    ctx = mp.get_context("spawn")
    go = ctx.Event()
    readies = [ctx.Event() for _ in range(links)]
    cpus = [ctx.Value("d", 0.0) for _ in range(links)]
    procs = [
        ctx.Process(
            target=_loader, args=(server.port, 90000 + i, positions, readies[i], go, timeout, cpus[i])
        )
        for i in range(links)
    ]
    for pr in procs:
        pr.start()
    loop = asyncio.get_running_loop()
    try:
        for r in readies:
            if not await loop.run_in_executor(None, r.wait, timeout):
                raise RuntimeError("a loader did not log in")
        total = positions * links
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        go.set()
        deadline = t0 + timeout
        while server.stats["positions"] < total and time.perf_counter() < deadline:
            if not any(pr.is_alive() for pr in procs) and server.stats["positions"] < total:
                await asyncio.sleep(1.0)  # loaders gone: whatever is still in flight lands now, or never
                break
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        done = server.stats["positions"]
    finally:
        for pr in procs:
            pr.join(timeout=30)
            if pr.is_alive():
                pr.terminate()
        await server.stop()
        await producer.stop()
    return {
        "path": path,
        "producer_calls": len(calls),
        "records_per_call": round(statistics.mean(n for n, _ in calls)) if calls else 0,
        "call_ms_median": round(statistics.median(t for _, t in calls) * 1e3, 1) if calls else 0,
        "links": links,
        "positions": done,
        "complete": done >= total,
        "seconds": round(elapsed, 3),
        "positions_per_s": round(done / elapsed),
        "gateway_cpu_us_per_position": round(cpu / max(done, 1) * 1e6, 2),
        "load_cpu_s_streaming": round(sum(c.value for c in cpus), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _ratio(results: dict[str, list[dict[str, Any]]], path: str, key: str) -> float:
    """path / old, medians of the runs of each."""
    return round(
        statistics.median(r[key] for r in results[path]) / statistics.median(r[key] for r in results["old"]),
        2,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--links", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--positions", type=int, default=100_000, help="positions per link (multiple of 500)")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument(
        "--paths",
        nargs="+",
        choices=list(PATHS),
        default=["old", "new"],
        help="paths to run, alternately per link count (default: old and new)",
    )
    ap.add_argument(
        "--gc-defaults",
        action="store_true",
        help="keep Python's GC settings (default: ingest-gps's, freeze + threshold 35,000)",
    )
    ap.add_argument("--repeat", type=int, default=1, help="alternations per link count")
    ap.add_argument(
        "--profile", metavar="PATH", help="cProfile the server process into PATH.<path>.<links> (pstats)"
    )
    a = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from alarmhub_devstack import BackingServices
    from alarmhub_devstack.testing import new_prefix
    from alarmhub_kafka import ensure_topics

    backing = BackingServices(
        kafka_bootstrap=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        postgres_url=os.environ.get("ALARMHUB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
        state_dir=ROOT / ".devstack" / "test",
    ).start()
    import uvloop

    if not a.gc_defaults:  # as the ingest-gps process runs (alarmhub_runtime.run_async; ALARMHUB_GC_TUNE)
        gc.freeze()
        gc.set_threshold(35_000, 20, 20)
    try:
        for links in a.links:
            results: dict[str, list[dict[str, Any]]] = {path: [] for path in a.paths}
            for _ in range(a.repeat):
                for path in a.paths:
                    prefix = "bench" + new_prefix()
                    asyncio.run(ensure_topics(backing.kafka_bootstrap, prefix=prefix))
                    args = (backing.kafka_bootstrap, prefix, links, a.positions, a.timeout, path)
                    if a.profile:
                        import cProfile

                        with cProfile.Profile() as prof:
                            result = uvloop.run(_bench(*args))
                        prof.dump_stats(f"{a.profile}.{path}.{links}")
                    else:
                        result = uvloop.run(_bench(*args))
                    results[path].append(result)
                    print(json.dumps(result), flush=True)
            if "old" in results:
                for path in [q for q in results if q != "old"]:
                    print(
                        json.dumps(
                            {
                                "links": links,
                                "runs_each": a.repeat,
                                "ratio": f"{path}/old",
                                "positions_per_s": _ratio(results, path, "positions_per_s"),
                                "cpu_per_position": _ratio(results, path, "gateway_cpu_us_per_position"),
                            }
                        ),
                        flush=True,
                    )
    finally:
        backing.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
