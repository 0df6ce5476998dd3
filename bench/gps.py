"""Benchmark of the GPS gateway: JT/T 808 location throughput and idle-connection memory.

Runs the real gateway (``python -m alarmhub_ingest_gps``) as its own process against the real dev
broker and PostgreSQL (reused if reachable, else started), and drives it over loopback from
separate load processes — so the figures include decoding, the broker write and the reply.

    .venv/bin/python bench/gps.py throughput --connections 200 --duration 20
    .venv/bin/python bench/gps.py idle --connections 50000

``throughput`` prints location frames/s decoded, answered (0x8001 received by the terminals) and
published (``telemetry.gps`` events confirmed by the broker, from the gateway's own metrics), the
gateway's peak RSS and CPU seconds per 1,000 frames. ``idle`` opens authenticated connections that
then stay silent and prints the gateway's RSS, total and per connection.

Every loop is bounded in count and time, and only loopback addresses are used. The file-descriptor
soft limit is raised to the hard limit here; when the hard limit is below what was asked for, the
run uses what the kernel allows and says so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import resource
import sys
import time
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-secret"


def raise_fd_limit(want: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ------------------------------------------------------------------------------ load processes


def _phone(worker: int, i: int) -> str:
    return f"0199{worker:02d}{i:06d}"


async def _auth(
    host: str, port: int, phone: str, local: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    from alarmhub_ingest_gps.protocols import jt808
    from alarmhub_ingest_gps.session import derive_auth_code

    reader, writer = await asyncio.open_connection(host, port, local_addr=(local, 0))
    code = derive_auth_code(SECRET.encode(), phone)
    writer.write(jt808.encode_frame(0x0102, phone, 1, code.encode()))
    await reader.readuntil(b"\x7e")
    await reader.readuntil(b"\x7e")
    return reader, writer


async def _drive(
    host: str, port: int, worker: int, connections: int, duration: float, window: int, result: dict[str, Any]
) -> None:
    from alarmhub_ingest_gps.protocols import jt808

    t = datetime(2026, 11, 25, 18, 0, 0)
    sem = asyncio.Semaphore(200)

    async def one(i: int) -> tuple[int, int]:
        phone = _phone(worker, i)
        async with sem:
            reader, writer = await _auth(host, port, phone, "127.0.0.1")
        body = jt808.location_body(
            lat=22.54 + i * 1e-4, lon=114.05, status_bits=0x03, speed_kmh=30, local_time=t
        )
        burst = b"".join(jt808.encode_frame(0x0200, phone, s, body) for s in range(window))
        sent = acked = 0
        end = time.monotonic() + duration
        try:
            while time.monotonic() < end:
                writer.write(burst)
                sent += window
                got = 0
                while got < 2 * window:  # each 0x8001 reply is delimited by two 0x7e
                    chunk = await asyncio.wait_for(reader.read(65536), 30)
                    if not chunk:
                        return sent, acked
                    got += chunk.count(b"\x7e")
                acked += window
        finally:
            writer.close()
        return sent, acked

    res = await asyncio.gather(*(one(i) for i in range(connections)), return_exceptions=True)
    ok = [r for r in res if isinstance(r, tuple)]
    result["sent"] = sum(r[0] for r in ok)
    result["acked"] = sum(r[1] for r in ok)
    result["errors"] = len(res) - len(ok)


def _throughput_worker(
    host: str, port: int, worker: int, connections: int, duration: float, window: int, q: Any
) -> None:
    import uvloop

    result: dict[str, Any] = {}
    uvloop.run(_drive(host, port, worker, connections, duration, window, result))
    q.put(result)


def _idle_worker(
    host: str, port: int, worker: int, connections: int, hold_s: float, q: Any, ready: Any
) -> None:
    raise_fd_limit(connections + 100)

    async def main() -> None:
        sem = asyncio.Semaphore(300)
        held = []

        async def one(i: int) -> None:
            async with sem:
                local = (
                    f"127.0.{worker + 1}.{i % 250 + 1}"  # many source addresses: beyond one address's ports
                )
                held.append(await _auth(host, port, _phone(worker, i), local))

        res = await asyncio.gather(*(one(i) for i in range(connections)), return_exceptions=True)
        errors = [r for r in res if isinstance(r, BaseException)]
        q.put(
            {
                "connected": len(held),
                "errors": len(errors),
                "first_error": repr(errors[0]) if errors else None,
            }
        )
        ready.wait(hold_s)
        for _, w in held:
            w.close()

    import uvloop

    uvloop.run(main())


# ------------------------------------------------------------------------------ the gateway process


class Gateway:
    def __init__(self, fd_limit: int, extra_env: list[str] | None = None) -> None:
        from alarmhub_devstack import BackingServices
        from alarmhub_devstack.testing import ServiceProcess, new_prefix, service_env
        from alarmhub_store import migrate_sync

        self.backing = BackingServices(
            kafka_bootstrap=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
            redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            postgres_url=os.environ.get("ALARMHUB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
            state_dir=ROOT / ".devstack" / "test",
        ).start()
        base = self.backing.postgres_url.rsplit("/", 1)[0]
        self.database_url = f"{base}/alarmhub_bench"
        migrate_sync(self.database_url)
        self.prefix = "bench" + new_prefix()

        class _Stack:
            kafka_bootstrap = self.backing.kafka_bootstrap
            redis_url = self.backing.redis_url
            database_url = self.database_url

        from alarmhub_kafka import ensure_topics

        asyncio.run(ensure_topics(self.backing.kafka_bootstrap, prefix=self.prefix))
        env = service_env(
            _Stack,
            self.prefix,
            ALARMHUB_GPS_AUTH_SECRET=SECRET,
            ALARMHUB_GPS_HOST="0.0.0.0",
            ALARMHUB_LOG_LEVEL="WARNING",
            ALARMHUB_GPS_MAX_CONNECTIONS=str(fd_limit),
            **dict(kv.split("=", 1) for kv in extra_env or ()),
        )
        self.service = ServiceProcess.create(
            "alarmhub_ingest_gps",
            env,
            port_vars=(
                "ALARMHUB_JT808_PORT",
                "ALARMHUB_GT06_PORT",
                "ALARMHUB_H02_PORT",
                "ALARMHUB_GPS_COMMAND_PORT",
                "ALARMHUB_JT809_PORT",
            ),
        )
        self.service.log_dir = ROOT / "artifacts" / "logs"
        self.service.start(timeout=120)
        assert self.service.proc is not None
        self.ps = psutil.Process(self.service.proc.pid)

    @property
    def port(self) -> int:
        return self.service.ports["ALARMHUB_JT808_PORT"]

    def metric(self, name: str, **labels: str) -> float:
        text = urllib.request.urlopen(self.service.health_url + "/metrics", timeout=10).read().decode()
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self) -> None:
        self.service.stop()
        self.backing.stop()


def _rss_sampler(ps: psutil.Process, stop: Any, peak: Any) -> None:
    while not stop.is_set():
        try:
            peak.value = max(peak.value, ps.memory_info().rss)
        except psutil.Error:
            return
        stop.wait(0.2)


def throughput(args: argparse.Namespace) -> dict[str, Any]:
    gw = Gateway(raise_fd_limit(args.connections + 1000), args.env)
    try:
        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        per = max(1, args.connections // args.workers)
        stop, peak = ctx.Event(), ctx.Value("d", 0.0)
        import threading

        sampler = threading.Thread(target=_rss_sampler, args=(gw.ps, stop, peak), daemon=True)
        sampler.start()
        published0 = gw.metric("alarmhub_ingest_gps_events_total", topic="telemetry.gps")
        frames0 = gw.metric("alarmhub_ingest_gps_frames_total", protocol="jt808", result="ok")
        cpu0 = sum(gw.ps.cpu_times()[:2])
        t0 = time.monotonic()
        procs = [
            ctx.Process(
                target=_throughput_worker, args=("127.0.0.1", gw.port, w, per, args.duration, args.window, q)
            )
            for w in range(args.workers)
        ]
        for p in procs:
            p.start()
        results = [q.get(timeout=args.duration + 120) for _ in procs]
        for p in procs:
            p.join(30)
        elapsed = time.monotonic() - t0
        cpu = sum(gw.ps.cpu_times()[:2]) - cpu0
        time.sleep(0.5)
        published = gw.metric("alarmhub_ingest_gps_events_total", topic="telemetry.gps") - published0
        decoded = gw.metric("alarmhub_ingest_gps_frames_total", protocol="jt808", result="ok") - frames0
        stop.set()
        acked = sum(r["acked"] for r in results)
        return {
            "bench": "jt808_throughput",
            "connections": per * args.workers,
            "load_processes": args.workers,
            "window": args.window,
            "seconds": round(elapsed, 1),
            "decoded_frames_per_s": round(decoded / elapsed),
            "answered_frames_per_s": round(acked / elapsed),
            "published_fixes_per_s": round(published / elapsed),
            "gateway_peak_rss_mib": round(peak.value / 2**20, 1),
            "gateway_cpu_s_per_1000_frames": round(cpu / max(decoded, 1) * 1000, 4),
            "load_errors": sum(r["errors"] for r in results),
            "cpus": os.cpu_count(),
        }
    finally:
        gw.stop()


def idle(args: argparse.Namespace) -> dict[str, Any]:
    limit = raise_fd_limit(args.connections + 1000)
    target = min(args.connections, limit - 500)
    note = (
        None
        if target == args.connections
        else (
            f"RLIMIT_NOFILE hard limit is {resource.getrlimit(resource.RLIMIT_NOFILE)[1]}: "
            f"{target} connections is the most one process may hold here"
        )
    )
    gw = Gateway(limit, args.env)
    try:
        rss0 = gw.ps.memory_info().rss
        ctx = mp.get_context("spawn")
        q, release = ctx.Queue(), ctx.Event()
        per = -(-target // args.workers)
        procs = [
            ctx.Process(
                target=_idle_worker,
                args=("127.0.0.1", gw.port, w, min(per, target - w * per), args.hold + 600, q, release),
            )
            for w in range(args.workers)
            if target - w * per > 0
        ]
        for p in procs:
            p.start()
        results = [q.get(timeout=600) for _ in procs]
        time.sleep(args.hold)
        rss = gw.ps.memory_info().rss
        open_conns = gw.metric("alarmhub_ingest_gps_connections", protocol="jt808")
        release.set()
        for p in procs:
            p.join(60)
        connected = sum(r["connected"] for r in results)
        return {
            "bench": "jt808_idle",
            "requested": args.connections,
            "connected": connected,
            "gateway_open_connections": open_conns,
            "gateway_rss_mib": round(rss / 2**20, 1),
            "gateway_rss_before_mib": round(rss0 / 2**20, 1),
            "bytes_per_connection": round((rss - rss0) / max(connected, 1)),
            "projected_rss_mib_at_50000": round(
                (rss0 + (rss - rss0) / max(connected, 1) * 50_000) / 2**20, 1
            ),
            "errors": sum(r["errors"] for r in results),
            "first_error": next((r["first_error"] for r in results if r["first_error"]), None),
            "note": note,
        }
    finally:
        gw.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--connections", type=int, default=200)
    t.add_argument("--workers", type=int, default=2, help="load-generator processes")
    t.add_argument("--window", type=int, default=20, help="frames in flight per connection")
    t.add_argument("--duration", type=float, default=20.0)
    i = sub.add_parser("idle")
    i.add_argument("--connections", type=int, default=50_000)
    i.add_argument("--workers", type=int, default=4)
    i.add_argument("--hold", type=float, default=5.0, help="seconds to hold the connections before measuring")
    for p in (t, i):
        p.add_argument(
            "--env",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="extra environment of the gateway (e.g. ALARMHUB_UVLOOP=0), repeatable",
        )
    args = parser.parse_args(argv)
    if args.cmd == "throughput":
        args.duration = min(args.duration, 600.0)
        report = throughput(args)
    else:
        report = idle(args)
    report["run_id"] = uuid.uuid4().hex[:8]
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
