"""Benchmark of the SIA DC-09 receiver against the open-source ``pysiaalarm`` receiver, in one run.

    .venv/bin/python bench/dc09.py [--transmitters 64] [--duration 10] [--rounds 2] [--rate 500] [--json]
                                   [--workers N] [--load-procs 2]
                                   [--baseline-python /work/main/.venv/bin/python]

Both receivers run as their own processes on loopback; load comes from separate processes of
simulated transmitters that behave like real ones: a persistent TCP connection each, one message at a
time, the next only once the ACK arrived (stop-and-wait). Every message is a Contact ID burglary alarm
with a fresh timestamp and sequence number, clear or AES-128 encrypted.

- alarmhub: ``python -m alarmhub_ingest_contactid`` against the real dev broker (reused if reachable,
  else started) and PostgreSQL (accounts and keys from the registry, clear and encrypted ones, as
  pysiaalarm is configured with both). Its ACK is sent only after the
  broker confirmed the ``alarms.raw`` write (acks=all); the run checks the receiver's own
  ``events_total`` against the ACKs counted by the transmitters.
- pysiaalarm: its asyncio TCP server with a no-op event callback — it ACKs before anything is stored,
  so it does strictly less per message.

Printed per receiver and mode: ACKed messages/s at saturation, ACK latency p50/p99, the ratio to
pysiaalarm, and p99 at a fixed offered load of ``--rate`` messages/s (open loop, spread over all
transmitters); the receiver's CPU and the load generators' CPU per 1,000 messages (the generators are
the same code for every receiver: if theirs is the larger share, the box, not the receiver, sets the
pace). ``--baseline-python`` adds a third receiver in the rotation: alarmhub run by another checkout's
interpreter (e.g. main's), for before/after figures from the same run. ``--workers N`` runs alarmhub as N
``SO_REUSEPORT`` workers (``ALARMHUB_DC09_WORKERS``; CPU over all of them, events summed over their
metrics ports). Each saturation row also prints the receiver's, the busiest load process's and the
broker's CPU (% of one core) and the wall: the receiver, the load generator, the broker, the machine
(load average ≥ CPUs, nothing saturated alone) or the stop-and-wait round trip. Every loop is bounded in count
and time; only 127.0.0.1 is used.

``--connect-per-message [--polls] [--accounts 2000]``: instead, every message on its own new connection at
``--rate`` (bench/e2e.py's panels; bench/dc09_connect.py), alarmhub and ``--baseline-python``'s receiver in
alternating rounds, each round's receiver CPU µs per message (user + system, and the system share).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
KEY_TEXT = "0123456789ABCDEF"  # pysiaalarm takes the key as 16/24/32 hex characters used as ASCII bytes
KEY = KEY_TEXT.encode()
LINE = "B"  # a line of our own in the registry, removed afterwards
LOAD_PROCS = 0  # --load-procs (0: drive()'s default)

PYSIA_SERVER = r"""
import asyncio, sys, logging
logging.disable(logging.CRITICAL)
from pysiaalarm.aio import SIAClient, SIAAccount
port, n, key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
accounts = [SIAAccount(f"C{i:03X}", key) for i in range(n)] + [SIAAccount(f"D{i:03X}", None) for i in range(n)]
async def on_event(event):
    return None
async def main():
    client = SIAClient("127.0.0.1", port, accounts, function=on_event)
    await client.async_start()
    print("ready", flush=True)
    await asyncio.sleep(3600)
