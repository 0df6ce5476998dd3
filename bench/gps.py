"""Benchmark of the GPS gateway: JT/T 808 location throughput and idle-connection memory.

Runs the real gateway (``python -m alarmhub_ingest_gps``) as its own process against the real dev
broker and PostgreSQL (reused if reachable, else started), and drives it over loopback from
separate load processes — so the figures include decoding, the broker write and the reply.

    .venv/bin/python bench/gps.py throughput --connections 200 --duration 20
    .venv/bin/python bench/gps.py trackers --terminals 20000 --rate 30000 --workers 2 --load-procs 4
    .venv/bin/python bench/gps.py idle --connections 57000 --workers 3 --load-procs 3

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
import contextlib
import json
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
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
    from alarmhub_ingest_gps.sessions import derive_auth_code

    reader, writer = await asyncio.open_connection(host, port, local_addr=(local, 0))
    code = derive_auth_code(SECRET.encode(), phone)
    writer.write(jt808.encode(0x0102, phone, 1, code.encode()))
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
        body = jt808.encode_location_body(
            lat=22.54 + i * 1e-4, lon=114.05, status_bits=0x03, speed_kmh=30, local_time=t
        )
        burst = b"".join(jt808.encode(0x0200, phone, s, body) for s in range(window))
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
    cpu0 = time.process_time()
    uvloop.run(_drive(host, port, worker, connections, duration, window, result))
    result["cpu_s"] = time.process_time() - cpu0  # this load process's own CPU, reported with the figures
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
    def __init__(self, fd_limit: int, extra_env: list[str] | None = None, workers: int = 1) -> None:
        self.workers = workers
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
            ALARMHUB_GPS_UNREGISTERED="accept",  # the load generator's terminals are not registered
            ALARMHUB_GPS_HOST="0.0.0.0",
            ALARMHUB_LOG_LEVEL="WARNING",
            ALARMHUB_GPS_MAX_CONNECTIONS=str(fd_limit),
            ALARMHUB_GPS_WORKERS=str(workers),
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

    def processes(self) -> list[psutil.Process]:
        """The gateway and, with ``workers`` > 1, its worker processes."""
        try:
            return [self.ps, *self.ps.children(recursive=True)]
        except psutil.Error:
            return [self.ps]

    def cpu_s(self) -> float:
        total = 0.0
        for p in self.processes():
            with contextlib.suppress(psutil.Error):
                total += sum(p.cpu_times()[:2])
        return total

    def metric(self, name: str, **labels: str) -> float:
        return sum(self.metric_per_worker(name, **labels))

    def metric_per_worker(self, name: str, **labels: str) -> list[float]:
        """A metric of each worker (worker i serves its metrics on the health port + i)."""
        base = self.service.ports["ALARMHUB_HEALTH_PORT"]
        values = []
        for i in range(self.workers):
            url = f"http://127.0.0.1:{base + i}/metrics"
            text = urllib.request.urlopen(url, timeout=10).read().decode()
            total = 0.0
            for line in text.splitlines():
                if not line.startswith(name + "{") and not line.startswith(name + " "):
                    continue
                if all(f'{k}="{v}"' in line for k, v in labels.items()):
                    total += float(line.rsplit(" ", 1)[1])
            values.append(total)
        return values

    def stop(self) -> None:
        from alarmhub_devstack.testing import drop_redis_keys

        self.service.stop()
        asyncio.run(drop_redis_keys(self.backing.redis_url, self.prefix))
        self.backing.stop()


def _rss_sampler(gw: Gateway, stop: Any, peak: Any) -> None:
    """Peak RSS of the busiest process holding connections (each worker, or the one gateway)."""
    while not stop.is_set():
        procs = gw.processes()
        for p in procs[1:] if gw.workers > 1 else procs:
            with contextlib.suppress(psutil.Error):
                peak.value = max(peak.value, p.memory_info().rss)
        stop.wait(0.2)


@contextlib.contextmanager
def _bare(gw: Gateway, workers: int) -> Iterator[tuple[int, Callable[[], float]]]:
    """The bare reference gateway (bench/gps_bare.py, ``workers`` copies) on the gateway's broker and topic:
    yields its port and a function giving its CPU seconds so far (every process)."""
    from alarmhub_devstack._backing import free_port

    port = free_port()
    bare = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bench" / "gps_bare.py"),
            *("--port", str(port), "--bootstrap", gw.backing.kafka_bootstrap),
            *("--topic", f"{gw.prefix}telemetry.gps", "--workers", str(workers)),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert bare.stdout is not None
        bare.stdout.readline()
        bps = psutil.Process(bare.pid)

        def bare_cpu() -> float:
            total = 0.0
            for p in [bps, *bps.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += sum(p.cpu_times()[:2])
            return total

        yield port, bare_cpu
    finally:
        bare.terminate()
        bare.wait(30)


def _throughput_run(
    args: argparse.Namespace, port: int, cpu_s: Callable[[], float], broker: int | None
) -> dict[str, Any]:
    """The pipelined load (``--load-procs`` processes × connections × ``--window`` frames) against ``port``."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    per = max(1, args.connections // args.load_procs)
    load_before = os.getloadavg()
    cpu0, broker0 = cpu_s(), _broker_cpu_s(broker)
    t0 = time.monotonic()
    procs = [
        ctx.Process(
            target=_throughput_worker, args=("127.0.0.1", port, w, per, args.duration, args.window, q)
        )
        for w in range(args.load_procs)
    ]
    for p in procs:
        p.start()
    results = [q.get(timeout=args.duration + 120) for _ in procs]
    for p in procs:
        p.join(30)
    elapsed = time.monotonic() - t0
    cpu, broker_cpu = cpu_s() - cpu0, _broker_cpu_s(broker) - broker0
    load_after = os.getloadavg()
    acked = sum(r["acked"] for r in results)
    load_pct = [round(100 * r.get("cpu_s", 0.0) / elapsed) for r in results]
    target_pct, broker_pct = round(100 * cpu / elapsed), round(100 * broker_cpu / elapsed)
    cpus = os.cpu_count() or 1
    if target_pct >= 85 * args.workers:
        wall = f"the target: its {args.workers} process(es) used {target_pct} % of a core"
    elif max(load_pct, default=0) >= 85:
        wall = "load generator: a load process was CPU-bound"
    elif broker_pct >= 85:
        wall = "broker: CPU-bound"
    elif load_after[0] >= cpus:
        wall = f"machine CPU: load average {load_after[0]:.1f} on {cpus} CPUs (no single process saturated)"
    else:
        wall = "the window: each connection waits for its replies before sending more"
    return {
        "connections": per * args.load_procs,
        "seconds": round(elapsed, 1),
        "answered_frames_per_s": round(acked / elapsed),
        "target_cpu_pct": target_pct,
        "target_cpu_us_per_answered_frame": round(cpu / max(acked, 1) * 1e6, 1),
        "load_cpu_pct": load_pct,
        "broker_cpu_pct": broker_pct,
        "load_average_before": [round(x, 1) for x in load_before],
        "load_average": [round(x, 1) for x in load_after],
        "wall": wall,
        "load_errors": sum(r["errors"] for r in results),
    }


