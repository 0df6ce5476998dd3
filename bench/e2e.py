"""End-to-end benchmark: DC-09 frame sent → incident on the dispatch SSE stream, under GPS and camera load.

Starts the real services as processes (``python -m alarmhub_<service>``) against the dev backing services
(reused if reachable, else started), in a fresh database and under a fresh topic prefix. Then:

- DC-09 panels (alarmhub_sim.dc09.Panel) send one fire alarm each, at ``--rate`` alarms/s, for
  ``--duration`` seconds, each on its own new connection from its own loopback address; every site is
  registered first, so every alarm must become one incident. The panels run in ``--panel-procs`` processes
  of their own (bench/dc09_load.py): in this process's loop, next to the stream reader, they lagged it by up
  to seconds at 400/s on the shared box, and that lag was measured as connect time and stream delay;
- ``bench/gps_load.py`` (open-loop JT/T 808 positions, ``--gps-load sim`` for ``alarmhub-sim gps``) and
  ``alarmhub-sim camera`` run as separate processes in the background;
- the incidents are read from ``GET /api/v1/stream``; latency is the frame's send → the incident's
  first arrival on the stream.

Prints p50/p99/max latency, ACK latency, a per-stage breakdown (``stages_ms``: ``send_to_connected`` is the
panel's connect, ``connected_to_received`` the wait until the receiver read the frame — a connection waiting
in the listener's accept queue shows here), throughput, lost alarms, each service's CPU (% of one core),
``runq_wait_pct`` (its threads runnable but waiting for a core, /proc schedstat: contention, not work) and
peak RSS, each service's event-loop ticks later than 100 and 250 ms and its GC pause time while sending
(``service_rates_while_sending``, from its ``alarmhub_event_loop_lag_seconds``), the panels' and the driver's own event-loop lag (its stalls over 100 ms and its garbage
collector's pauses; the collector is off while the alarms are sent, so that the driver's own pauses are not
measured as stream latency), and the host's TCP counters over the send window
(``tcp_counters``: SYN retransmissions, listen overflows, …) as a JSON document (also written to
``artifacts/bench-e2e.json``).

    .venv/bin/python bench/e2e.py --rate 200 --gps-rate 5000 --duration 15 --settle 32
    .venv/bin/python bench/e2e.py ... --services-python /work/main/.venv/bin/python   # main's services: the baseline
    .venv/bin/python bench/e2e.py --rate 400 --gps-rate 5000 --duration 15 --settle 32 \
        --baseline-python ../round1/.venv/bin/python --rounds 2   # both trees in one run (bench/e2e_compare.py)

Goal on the 2-core dev machine with everything on it: p99 < 500 ms at 200 alarms/s with 5,000 GPS
positions/s in the background. Every loop is bounded in count and time; only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
TOKEN = f"bench-{uuid.uuid4().hex[:12]}"
SERVICES = {  # module → extra port variables
    "alarmhub_dispatch": ("ALARMHUB_HTTP_PORT",),
    "alarmhub_triage": (),
    "alarmhub_ingest_contactid": ("ALARMHUB_DC09_PORT",),
    "alarmhub_ingest_gps": (
        "ALARMHUB_JT808_PORT",
        "ALARMHUB_GT06_PORT",
        "ALARMHUB_H02_PORT",
        "ALARMHUB_GPS_COMMAND_PORT",
        "ALARMHUB_JT809_PORT",
    ),
    "alarmhub_ingest_camera": ("ALARMHUB_CAMERA_HTTP_PORT", "ALARMHUB_SIP_PORT"),
}
DEVICE = re.compile(r"L\d+#\d+")


class _GcPauses:
    """The driver's own garbage-collection pauses (gc.callbacks): a pause stops the stream reader too."""

    def __init__(self) -> None:
        self.t0 = 0.0
        self.pauses: list[tuple[int, float]] = []

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.t0 = time.perf_counter()
        elif len(self.pauses) < 100_000:
            self.pauses.append((info["generation"], time.perf_counter() - self.t0))

    def report(self) -> dict[str, Any]:
        worst = max(self.pauses, key=lambda p: p[1], default=(0, 0.0))
        return {
            "count": len(self.pauses),
            "total_ms": round(1000 * sum(p for _, p in self.pauses), 1),
            "max_ms": round(1000 * worst[1], 1),
            "max_generation": worst[0],
        }


GC_PAUSES = _GcPauses()
gc.callbacks.append(GC_PAUSES)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def ms(v: float | None) -> float | None:
    return None if v is None else round(v * 1000, 1)


def find_device(obj: Any) -> str | None:
    m = DEVICE.search(json.dumps(obj, ensure_ascii=False))
    return m.group(0) if m else None


TCP_COUNTERS = (
    "ListenOverflows",
    "ListenDrops",
    "TCPReqQFullDrop",
    "TCPReqQFullDoCookies",
    "SyncookiesSent",
    "TCPTimeouts",
    "TCPSynRetrans",
    "RetransSegs",
    "TCPBacklogDrop",
    "TCPAbortOnData",
    "PassiveOpens",
    "ActiveOpens",
    "AttemptFails",
    "TCPSYNChallenge",
    "TCPChallengeACK",
    "TW",
    "TWRecycled",
    "TCPTimeWaitOverflow",
    "PAWSEstab",
)