asyncio.run(main())
"""


def account(i: int, encrypted: bool) -> str:
    return f"{'C' if encrypted else 'D'}{i:03X}"


# --------------------------------------------------------------------------------------- load side


async def _transmitter(
    port: int, idx: int, encrypted: bool, until: float, interval: float | None, lat: list[float], line: str
) -> int:
    from alarmhub_ingest_contactid.protocols import dc09

    acct = account(idx, encrypted)
    key = KEY if encrypted else None
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    seq = 0
    sent = 0
    next_at = time.monotonic() + (idx % 50) * (interval or 0) / 50
    try:
        while True:
            now = time.monotonic()
            if now >= until:
                break
            if interval is not None:
                if next_at > now:
                    await asyncio.sleep(next_at - now)
                    continue
                next_at += interval
            seq = seq % 9999 + 1
            frame = dc09.encode(
                "ADM-CID",
                seq,
                acct,
                f"#{acct}|1130 01 {seq % 1000:03d}",
                receiver="1",
                line=line,
                timestamp=datetime.now(UTC),
                key=key,
            )
            t0 = time.perf_counter()
            writer.write(frame)
            await writer.drain()
            reply = await asyncio.wait_for(reader.readuntil(b"\r"), 10)
            if b'ACK"' not in reply:
                raise RuntimeError(f"not an ACK: {reply!r}")
            lat.append(time.perf_counter() - t0)
            sent += 1
    finally:
        writer.close()
    return sent


def _load_process(
    port: int,
    first: int,
    count: int,
    encrypted: bool,
    duration: float,
    interval: float | None,
    line: str,
    out: Any,
) -> None:
    async def run() -> list[float]:
        lat: list[float] = []
        until = time.monotonic() + duration
        res = await asyncio.gather(
            *(_transmitter(port, first + i, encrypted, until, interval, lat, line) for i in range(count)),
            return_exceptions=True,
        )
        # a transmitter without an ACK in 10 s (or refused) stops and is counted, the others go on
        failed[0] = sum(isinstance(r, BaseException) for r in res)
        return lat

    failed = [0]
    c0 = time.process_time()
    lat = asyncio.run(run())
    out.put((lat, time.process_time() - c0, failed[0]))


def drive(
    port: int,
    transmitters: int,
    encrypted: bool,
    duration: float,
    rate: float | None,
    line: str,
    procs: int = 2,
) -> dict[str, float]:
    procs = LOAD_PROCS or procs
    """Run ``transmitters`` over ``procs`` load processes; return msgs/s and latency percentiles (ms)."""
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    per = [transmitters // procs + (1 if i < transmitters % procs else 0) for i in range(procs)]
    interval = transmitters / rate if rate else None
    workers, first = [], 0
    for n in per:
        p = ctx.Process(target=_load_process, args=(port, first, n, encrypted, duration, interval, line, out))
        p.start()
        workers.append(p)
        first += n
    from dc09_connect import gather_load

    lat, load_cpu, load_max, stopped = gather_load(out, workers, duration + 60)
    if not lat:
        return {
            "msgs_per_s": 0.0,
            "p50_ms": float("nan"),
            "p99_ms": float("nan"),
            "acked": 0,
            "transmitters_failed": stopped,
            "load_cpu_ms_per_1000": float("nan"),
            "load_cpu_pct_max": load_max / duration * 100,
        }
    return {
        "msgs_per_s": len(lat) / duration,
        "p50_ms": lat[len(lat) // 2] * 1000,
        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
        "acked": len(lat),
        "load_cpu_ms_per_1000": load_cpu * 1e6 / len(lat),
        "load_cpu_pct_max": load_max / duration * 100,  # the busiest load process, % of one core
        "transmitters_failed": stopped,  # no ACK within 10 s, or refused: stopped, not retried
    }


# ------------------------------------------------------------------------------------- receivers


def _free_port() -> int:
    from alarmhub_devstack import free_port

    return free_port()


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"receiver exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listening on {port}")


def start_alarmhub(
    backing: Any, db_url: str, prefix: str, log_level: str, python: str = sys.executable, workers: int = 1
) -> tuple[subprocess.Popen[bytes], int, int]:
    port, health = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALARMHUB_")}
    env.update(
        {
            "KAFKA_BOOTSTRAP": backing.kafka_bootstrap,
            "DATABASE_URL": db_url,
            "ALARMHUB_TOPIC_PREFIX": prefix,
            "ALARMHUB_DC09_HOST": "127.0.0.1",
            "ALARMHUB_DC09_PORT": str(port),
            "ALARMHUB_HEALTH_HOST": "127.0.0.1",
            "ALARMHUB_HEALTH_PORT": str(health),
            "ALARMHUB_LOG_LEVEL": log_level,
            # every simulated transmitter comes from 127.0.0.1: lift the per-address limit
            "ALARMHUB_DC09_MAX_CONNECTIONS_PER_PEER": "100000",
            "ALARMHUB_DC09_WORKERS": str(workers),  # each worker's metrics on the health port + index
        }
    )
    proc = subprocess.Popen(
        [python, "-m", "alarmhub_ingest_contactid"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_port(port, proc)
    return proc, port, health


def start_pysia(n: int) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", PYSIA_SERVER, str(port), str(n), KEY_TEXT],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_port(port, proc)
    return proc, port


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its workers (Linux), robust to other load on the machine."""
    return sum(cpu_split(pid))