def throughput(args: argparse.Namespace) -> dict[str, Any]:
    """The pipelined shape against the gateway, then (unless ``--no-reference``) against the bare reference."""
    gw = Gateway(raise_fd_limit(args.connections + 1000), args.env, args.workers)
    try:
        broker = _broker_pid(gw.backing.kafka_bootstrap)
        report: dict[str, Any] = {
            "bench": "jt808_throughput",
            "load_processes": args.load_procs,
            "gateway_workers": args.workers,
            "window": args.window,
            "cpus": os.cpu_count(),
            "broker": _broker_info(gw, broker),
        }
        ctx = mp.get_context("spawn")
        stop, peak = ctx.Event(), ctx.Value("d", 0.0)
        import threading

        sampler = threading.Thread(target=_rss_sampler, args=(gw, stop, peak), daemon=True)
        sampler.start()
        published0 = gw.metric("alarmhub_ingest_gps_events_total", topic="telemetry.gps")
        frames0 = gw.metric("alarmhub_ingest_gps_frames_total", protocol="jt808", result="ok")
        r = _throughput_run(args, gw.port, gw.cpu_s, broker)
        time.sleep(0.5)
        published = gw.metric("alarmhub_ingest_gps_events_total", topic="telemetry.gps") - published0
        decoded = gw.metric("alarmhub_ingest_gps_frames_total", protocol="jt808", result="ok") - frames0
        stop.set()
        r["decoded_frames_per_s"] = round(decoded / r["seconds"])
        r["published_fixes_per_s"] = round(published / r["seconds"])
        r["peak_worker_rss_mib"] = round(peak.value / 2**20, 1)
        report["gateway"] = r
        if args.reference:
            with _bare(gw, args.workers) as (port, bare_cpu):
                report["bare_reference"] = _throughput_run(args, port, bare_cpu, broker)
            g, b = report["gateway"], report["bare_reference"]
            if b["answered_frames_per_s"]:
                report["gateway_vs_bare"] = round(g["answered_frames_per_s"] / b["answered_frames_per_s"], 2)
            if b["target_cpu_us_per_answered_frame"]:
                report["cpu_per_frame_gateway_vs_bare"] = round(
                    g["target_cpu_us_per_answered_frame"] / b["target_cpu_us_per_answered_frame"], 2
                )
        return report
    finally:
        gw.stop()