def tcp_counters() -> dict[str, int]:
    """The kernel's TCP counters (/proc/net/netstat and snmp, as nstat reads them): host-wide."""
    out: dict[str, int] = {}
    for f in ("/proc/net/netstat", "/proc/net/snmp"):
        with contextlib.suppress(OSError):
            lines = Path(f).read_text().splitlines()
            for head, vals in zip(lines[::2], lines[1::2], strict=False):
                for k, v in zip(head.split()[1:], vals.split()[1:], strict=False):
                    if k in TCP_COUNTERS:
                        out[k] = int(v)
    return out


def broker_pid(bootstrap: str) -> int | None:
    """The local process listening on the broker's port (to report its CPU too), if it can be seen."""
    port = int(bootstrap.split(",")[0].rsplit(":", 1)[1])
    with contextlib.suppress(psutil.Error):
        for c in psutil.net_connections("tcp"):
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
                return int(c.pid)
    return None


def spawn(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A background load generator in its own process, so it does not share the measuring event loop."""
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def spawn_piped(argv: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """A load generator whose JSON lines on stdout (ready, then its counts) the bench reads."""
    log = (ROOT / "artifacts" / "gps_load.err").open("w")
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=log, text=True)


def spawn_panels(
    port: int, rate: float, count: int, seed: int, shards: int, shard: int, env: dict[str, str]
) -> subprocess.Popen[str]:
    """One process of DC-09 panels (bench/dc09_load.py): told when to start on stdin, results on stdout."""
    argv = [sys.executable, str(ROOT / "bench" / "dc09_load.py"), "--port", str(port), "--rate", str(rate)]
    argv += ["--count", str(count), "--seed", str(seed), "--shards", str(shards), "--shard", str(shard)]
    argv += ["--out", str(ROOT / "artifacts" / f"dc09_load-{shard}.json")]
    return subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


WATCHED = (  # counters and histogram sums read from each service's /metrics before and after the run
    "alarmhub_ingest_contactid_events_total",
    "alarmhub_ingest_gps_events_total",
    "alarmhub_ingest_camera_events_total",
    "alarmhub_triage_events_total",
    "alarmhub_triage_decisions_total",
    "alarmhub_triage_batch_seconds_sum",
    "alarmhub_triage_batch_seconds_count",
    "alarmhub_dispatch_incidents_opened_total",
    "alarmhub_dispatch_batch_seconds_sum",
    "alarmhub_dispatch_batch_seconds_count",
    "alarmhub_kafka_produce_seconds_sum",
    "alarmhub_kafka_produce_seconds_count",
    "alarmhub_ingest_contactid_ack_seconds_sum",
    "alarmhub_ingest_contactid_ack_seconds_count",
    "alarmhub_dispatch_stream_queue_seconds_sum",
    "alarmhub_dispatch_stream_queue_seconds_count",
    "alarmhub_dispatch_gps_yield_seconds_sum",
    "alarmhub_dispatch_gps_yield_seconds_count",
    "alarmhub_ingest_contactid_connections_rejected_total",
    "alarmhub_event_loop_lag_seconds_count",
    "alarmhub_gc_pause_seconds_sum",
)
LOOP_LAG_LE = ("0.1", "0.25")  # alarmhub_event_loop_lag_seconds buckets kept apart: ticks later than these

STAGED = ("alarmhub_dispatch_batch_stage_seconds_sum", "alarmhub_dispatch_batch_stage_seconds_count")


def scrape(procs: dict[str, Any]) -> dict[str, float]:
    """Sum of each watched family per service, from the real /metrics endpoints."""
    import urllib.request

    out: dict[str, float] = {}
    for module, p in procs.items():
        with contextlib.suppress(OSError), urllib.request.urlopen(p.health_url + "/metrics", timeout=5) as r:
            for line in r.read().decode().splitlines():
                name = line.split("{", 1)[0].split(" ", 1)[0]
                if name in STAGED:  # per stage: "…_seconds{stage=…}" kept apart
                    stage = line.split('stage="', 1)[1].split('"', 1)[0]
                    name = f"{name.rsplit('_', 1)[0]}.{stage}_{name.rsplit('_', 1)[1]}"
                    key = f"{module.removeprefix('alarmhub_')}:{name}"
                    out[key] = out.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
                elif name == "alarmhub_event_loop_lag_seconds_bucket":
                    le = line.split('le="', 1)[1].split('"', 1)[0]
                    if le in LOOP_LAG_LE:
                        out[f"{module.removeprefix('alarmhub_')}:event_loop_lag_le_{le}"] = float(
                            line.rsplit(" ", 1)[1]
                        )
                elif name in WATCHED:
                    key = f"{module.removeprefix('alarmhub_')}:{name}"
                    out[key] = out.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def deltas(before: dict[str, float], after: dict[str, float], wall: float) -> dict[str, Any]:
    d = {k: after[k] - before.get(k, 0.0) for k in after}
    res: dict[str, Any] = {}
    for k, v in d.items():
        if k.endswith("_total"):
            res[k + "_per_s"] = round(v / wall, 1)
        elif k.endswith(":alarmhub_event_loop_lag_seconds_count"):  # the loop held (LoopMonitor's ticks)
            svc = k.split(":", 1)[0]
            for le in LOOP_LAG_LE:
                late = v - d.get(f"{svc}:event_loop_lag_le_{le}", 0.0)
                res[f"{svc}:event_loop_ticks_late_over_{int(float(le) * 1000)}ms"] = int(late)
        elif k.endswith(":alarmhub_gc_pause_seconds_sum"):
            res[k.split(":", 1)[0] + ":gc_pause_ms"] = round(1000 * v, 1)
    produce = [k.removesuffix("_count") for k in d if k.endswith(":alarmhub_kafka_produce_seconds_count")]
    stages = sorted(
        {
            k.removesuffix("_count")
            for k in d
            if k.startswith("dispatch:alarmhub_dispatch_batch_stage_seconds.") and k.endswith("_count")
        }
    )
    for svc_metric in (
        "triage:alarmhub_triage_batch_seconds",
        "dispatch:alarmhub_dispatch_batch_seconds",
        "dispatch:alarmhub_dispatch_stream_queue_seconds",
        "dispatch:alarmhub_dispatch_gps_yield_seconds",
        "ingest_contactid:alarmhub_ingest_contactid_ack_seconds",
        *produce,
        *stages,
    ):
        n = d.get(svc_metric + "_count", 0.0)
        if n:
            res[svc_metric + "_mean_ms"] = round(1000 * d[svc_metric + "_sum"] / n, 1)
    return res


def bench_db_backends(db_name: str) -> list[int]:
    """The PostgreSQL backends serving the bench's own database (the server may be shared with others)."""
    out = []
    for p in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if any(db_name in a for a in p.info["cmdline"] or ()):
                out.append(p.pid)
    return out


def _children_map() -> dict[int, list[int]]:
    """ppid → child pids, from /proc/*/stat in one pass (psutil's iterators build a Process per pid)."""
    kids_of: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                with open(f"/proc/{name}/stat", "rb") as f:
                    ppid = int(f.read().rpartition(b")")[2].split()[1])
                kids_of.setdefault(ppid, []).append(int(name))
    return kids_of


def _descendants(pid: int, kids_of: dict[int, list[int]]) -> list[int]:
    """``pid`` and every process below it, from a pid → children map of one /proc scan."""
    out, todo = [], [pid]
    while todo and len(out) < 10_000:
        q = todo.pop()
        out.append(q)
        todo.extend(kids_of.get(q, ()))
    return out


class Sampler:
    """CPU seconds and peak RSS of each process group: a service and its worker processes (live children,
    found again at each sample), a backing server, sampled every 0.5 s."""

    def __init__(self, pids: dict[str, int | list[int]]) -> None:
        self.procs = {
            n: [psutil.Process(q) for q in (p if isinstance(p, list) else [p])] for n, p in pids.items()
        }
        self.seen: dict[str, dict[int, psutil.Process]] = {n: {} for n in self.procs}
        self.cpu0: dict[str, dict[int, float]] = {n: {} for n in self.procs}
        self.cpu: dict[str, dict[int, float]] = {n: {} for n in self.procs}
        self.wait0: dict[str, dict[int, float]] = {n: {} for n in self.procs}
        self.wait: dict[str, dict[int, float]] = {n: {} for n in self.procs}
        self._sample(first=True)
        self.peak: Counter[str] = Counter()
        self.t0 = time.monotonic()

    def _sample(self, first: bool = False) -> None:
        # one scan of /proc per sample for every group's children (root.children(recursive=True) scans it
        # once per root: ~7 ms each, 14 roots every 0.5 s — the driver's own CPU on the measured cores)
        kids_of = _children_map()
        for n, roots in self.procs.items():
            for root in roots:
                # the driver alone: its children are the services and load generators, counted apart
                pids = [root.pid] if n == "bench_driver" else _descendants(root.pid, kids_of)
                for pid in pids:
                    if pid not in self.seen[n]:
                        with contextlib.suppress(psutil.Error):
                            self.seen[n][pid] = root if pid == root.pid else psutil.Process(pid)
            rss = 0
            for pid, q in self.seen[n].items():
                with contextlib.suppress(psutil.Error):
                    t = q.cpu_times()
                    c = t.user + t.system
                    if first:  # a process started later (a restarted worker) counts from 0
                        self.cpu0[n][pid] = c
                    self.cpu[n][pid] = max(self.cpu[n].get(pid, 0.0), c)  # an ended one keeps its last
                    w = self._runq_wait(pid)
                    if first:
                        self.wait0[n][pid] = w
                    self.wait[n][pid] = max(self.wait[n].get(pid, 0.0), w)
                    rss += q.memory_info().rss
            if not first:
                self.peak[n] = max(self.peak[n], rss)

    def cpu_s(self, n: str) -> float:
        return sum(c - self.cpu0[n].get(pid, 0.0) for pid, c in self.cpu[n].items())

    def runq_wait_s(self, n: str) -> float:
        return sum(w - self.wait0[n].get(pid, 0.0) for pid, w in self.wait[n].items())

    @staticmethod
    def _runq_wait(pid: int) -> float:
        """Seconds this process's threads were runnable but waiting for a CPU (/proc/PID/task/*/schedstat)."""
        total = 0
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    total += int((task / "schedstat").read_text().split()[1])
        return total / 1e9

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.to_thread(self._sample)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)

    def report(self) -> dict[str, dict[str, float]]:
        self._sample()
        self.wall = time.monotonic() - self.t0
        return {
            n.removeprefix("alarmhub_"): {
                "cpu_pct": round(100 * self.cpu_s(n) / self.wall, 1),
                "cpu_s": round(self.cpu_s(n), 2),
                "processes": len(self.seen[n]),
                "rss_mb": round(self.peak[n] / 2**20, 1),
                # runnable but not running (waiting for a core), as % of the wall: CPU contention, not work
                "runq_wait_pct": round(100 * self.runq_wait_s(n) / self.wall, 1),
            }
            for n in self.procs
        }