def cpu_split(pid: int) -> tuple[float, float]:
    """User and system CPU time of a process and its workers; a process gone (a shared broker stopped
    by whoever started it) reads as 0."""
    import psutil

    try:
        ps = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return 0.0, 0.0
    user = system = 0.0
    for p in [ps, *ps.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            user, system = user + t[0], system + t[1]
    return user, system


def measured(pid: int, run: Any, broker: int | None = None) -> dict[str, float]:
    (u0, s0), b0, t0 = cpu_split(pid), cpu_seconds(broker) if broker else 0.0, time.monotonic()
    r = run()
    (u1, s1), elapsed = cpu_split(pid), time.monotonic() - t0
    cpu = u1 - u0 + s1 - s0
    r["cpu_ms_per_1000"] = cpu * 1e6 / max(1, r["acked"])
    r["sys_share"] = (s1 - s0) / cpu if cpu else float("nan")  # the kernel's part of the receiver's CPU
    r["cpu_pct"] = cpu / elapsed * 100
    r["broker_cpu_pct"] = (cpu_seconds(broker) - b0) / elapsed * 100 if broker else float("nan")
    return r


def wall(r: dict[str, float], workers: int) -> str:
    """Which resource set the pace of a saturation run, from its own figures."""
    cpus = os.cpu_count() or 1
    if r["cpu_pct"] >= 85 * workers:
        return "receiver"
    if r["load_cpu_pct_max"] >= 85:
        return "load generator"
    if r["broker_cpu_pct"] >= 85:
        return "broker"
    if os.getloadavg()[0] >= cpus:
        return f"machine CPU (load {os.getloadavg()[0]:.0f} on {cpus})"
    return "stop-and-wait round trip"


def broker_pid(bootstrap: str) -> int | None:
    import psutil

    port = int(bootstrap.split(",")[0].rsplit(":", 1)[1])
    with contextlib.suppress(psutil.Error):
        for c in psutil.net_connections("tcp"):
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
                return int(c.pid)
    return None


def published_events(health: int, workers: int = 1) -> float:
    total = 0.0
    for i in range(workers):
        with urllib.request.urlopen(f"http://127.0.0.1:{health + i}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        total += sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("alarmhub_ingest_contactid_events_total{")
        )
    return total


def setup_accounts(db_url: str, n: int, clear_supervised: int = 0) -> None:
    """``n`` encrypted and ``n`` clear accounts; or, with ``clear_supervised``, that many clear accounts
    supervised every 300 s (--connect-per-message: e2e.py's sites)."""
    from alarmhub_store import migrate_sync, sqlalchemy_url
    from sqlalchemy import create_engine, text

    migrate_sync(db_url)
    engine = create_engine(sqlalchemy_url(db_url))
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM accounts WHERE line = :l"), {"l": LINE})
        if clear_supervised:
            conn.execute(
                text(
                    "INSERT INTO accounts (line, account, company, encryption_required, supervision_s) "
                    "VALUES (:l, :a, 'bench', false, 300)"
                ),
                [{"l": LINE, "a": account(i, False)} for i in range(clear_supervised)],
            )
            n = 0
        for i in range(n):
            conn.execute(
                text(
                    "INSERT INTO accounts (line, account, company, key_hex, encryption_required) "
                    "VALUES (:l, :a, 'bench', :k, true)"
                ),
                {"l": LINE, "a": account(i, True), "k": KEY.hex()},
            )
            # the clear transmitters' accounts are registered too, as pysiaalarm's are configured (an
            # unregistered account is looked up in the database every few seconds: another path)
            conn.execute(
                text(
                    "INSERT INTO accounts (line, account, company, encryption_required) "
                    "VALUES (:l, :a, 'bench', false)"
                ),
                {"l": LINE, "a": account(i, False)},
            )
    engine.dispose()


def cleanup_accounts(db_url: str) -> None:
    from alarmhub_store import sqlalchemy_url
    from sqlalchemy import create_engine, text

    engine = create_engine(sqlalchemy_url(db_url))
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM accounts WHERE line = :l"), {"l": LINE})
    engine.dispose()


# ------------------------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--transmitters", type=int, default=64, help="concurrent transmitters (≤ 1000)")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per measurement (≤ 120)")
    ap.add_argument("--rate", type=float, default=500.0, help="offered load for the latency run, msgs/s")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds per receiver and mode (≤ 5)")
    ap.add_argument("--log-level", default="INFO", help="receiver log level (INFO logs every message)")
    ap.add_argument(
        "--baseline-python",
        default=None,
        help="also run alarmhub with this interpreter (another checkout's .venv) in the rotation",
    )
    ap.add_argument(
        "--workers", type=int, default=1, help="alarmhub receiver workers (ALARMHUB_DC09_WORKERS)"
    )
    ap.add_argument("--load-procs", type=int, default=2, help="load-generator processes")
    ap.add_argument(
        "--connect-per-message",
        action="store_true",
        help="each message on its own new connection at --rate (e2e.py's panels), alarmhub only: "
        "receiver CPU µs per message (bench/dc09_connect.py)",
    )
    ap.add_argument("--accounts", type=int, default=2000, help="--connect-per-message: supervised accounts")
    ap.add_argument(
        "--polls", action="store_true", help="--connect-per-message: NULL link tests instead of alarms"
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    transmitters = max(1, min(args.transmitters, 1000))
    duration = max(1.0, min(args.duration, 120.0))
    rounds = max(1, min(args.rounds, 5))
    workers = max(1, min(args.workers, 16))
    global LOAD_PROCS  # one setting of the script, read by drive()
    LOAD_PROCS = max(1, min(args.load_procs, 16))

    sys.path.insert(0, str(ROOT))
    from alarmhub_devstack import BackingServices
    from alarmhub_devstack.testing import drop_redis_keys
    from alarmhub_kafka import ensure_topics

    backing = BackingServices(
        kafka_bootstrap=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        postgres_url=os.environ.get("ALARMHUB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
        state_dir=ROOT / ".devstack" / "bench",
    ).start()
    db_url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/alarmhub")
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    asyncio.run(ensure_topics(backing.kafka_bootstrap, prefix=prefix))
    if args.connect_per_message:
        from dc09_connect import per_message

        accounts = max(1, min(args.accounts, 50_000))
        setup_accounts(db_url, 0, clear_supervised=accounts)
        try:
            per_message(
                sys.modules[__name__], args, backing, db_url, prefix, duration, rounds, workers, accounts
            )
        finally:
            cleanup_accounts(db_url)
            asyncio.run(drop_redis_keys(backing.redis_url, prefix))
            backing.stop()
        return
    setup_accounts(db_url, transmitters)
    results: dict[str, dict[str, float]] = {}
    line = LINE
    try:
        ah, ah_port, ah_health = start_alarmhub(backing, db_url, prefix, args.log_level, workers=workers)
        broker = broker_pid(backing.kafka_bootstrap)
        ps, ps_port = start_pysia(transmitters)
        # (name, process, port, health port or None, line)
        receivers: list[tuple[str, subprocess.Popen[bytes], int, int | None, str]] = [
            ("alarmhub", ah, ah_port, ah_health, line)
        ]
        if args.baseline_python:
            base, base_port, base_health = start_alarmhub(
                backing, db_url, prefix, args.log_level, python=args.baseline_python, workers=workers
            )
            receivers.append(("alarmhub_base", base, base_port, base_health, line))
        receivers.append(("pysiaalarm", ps, ps_port, None, "0"))
        try:
            time.sleep(1.0)
            # Rounds alternate between the receivers so that load from elsewhere on the machine hits
            # all alike; the best round of each counts.
            for enc in (False, True):
                mode = "aes" if enc else "clear"
                for _, _, port, _, ln in receivers:
                    drive(port, transmitters, enc, 3.0, None, ln)  # warm-up at full load
                for _ in range(rounds):
                    for name, proc, port, health, ln in receivers:
                        n = workers if health else 1
                        before = published_events(health, n) if health else 0.0
                        r = measured(
                            proc.pid,
                            lambda enc=enc, port=port, ln=ln: drive(
                                port, transmitters, enc, duration, None, ln
                            ),
                            broker,
                        )
                        r["wall"] = wall(r, n)  # type: ignore[assignment]
                        if health:
                            r["published"] = published_events(health, n) - before
                        if r["msgs_per_s"] > results.get(f"{name}_{mode}", {}).get("msgs_per_s", -1):
                            results[f"{name}_{mode}"] = r
                for name, _, port, _, ln in receivers:
                    results[f"{name}_{mode}_at_rate"] = drive(
                        port, transmitters, enc, duration, args.rate, ln
                    )
        finally:
            for _, proc, _, _, _ in receivers:
                stop(proc)
    finally:
        cleanup_accounts(db_url)
        asyncio.run(drop_redis_keys(backing.redis_url, prefix))
        backing.stop()

    names = ["alarmhub"] + (["alarmhub_base"] if args.baseline_python else [])
    for mode in ("clear", "aes"):
        ref = results[f"pysiaalarm_{mode}"]["msgs_per_s"]
        for name in names:
            results[f"{name}_{mode}"]["ratio_vs_pysiaalarm"] = (
                results[f"{name}_{mode}"]["msgs_per_s"] / ref if ref else float("inf")
            )
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"DC-09 receivers, {transmitters} stop-and-wait transmitters over loopback, best of {rounds} x "
        f"{duration:.0f} s per receiver and mode; alarmhub with {workers} worker(s), load from "
        f"{LOAD_PROCS} processes"
    )
    print(
        f"{'receiver / mode':<28}{'msgs/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'ratio':>8}  "
        f"{'p99 ms @' + str(int(args.rate)) + '/s':>14}{'CPU ms/1000 msgs':>18}{'load gen CPU':>14}"
        f"{'rx CPU%':>9}{'load% max':>10}{'broker%':>9}  wall"
    )
    for mode in ("clear", "aes"):
        for name in [*names, "pysiaalarm"]:
            r, rr = results[f"{name}_{mode}"], results[f"{name}_{mode}_at_rate"]
            ratio = f"{r['ratio_vs_pysiaalarm']:.2f}x" if "ratio_vs_pysiaalarm" in r else ""
            print(
                f"{name + '_' + mode:<28}{r['msgs_per_s']:>10.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{ratio:>8}  "
                f"{rr['p99_ms']:>14.2f}{r['cpu_ms_per_1000']:>18.1f}{r['load_cpu_ms_per_1000']:>14.1f}"
                f"{r['cpu_pct']:>9.0f}{r['load_cpu_pct_max']:>10.0f}{r['broker_cpu_pct']:>9.0f}  {r['wall']}"
            )
    for mode in ("clear", "aes"):
        for name in names:
            r = results[f"{name}_{mode}"]
            print(
                f"{name} {mode}: {int(r['acked'])} ACKs, {int(r['published'])} events confirmed by the broker, "
                f"{int(r['transmitters_failed'])} transmitters stopped (no ACK in 10 s or refused)"
            )
    print(f"machine load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