def _worker_rss(gw: Gateway) -> list[float]:
    """RSS (MiB) of each gateway process that holds connections: the workers, or the one gateway."""
    procs = gw.processes()
    workers = procs[1:] if gw.workers > 1 else procs
    out = []
    for p in workers:
        with contextlib.suppress(psutil.Error):
            out.append(round(p.memory_info().rss / 2**20, 1))
    return out


def idle(args: argparse.Namespace) -> dict[str, Any]:
    limit = raise_fd_limit(args.connections + 1000)
    per_process = max(1, limit - 600)  # each gateway worker and each load process has this many files
    target = min(args.connections, per_process * args.workers)
    note = (
        None
        if target == args.connections
        else (
            f"RLIMIT_NOFILE hard limit is {resource.getrlimit(resource.RLIMIT_NOFILE)[1]}: "
            f"{target} connections is the most {args.workers} gateway process(es) may hold here"
        )
    )
    load_procs = max(args.load_procs, -(-target // per_process))
    gw = Gateway(limit, args.env, args.workers)
    try:
        time.sleep(1.0)
        rss0 = _worker_rss(gw)
        ctx = mp.get_context("spawn")
        q, release = ctx.Queue(), ctx.Event()
        per = -(-target // load_procs)
        procs = [
            ctx.Process(
                target=_idle_worker,
                args=("127.0.0.1", gw.port, w, min(per, target - w * per), args.hold + 600, q, release),
            )
            for w in range(load_procs)
            if target - w * per > 0
        ]
        for p in procs:
            p.start()
        results = [q.get(timeout=900) for _ in procs]
        time.sleep(args.hold)
        rss = _worker_rss(gw)
        open_conns = gw.metric_per_worker("alarmhub_ingest_gps_connections", protocol="jt808")
        release.set()
        for p in procs:
            p.join(60)
        connected = sum(r["connected"] for r in results)
        grown = sum(rss) - sum(rss0)
        return {
            "bench": "jt808_idle",
            "requested": args.connections,
            "connected": connected,
            "gateway_workers": args.workers,
            "load_processes": len(procs),
            "source_addresses": min(target, 250 * len(procs)),
            "gateway_open_connections": sum(open_conns),
            "worker_open_connections": open_conns,
            "worker_rss_mib": rss,
            "worker_rss_before_mib": rss0,
            "bytes_per_connection": round(grown * 2**20 / max(connected, 1)),
            "errors": sum(r["errors"] for r in results),
            "first_error": next((r["first_error"] for r in results if r["first_error"]), None),
            "load_average": [round(x, 1) for x in os.getloadavg()],
            "note": note,
        }
    finally:
        gw.stop()


def _broker_pid(bootstrap: str) -> int | None:
    """The process listening on the broker's port (the Tansu binary itself, as BackingServices starts it)."""
    port = int(bootstrap.split(",")[0].rsplit(":", 1)[1])
    with contextlib.suppress(psutil.Error):
        for c in psutil.net_connections("tcp"):
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
                return int(c.pid)
    return None


def _broker_cpu_s(pid: int | None) -> float:
    """CPU seconds of the broker and any children (all threads: /proc/<pid>/stat sums them); 0 if gone."""
    if pid is None:
        return 0.0
    total = 0.0
    with contextlib.suppress(psutil.Error):
        ps = psutil.Process(pid)
        for p in [ps, *ps.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += sum(p.cpu_times()[:2])
    return total


def _broker_info(gw: Gateway, pid: int | None) -> dict[str, Any]:
    name = None
    with contextlib.suppress(psutil.Error):
        name = psutil.Process(pid).name() if pid else None
    return {
        "pid": pid,
        "process": name,
        # a broker found already running is shared: its CPU includes whatever else writes to it
        "reused": any(r.startswith("kafka") for r in gw.backing.reused),
    }


def _wall(r: dict[str, Any], workers: int) -> str:
    """Which resource set the pace, from the run's own figures."""
    cpus = os.cpu_count() or 1
    if r["answered_frames_per_s"] >= 0.97 * r["offered_frames_per_s"] and r["timeouts"] == 0:
        return "none: the offered rate was answered"
    if r["closed_by_target"] > 0.01 * max(1, r["terminals"]):
        return (
            f"the target closed {r['closed_by_target']} terminals mid-run (the gateway closes a terminal whose "
            "write the broker did not confirm: its publish_failed log) — broker confirmation"
        )
    if r["target_cpu_pct"] >= 85 * workers:
        return f"receiver: its {workers} process(es) used {r['target_cpu_pct']} % of a core"
    if max(r["load_cpu_pct"], default=0) >= 85:
        return "load generator: a load process was CPU-bound"
    if (r["broker_cpu_pct"] or 0) >= 85:
        return "broker: CPU-bound"
    if r["load_average"][0] >= cpus:
        return (
            f"machine CPU: load average {r['load_average'][0]:.1f} on {cpus} CPUs "
            "(every process waited for a core; no single one saturated)"
        )
    return "reply latency: one frame in flight per terminal caps each at 1/reply time"


def _merged_counts(outs: list[dict[str, Any]], key: str) -> dict[int, int]:
    """The load processes' counts under ``key`` (reply time in ms, or the second of the run a slow reply's
    frame was sent in), added up, in key order."""
    merged: dict[int, int] = {}
    for o in outs:
        for k, n in o[key].items():
            merged[int(k)] = merged.get(int(k), 0) + n
    return dict(sorted(merged.items()))


def _tracker_run(args: argparse.Namespace, port: int, cpu_s: Any, broker: int | None) -> dict[str, Any]:
    import gps_trackers

    ctx = mp.get_context("spawn")
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    per = -(-args.terminals // args.load_procs)
    interval = args.terminals / args.rate
    counts = [min(per, args.terminals - w * per) for w in range(args.load_procs)]
    procs = [
        ctx.Process(
            target=gps_trackers.load_process,
            args=("127.0.0.1", port, w, n, interval, args.duration, args.timeout, SECRET, ready, go, out),
        )
        for w, n in enumerate(counts)
        if n > 0
    ]
    for p in procs:
        p.start()
    logins = [ready.get(timeout=900) for _ in procs]
    b0 = _broker_cpu_s(broker)
    c0, t0 = cpu_s(), time.monotonic()
    go.set()
    outs = [out.get(timeout=args.duration + args.timeout + 90) for _ in procs]
    elapsed = time.monotonic() - t0
    cpu = cpu_s() - c0
    b1 = _broker_cpu_s(broker)
    load = os.getloadavg()
    for p in procs:
        p.join(60)
    hist = _merged_counts(outs, "hist")
    sent = sum(o["sent"] for o in outs)
    return {
        "terminals": sum(r["connected"] for r in logins),
        "login_errors": sum(r["login_errors"] for r in logins),
        "first_login_error": next((r["first_error"] for r in logins if r["first_error"]), None),
        "offered_frames_per_s": args.rate,
        "sent_frames_per_s": round(sent / args.duration),
        "answered_frames_per_s": round(sum(o["answered"] for o in outs) / args.duration),
        "reply_p50_ms": gps_trackers.percentile(hist, 0.50),
        "reply_p99_ms": gps_trackers.percentile(hist, 0.99),
        "timeouts": sum(o["timeouts"] for o in outs),
        "missed_slots": sum(o["missed_slots"] for o in outs),
        # a tail at the start is the log-in burst's; one spread over the run, the gateway's pace
        "replies_over_500ms_by_second": _merged_counts(outs, "slow_by_s"),
        "closed_by_target": sum(o["closed"] for o in outs),
        "target_cpu_pct": round(cpu / elapsed * 100),
        "target_cpu_us_per_answered_frame": round(cpu / max(1, sum(o["answered"] for o in outs)) * 1e6),
        "load_cpu_pct": [round(o["cpu_s"] / o["wall_s"] * 100) for o in outs],
        "load_cpu_us_per_sent_frame": round(sum(o["cpu_s"] for o in outs) / max(1, sent) * 1e6, 1),
        "broker_cpu_pct": round((b1 - b0) / elapsed * 100) if broker else None,
        "broker_cpu_us_per_answered_frame": (
            round((b1 - b0) / max(1, sum(o["answered"] for o in outs)) * 1e6, 1) if broker else None
        ),
        "load_average": [round(x, 1) for x in load],
    }


def trackers(args: argparse.Namespace) -> dict[str, Any]:
    """The realistic shape against the gateway, then the same load against the bare reference."""
    limit = raise_fd_limit(min(20_000, args.terminals + 1000))
    gw = Gateway(limit, args.env, args.workers)
    broker = _broker_pid(gw.backing.kafka_bootstrap)
    report: dict[str, Any] = {
        "bench": "jt808_trackers",
        "gateway_workers": args.workers,
        "cpus": os.cpu_count(),
        "broker": _broker_info(gw, broker),
    }
    try:
        report["load_average_before"] = [round(x, 1) for x in os.getloadavg()]
        r = _tracker_run(args, gw.port, gw.cpu_s, broker)
        r["wall"] = _wall(r, args.workers)
        report["gateway"] = r
        if args.reference:
            with _bare(gw, args.workers) as (port, bare_cpu):
                r = _tracker_run(args, port, bare_cpu, broker)
            r["wall"] = _wall(r, args.workers)
            report["bare_reference"] = r
            ref = r["answered_frames_per_s"]
            g_us, b_us = (
                report[k]["target_cpu_us_per_answered_frame"] for k in ("gateway", "bare_reference")
            )
            report["cpu_per_frame_gateway_vs_bare"] = round(g_us / b_us, 2) if b_us else None
            report["gateway_vs_bare"] = (
                round(report["gateway"]["answered_frames_per_s"] / ref, 2) if ref else None
            )
    finally:
        gw.stop()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--connections", type=int, default=200)
    t.add_argument("--load-procs", type=int, default=2, help="load-generator processes")
    t.add_argument("--window", type=int, default=20, help="frames in flight per connection")
    t.add_argument("--duration", type=float, default=20.0)
    t.add_argument("--no-reference", dest="reference", action="store_false", help="skip the bare gateway")
    r = sub.add_parser("trackers", help="the realistic shape: many terminals, one frame in flight each")
    r.add_argument("--terminals", type=int, default=20_000)
    r.add_argument("--rate", type=float, default=30_000.0, help="offered frames/s over all terminals")
    r.add_argument("--load-procs", type=int, default=4, help="load processes (each ≤ 19,400 terminals)")
    r.add_argument("--duration", type=float, default=30.0)
    r.add_argument("--timeout", type=float, default=5.0, help="a reply later than this is a timeout")
    r.add_argument("--no-reference", dest="reference", action="store_false", help="skip the bare gateway")
    i = sub.add_parser("idle")
    i.add_argument("--connections", type=int, default=50_000)
    i.add_argument("--load-procs", type=int, default=4, help="client processes (at least connections/19,400)")
    i.add_argument("--hold", type=float, default=5.0, help="seconds to hold the connections before measuring")
    for p in (t, r, i):
        p.add_argument("--workers", type=int, default=1, help="gateway workers (ALARMHUB_GPS_WORKERS)")
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
    elif args.cmd == "trackers":
        args.duration = min(args.duration, 600.0)
        args.load_procs = max(args.load_procs, -(-args.terminals // 19_400))
        report = trackers(args)
    else:
        report = idle(args)
    report["run_id"] = uuid.uuid4().hex[:8]
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