ALARM_PATH = ("ingest_contactid", "triage", "dispatch", "kafka_broker", "postgres", "redis")
PLATFORM = (*ALARM_PATH, "ingest_gps", "ingest_camera")


def cpu_per_alarm(services: dict[str, dict[str, float]], alarms: int, fixes: float) -> dict[str, Any]:
    """CPU-seconds of the platform per alarm delivered, over the sampled window (alarms, fixes and camera
    events all flowing): ``all`` is every service, the broker and the bench database's PostgreSQL backends
    and Redis (the machine's own too, when the bench found one running: then any other client of it counts
    as well, and ``redis_shared`` in the result says so) ÷ alarms; ``alarm_path`` leaves out ingest-gps and
    ingest-camera (the broker, dispatch and PostgreSQL still carry the fixes' share)."""

    def total(names: tuple[str, ...]) -> float:
        return sum(services[n]["cpu_s"] for n in names if n in services)

    per = max(1, alarms)
    return {
        "alarms": alarms,
        "fixes": fixes,
        "all_ms": round(1000 * total(PLATFORM) / per, 2),
        "alarm_path_ms": round(1000 * total(ALARM_PATH) / per, 2),
        "counted": [n for n in PLATFORM if n in services],
    }


def _iso(v: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(v).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


async def stage_breakdown(
    bootstrap: str, prefix: str, sent_wall: dict[str, float], connected_wall: dict[str, float]
) -> dict[str, Any]:
    """Where the time went, per alarm, from what the platform itself recorded (one host, one clock).

    send → ``received_at`` (the receiver read the frame) → the ``alarms.raw`` record's timestamp (the
    receiver's producer took the event) → the ``alarms.triaged`` record's timestamp (triage published its
    decision) → the incident's ``opened_at`` (dispatch applied it). Read after the run without a group.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    raw_ts: dict[str, tuple[float, float | None]] = {}
    triaged_ts: dict[str, tuple[float, float | None]] = {}
    c = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        fetch_max_wait_ms=50,
        max_partition_fetch_bytes=4 * 2**20,
    )
    await c.start()
    try:
        for topic, sink in ((prefix + "alarms.raw", raw_ts), (prefix + "alarms.triaged", triaged_ts)):
            tps = [
                TopicPartition(topic, p)
                for p in (c.partitions_for_topic(topic) or await _partitions(c, topic))
            ]
            c.assign(tps)
            await c.seek_to_beginning(*tps)
            ends = await c.end_offsets(tps)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and any([await c.position(tp) < ends[tp] for tp in tps]):
                for recs in (await c.getmany(timeout_ms=500, max_records=5000)).values():
                    for r in recs:
                        with contextlib.suppress(ValueError, AttributeError):
                            v = json.loads(r.value or b"{}")
                            ev = v.get("event", v)
                            dev = (ev.get("source") or {}).get("device_id")
                            if dev in sent_wall and dev not in sink:
                                sink[dev] = (r.timestamp / 1000, _iso(ev.get("received_at")))
    finally:
        await c.stop()
    recv = [raw_ts[d][1] - sent_wall[d] for d in raw_ts if raw_ts[d][1] is not None]
    conn_recv = [
        raw_ts[d][1] - connected_wall[d] for d in raw_ts if raw_ts[d][1] is not None and d in connected_wall
    ]
    to_raw = [raw_ts[d][0] - raw_ts[d][1] for d in raw_ts if raw_ts[d][1] is not None]
    triage = [triaged_ts[d][0] - raw_ts[d][0] for d in triaged_ts if d in raw_ts]

    def q(v: list[float]) -> dict[str, float | None]:
        return {"p50": ms(pct(v, 0.5)), "p99": ms(pct(v, 0.99)), "n": len(v)}

    return {
        "send_to_received": q(recv),
        "connected_to_received": q(conn_recv),
        "received_to_raw_record": q(to_raw),
        "raw_to_triaged_record": q(triage),
        "_triaged_ts": triaged_ts,
    }


async def _partitions(c: Any, topic: str) -> set[int]:
    await c._client.force_metadata_update()  # a consumer without subscriptions knows no topics yet
    return c.partitions_for_topic(topic) or {0}


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    from alarmhub_devstack import BackingServices
    from alarmhub_devstack.testing import ServiceProcess, drop_redis_keys, new_prefix, service_env
    from alarmhub_kafka import ensure_topics
    from alarmhub_sim.sites import demo_sites
    from alarmhub_store import migrate_sync

    # SIGTERM (a timeout, a supervisor) cancels the run: the services and the broker it started are stopped
    # (the finally below) instead of being left running to load the next run
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    backing = BackingServices(
        kafka_bootstrap=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        state_dir=ROOT / ".devstack",
    ).start()
    db_url = f"{backing.postgres_url.rsplit('/', 1)[0]}/alarmhub_bench_{uuid.uuid4().hex[:8]}"
    prefix = new_prefix()
    try:
        # the schema of the services' own tree (a baseline's dispatch refuses a newer one)
        if args.services_python:
            code = "import sys; from alarmhub_store import migrate_sync; migrate_sync(sys.argv[1])"
            await asyncio.to_thread(subprocess.run, [args.services_python, "-c", code, db_url], check=True)
        else:
            await asyncio.to_thread(migrate_sync, db_url)
        await ensure_topics(backing.kafka_bootstrap, prefix=prefix)
    except BaseException:  # stopped (or failed) before the services start: the broker it started goes too
        backing.stop()
        raise

    class Addr:
        kafka_bootstrap, redis_url, database_url = backing.kafka_bootstrap, backing.redis_url, db_url

    env = service_env(
        Addr(),
        prefix,
        ALARMHUB_DEV_TOKEN=TOKEN,
        ALARMHUB_DEV_MODE="1",
        ALARMHUB_LOG_LEVEL="WARNING",
        ALARMHUB_GPS_AUTH_SECRET="bench-secret",
        ALARMHUB_GPS_UNREGISTERED="accept",  # the generator's terminals are not registered
        ALARMHUB_SIP_PASSWORD="12345678",
        ALARMHUB_GPS_NICE=str(args.gps_nice),
        **dict(kv.split("=", 1) for kv in args.env),
    )
    procs: dict[str, Any] = {}
    bg: list[subprocess.Popen[bytes]] = []
    try:
        for module, ports in SERVICES.items():
            procs[module] = ServiceProcess.create(module, env, ports)
            procs[module].python = args.services_python
            await asyncio.to_thread(procs[module].start)
        api = f"http://127.0.0.1:{procs['alarmhub_dispatch'].ports['ALARMHUB_HTTP_PORT']}"
        n = int(args.rate * args.duration)
        sites = demo_sites(n, seed=args.seed, line="3", company="bench")
        async with httpx.AsyncClient(
            base_url=api, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        ) as client:
            sem = asyncio.Semaphore(16)

            async def reg(s: Any) -> None:
                async with sem:
                    for attempt in range(3):  # a kept-alive connection the server closed meanwhile: try again
                        try:
                            r = await client.post("/api/v1/registry/accounts", json=s.registry_record())
                        except httpx.TransportError:
                            if attempt == 2:
                                raise
                            continue
                        if r.status_code != 409 or attempt == 0:  # 409 on a retry: the first try landed
                            r.raise_for_status()
                        return

            t_reg = time.monotonic()
            await asyncio.gather(*(reg(s) for s in sites))
            print(
                json.dumps(
                    {"event": "sites_registered", "count": n, "s": round(time.monotonic() - t_reg, 1)}
                ),
                file=sys.stderr,
            )
            if args.settle:
                await asyncio.sleep(args.settle)  # let the receivers reload the account registry

            arrivals: dict[str, tuple[float, Any]] = {}  # incident id → (first arrival, payload)
            arrived_wall: dict[
                str, float
            ] = {}  # incident id → wall-clock arrival (to split the latency at opened_at)
            stream_ready, all_arrived = asyncio.Event(), asyncio.Event()
            site_ids, matched = {s.device_id for s in sites}, [0]

            async def read_stream() -> None:
                async with client.stream("GET", "/api/v1/stream", timeout=None) as resp:
                    resp.raise_for_status()
                    stream_ready.set()
                    async for line in resp.aiter_lines():
                        if not line.startswith("data:"):
                            continue
                        now = time.monotonic()
                        wall_now = time.time()
                        with contextlib.suppress(ValueError):
                            data = json.loads(line[5:])
                            inc = data.get("incident", data) if isinstance(data, dict) else {}
                            iid = str(inc.get("id") or inc.get("incident_id") or "")
                            if iid and iid not in arrivals:
                                arrivals[iid] = (now, data)
                                arrived_wall[iid] = wall_now
                                if find_device(data) in site_ids:  # camera/GPS incidents also stream
                                    matched[0] += 1
                                    if matched[0] >= n:
                                        all_arrived.set()

            reader = asyncio.create_task(read_stream())
            await asyncio.wait_for(stream_ready.wait(), 15)
            sim_env = {
                **env,
                **{
                    k: str(v)
                    for p in procs.values()
                    for k, v in p.ports.items()
                    if k != "ALARMHUB_HEALTH_PORT"
                },
            }
            sim = str(Path(sys.executable).parent / "alarmhub-sim")
            bg_dur = str(args.duration + 5)
            gps_load: subprocess.Popen[str] | None = None
            if args.gps_rate > 0 and args.gps_load == "sim":
                bg.append(
                    spawn(
                        [
                            sim,
                            "gps",
                            "--rate",
                            str(args.gps_rate),
                            "--duration",
                            bg_dur,
                            "--units",
                            str(args.vehicles),
                        ],
                        sim_env,
                    )
                )
            elif args.gps_rate > 0:  # open loop, pre-encoded frames, its own process (bench/gps_load.py)
                gps_port = procs["alarmhub_ingest_gps"].ports["ALARMHUB_JT808_PORT"]
                gps_load = spawn_piped(
                    [
                        sys.executable,
                        str(ROOT / "bench" / "gps_load.py"),
                        "--port",
                        str(gps_port),
                        "--rate",
                        str(args.gps_rate),
                        "--connections",
                        str(args.gps_connections),
                        "--duration",
                        bg_dur,
                    ],
                    sim_env,
                )
                bg.append(gps_load)  # type: ignore[arg-type]
                assert gps_load.stdout is not None
                ready = await asyncio.wait_for(asyncio.to_thread(gps_load.stdout.readline), 120)
                print(ready.strip(), file=sys.stderr)
            if args.camera_rate > 0:
                bg.append(
                    spawn(
                        [
                            sim,
                            "camera",
                            "--rate",
                            str(args.camera_rate),
                            "--duration",
                            bg_dur,
                            "--units",
                            "200",
                        ],
                        sim_env,
                    )
                )
            # the DC-09 panels: processes of their own, so pacing and connecting do not share this loop
            port = procs["alarmhub_ingest_contactid"].ports["ALARMHUB_DC09_PORT"]
            panels = [
                spawn_panels(port, args.rate, n, args.seed, args.panel_procs, k, sim_env)
                for k in range(args.panel_procs)
            ]
            bg.extend(panels)  # type: ignore[arg-type]
            for p in panels:
                assert p.stdout is not None
                print(
                    (await asyncio.wait_for(asyncio.to_thread(p.stdout.readline), 60)).strip(),
                    file=sys.stderr,
                )
            await asyncio.sleep(2.0)  # background load reaches its rate first
            before = await asyncio.to_thread(scrape, procs)
            pids: dict[str, int | list[int]] = {m: p.proc.pid for m, p in procs.items()}
            pids.update(
                {("gps_load" if p is gps_load else f"sim_{p.args[1]}"): p.pid for p in bg if p not in panels}
            )
            pids.update({f"dc09_load_{k}": p.pid for k, p in enumerate(panels)})
            pids["bench_driver"] = os.getpid()
            broker = broker_pid(backing.kafka_bootstrap)
            if broker:
                pids["kafka_broker"] = broker
            if pg := bench_db_backends(db_url.rsplit("/", 1)[1]):
                pids["postgres"] = pg
            redis = broker_pid(backing.redis_url.split("//", 1)[1].split("/", 1)[0])
            # Redis carries the alarm path (triage's state, the DC-09 receivers' shared state): counted
            # even when it is the machine's own, whose other clients then count too (redis_shared says so)
            redis_shared = not any(s.name == "redis" for s in backing.started)
            if redis:
                pids["redis"] = redis
            sampler = Sampler(pids)
            stop = asyncio.Event()
            sampling = asyncio.create_task(sampler.run(stop))

            sent_at: dict[str, float] = {}
            sent_wall: dict[str, float] = {}
            ack_s: list[float] = []
            replies: Counter[str] = Counter()
            acked: set[str] = set()
            connect_s: list[float] = []
            connected_wall: dict[str, float] = {}
            lags: list[float] = []
            stalls: list[tuple[float, float]] = []
            tcp0 = tcp_counters()

            async def watch_lag() -> None:  # the driver's own event loop: how late a 10 ms timer fires
                while True:
                    t = time.monotonic()
                    await asyncio.sleep(0.01)
                    lag = time.monotonic() - t - 0.01
                    lags.append(lag)
                    if lag > 0.1 and len(stalls) < 20:  # when, after the first alarm, and how long
                        stalls.append((round(t - t_start, 2), round(1000 * lag, 1)))

            # the driver's own garbage collector paused its stream reader for up to 570 ms in a 400/s run
            # (a full collection over the sites and the arrivals held so far), which was then measured as
            # stream latency: collect and freeze what exists now and keep the collector off for the window
            # (bounded: until the last incident arrived or --drain ran out); gc_pauses in the result counts what is left
            gc.collect()
            gc.freeze()
            gc.disable()
            lag_task = asyncio.create_task(watch_lag())
            for p in panels:  # the panels send by the clock from start on (bench/dc09_load.py)
                assert p.stdin is not None
                p.stdin.write(json.dumps({"start": time.time() + 0.2}) + "\n")
                p.stdin.flush()
            t_start = time.monotonic() + 0.2
            shard_lags: list[dict[str, float]] = []
            retransmissions = 0
            to_mono = time.monotonic() - time.time()  # one host, one clock: wall → this process's monotonic
            for p in panels:
                assert p.stdout is not None
                line = await asyncio.wait_for(asyncio.to_thread(p.stdout.readline), args.duration + 60)
                done = json.loads(await asyncio.to_thread(Path(json.loads(line)["out"]).read_text))
                shard_lags.append(done["loop_lag_ms"])
                retransmissions += done["retransmissions"]
                for dev, sent, connected, replied, reply in done["alarms"]:
                    sent_wall[dev] = sent
                    sent_at[dev] = sent + to_mono
                    replies[reply] += 1
                    if connected is not None:
                        connected_wall[dev] = connected
                        connect_s.append(connected - sent)
                    if reply == "ACK":
                        ack_s.append(replied - sent)
                        acked.add(dev)
            t_sent = time.monotonic()
            lag_task.cancel()
            tcp1 = tcp_counters()
            during = deltas(before, await asyncio.to_thread(scrape, procs), t_sent - sampler.t0)
            deadline = t_sent + args.drain
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_arrived.wait(), max(0.0, deadline - time.monotonic()))
            gc.enable()
            stop.set()
            await sampling
            res_services = sampler.report()  # before the load generators are stopped
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await reader

            # incident → device: from the stream payload, else from the incident's detail
            latencies: list[float] = []
            to_commit: list[float] = []
            commit_to_stream: list[float] = []
            opened_at: dict[str, float] = {}
            seen: Counter[str] = Counter()
            for iid, (t_arr, data) in arrivals.items():
                dev = find_device(data)
                if dev is None:
                    with contextlib.suppress(httpx.HTTPError):
                        dev = find_device((await client.get(f"/api/v1/incidents/{iid}")).json().get("events"))
                if dev in sent_at:
                    seen[dev] += 1
                    latencies.append(t_arr - sent_at[dev])
                    opened = (data.get("incident") or {}).get("opened_at") if isinstance(data, dict) else None
                    if opened:  # the same host's clock: send → committed by dispatch → read from the stream
                        t_open = datetime.fromisoformat(opened.replace("Z", "+00:00")).timestamp()
                        to_commit.append(t_open - sent_wall[dev])
                        opened_at[dev] = t_open
                        commit_to_stream.append(arrived_wall[iid] - t_open)
            last = max((t for t, _ in arrivals.values()), default=t_sent)
            gps_result: dict[str, Any] = {}
            if gps_load is not None and gps_load.stdout is not None:  # it ends by itself after bg_dur
                with contextlib.suppress(TimeoutError, ValueError):
                    line = await asyncio.wait_for(
                        asyncio.to_thread(gps_load.stdout.readline), args.duration + 20
                    )
                    gps_result = json.loads(line)
            try:
                stages = await stage_breakdown(backing.kafka_bootstrap, prefix, sent_wall, connected_wall)
            except Exception as exc:  # the figures above are still worth printing
                stages = {"error": repr(exc), "_triaged_ts": {}}
            tri = stages.pop("_triaged_ts")
            applied = [opened_at[d] - tri[d][0] for d in opened_at if d in tri]
            stages["triaged_record_to_opened"] = {
                "p50": ms(pct(applied, 0.5)),
                "p99": ms(pct(applied, 0.99)),
                "n": len(applied),
            }
    finally:
        for p in bg:
            p.terminate()
        for p in bg:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(10)
        for p in reversed(list(procs.values())):
            await asyncio.to_thread(p.stop)
        await drop_redis_keys(backing.redis_url, prefix)  # the run's dedup, correlation and shared-state keys
        backing.stop()

    return {
        "alarms_sent": n,
        "rate_target": args.rate,
        "gps_rate_target": args.gps_rate,
        "camera_rate_target": args.camera_rate,
        "duration_s": args.duration,
        "replies": dict(replies),
        "retransmissions": retransmissions,
        "incidents_matched": len(latencies),
        "not_acked": n - len(acked),
        "lost": n - len(seen),
        "lost_after_ack": len(acked - set(seen)),
        "duplicated": sum(c - 1 for c in seen.values()),
        "latency_ms": {
            "p50": ms(pct(latencies, 0.5)),
            "p99": ms(pct(latencies, 0.99)),
            "max": ms(max(latencies) if latencies else None),
            "mean": ms(statistics.fmean(latencies) if latencies else None),
        },
        "ack_ms": {"p50": ms(pct(ack_s, 0.5)), "p99": ms(pct(ack_s, 0.99))},
        # the latency split at the incident's opened_at (dispatch's clock when it applied the decision)
        "send_to_opened_ms": {"p50": ms(pct(to_commit, 0.5)), "p99": ms(pct(to_commit, 0.99))},
        "opened_to_stream_ms": {
            "p50": ms(pct(commit_to_stream, 0.5)),
            "p99": ms(pct(commit_to_stream, 0.99)),
        },
        "stages_ms": {
            **stages,
            "send_to_connected": {
                "p50": ms(pct(connect_s, 0.5)),
                "p99": ms(pct(connect_s, 0.99)),
                "n": len(connect_s),
            },
            "send_to_ack": {"p50": ms(pct(ack_s, 0.5)), "p99": ms(pct(ack_s, 0.99))},
            "opened_to_stream": {
                "p50": ms(pct(commit_to_stream, 0.5)),
                "p99": ms(pct(commit_to_stream, 0.99)),
            },
        },
        "gps_load": gps_result,
        "panels_loop_lag_ms": shard_lags,
        "driver_loop_lag_ms": {
            "p50": ms(pct(lags, 0.5)),
            "p99": ms(pct(lags, 0.99)),
            "max": ms(max(lags, default=0.0)),
            "stalls_over_100ms": stalls,
            "gc_pauses": GC_PAUSES.report(),
        },
        "tcp_counters": {k: tcp1[k] - tcp0.get(k, 0) for k in tcp1 if tcp1[k] != tcp0.get(k, 0)},
        "throughput_incidents_per_s": round(len(latencies) / max(1e-9, last - t_start), 1),
        "services": res_services,
        "sampled_s": round(sampler.wall, 1),
        "cpu_per_alarm": cpu_per_alarm(res_services, len(latencies), gps_result.get("replies", 0)),
        "redis_shared": redis_shared,
        "service_rates_while_sending": during,
        "goal_met": bool(latencies) and (pct(latencies, 0.99) or 1e9) < 0.5 and n == len(seen),
        "load_average": os.getloadavg(),
        "services_python": args.services_python or sys.executable,
        "services_env": args.env,
        "ports": {m.removeprefix("alarmhub_"): p.ports for m, p in procs.items()},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=200.0, help="DC-09 alarms per second")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of alarms (one site per alarm)")
    p.add_argument("--gps-rate", type=float, default=5000.0, help="background GPS positions per second")
    p.add_argument(
        "--vehicles", type=int, default=2000, help="vehicles of the closed-loop simulator (--gps-load sim)"
    )
    p.add_argument(
        "--gps-load",
        choices=("open", "sim"),
        default="open",
        help="open: bench/gps_load.py (open loop, pre-encoded); sim: alarmhub-sim gps (closed loop per vehicle)",
    )
    p.add_argument("--gps-connections", type=int, default=300, help="terminals of the open-loop GPS load")
    p.add_argument(
        "--panel-procs", type=int, default=2, help="processes of DC-09 panels (bench/dc09_load.py), 1-16"
    )
    p.add_argument("--camera-rate", type=float, default=20.0, help="background camera events per second")
    p.add_argument("--drain", type=float, default=30.0, help="seconds to wait for the last incidents")
    p.add_argument("--settle", type=float, default=0.0, help="seconds between registering and sending")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--gps-nice",
        type=int,
        default=10,
        help="ALARMHUB_GPS_NICE of ingest-gps: the alarm path first on the shared cores (0: off)",
    )
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment of every service (e.g. ALARMHUB_DISPATCH_COALESCE=0), repeatable",
    )
    p.add_argument(
        "--services-python",
        default=None,
        help="run the services with this interpreter, e.g. /work/main/.venv/bin/python: the baseline "
        "code under the same driver and load generators",
    )
    p.add_argument(
        "--baseline-python",
        default=None,
        help="also run the services with this interpreter (another checkout's .venv), alternating with this "
        "tree's for --rounds rounds (bench/e2e_compare.py): CPU per alarm and p99 of both trees, same run",
    )
    p.add_argument("--rounds", type=int, default=2, help="--baseline-python: rounds of the rotation (≤ 5)")
    p.add_argument("--out", default=str(ROOT / "artifacts" / "bench-e2e.json"), help="the JSON result")
    args = p.parse_args(argv)
    if not 1 <= args.panel_procs <= 16:
        p.error("--panel-procs: 1 to 16")
    if any("=" not in kv for kv in args.env):
        p.error("--env takes KEY=VALUE")
    if args.rate <= 0 or args.duration <= 0 or args.rate * args.duration > 50_000:
        p.error("rate and duration must be positive and rate × duration at most 50,000 alarms")
    if args.baseline_python:  # checked above once, not by each run of the rotation
        from e2e_compare import rotate

        return rotate(list(sys.argv[1:] if argv is None else argv), args.baseline_python, args.rounds)
    result = asyncio.run(bench(args))
    from e2e_compare import wall

    result["wall"] = wall(result)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0 if result["goal_met"] else 1


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
