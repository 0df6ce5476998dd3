"""The GPS gateway's own CPU per JT/T 808 location frame, in one process, without sockets or a broker.

``bench/gps.py trackers`` measures the whole gateway under a realistic load, but on a shared 2-CPU box its
µs per frame moves by ±15 % between runs of the same code (how many reads an event-loop iteration holds
depends on the other processes), which hides a change of a few µs. This bench drives the gateway's real
per-frame path — ``Connection.data_received`` → ``Jt808Session`` → the iteration's batch → the app's
``deliver_many`` → the 0x8001 written — with a producer that confirms at once and a transport that drops
what is written, and reports the process's CPU per frame: the minimum of ``--reps`` runs (the least
disturbed one) and the median. The frames are the load generator's (``gps_trackers.Frames``); the session,
registry view, watch book and metrics are the service's own. What it leaves out — the socket reads and
writes, the event loop's wake-ups, aiokafka — both gateways pay alike (``bench/gps_bare.py``).

    .venv/bin/python bench/gps_hotpath.py --terminals 2000 --reads-per-iteration 10 --frames 10000 --reps 15

To compare two trees, run this file with each tree's interpreter alternately (a tree without it: copy it
into that tree's ``bench/``, beside ``gps_trackers.py``), several rounds; quote the minima and medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

SECRET = b"hotpath-secret"


class _Producer:
    """Confirms every write at once (the broker's cost is not the gateway's)."""

    def __init__(self) -> None:
        self.records = 0

    async def send_raw_many(self, items: list[tuple[str, bytes, str | None]]) -> None:
        self.records += len(items)


class _Transport:
    """What the gateway writes is dropped; reading is never really paused."""

    def __init__(self) -> None:
        self.writes = 0

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else None

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def write(self, data: bytes) -> None:
        self.writes += 1

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


class _Ownership:
    def claim(self, device_id: str) -> None:
        pass

    def release(self, device_id: str) -> None:
        pass


class _Files:
    def exhausted(self, transport: Any) -> bool:
        return False


async def run(terminals: int, per_iteration: int, frames: int, reps: int) -> dict[str, Any]:
    from alarmhub_ingest_gps.app import GpsApp
    from alarmhub_ingest_gps.metrics import GpsMetrics
    from alarmhub_ingest_gps.protocols import jt808
    from alarmhub_ingest_gps.server import Connection, ConnectionBudget, GpsServer
    from alarmhub_ingest_gps.sessions import (
        DictDirectory,
        Jt808Session,
        SessionConfig,
        VehicleInfo,
        derive_auth_code,
    )
    from alarmhub_ingest_gps.signals import WatchBook, WatchConfig
    from gps_trackers import Frames, phone
    from prometheus_client import CollectorRegistry

    metrics = GpsMetrics(CollectorRegistry())
    # the app's Sink methods over a producer that confirms at once (GpsApp's constructor would connect
    # to PostgreSQL and Redis): only what deliver_many and session_opened read is set
    app: Any = GpsApp.__new__(GpsApp)
    app.producer, app.metrics, app._event_counters, app.ownership = _Producer(), metrics, {}, _Ownership()
    directory = DictDirectory()
    config = SessionConfig(auth_secret=SECRET)
    book = WatchBook(WatchConfig(config.armed_speed_kmh, config.parked_radius_m))
    server = GpsServer(
        "jt808",
        partial(Jt808Session, directory, config, watches=book),
        app,
        metrics,
        host="127.0.0.1",
        port=0,
        idle_timeout_s=600,
        login_timeout_s=600,
        max_connections=ConnectionBudget(terminals + 1),
    )
    server.files = _Files()
    wheel = Frames()
    wheel.clock(time.time())
    conns: list[tuple[Connection, bytes, bytes, int]] = []
    for i in range(terminals):
        number = phone(0, i)
        directory[number] = VehicleInfo(number, "jt808", plate=f"B{i:05d}")
        conn = Connection(server)
        conn.connection_made(_Transport())
        conn.data_received(jt808.encode(0x0102, number, 1, derive_auth_code(SECRET, number).encode()))
        head, mid, x = Frames.pieces(0, i)
        conns.append((conn, head, mid, x))
        if i % 100 == 0:
            await asyncio.sleep(0)
    for _ in range(10):
        await asyncio.sleep(0)
    loop_turns = 3  # the iteration's end, the batch's task, its replies

    async def measure(n: int, serial: int) -> tuple[float, int]:
        t0 = time.process_time()
        k = done = 0
        while done < n:
            for _ in range(per_iteration):
                conn, head, mid, x = conns[k % terminals]
                k += 1
                serial = (serial + 1) & 0xFFFF
                conn.data_received(wheel.build(head, mid, x, serial))
            done += per_iteration
            for _ in range(loop_turns):
                await asyncio.sleep(0)
        return (time.process_time() - t0) / done * 1e6, serial

    _, serial = await measure(max(frames // 5, per_iteration), 1)  # warm the caches
    runs = []
    for _ in range(reps):
        us, serial = await measure(frames, serial)
        runs.append(us)
    answered = sum(c.transport.writes for c, *_ in conns if isinstance(c.transport, _Transport))
    return {
        "bench": "gps_hotpath",
        "terminals": terminals,
        "reads_per_iteration": per_iteration,
        "frames_per_run": frames,
        "runs": reps,
        "cpu_us_per_frame_min": round(min(runs), 2),
        "cpu_us_per_frame_median": round(statistics.median(runs), 2),
        "records_published": app.producer.records,
        "replies_written": answered,
        "python": sys.version.split()[0],
        "at": datetime.now().isoformat(timespec="seconds"),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--terminals", type=int, default=2000)
    ap.add_argument("--reads-per-iteration", type=int, default=10)
    ap.add_argument("--frames", type=int, default=10_000, help="frames per run")
    ap.add_argument("--reps", type=int, default=15, help="runs (the minimum and median are printed)")
    a = ap.parse_args()
    if not (1 <= a.terminals <= 100_000 and 1 <= a.reads_per_iteration <= a.terminals):
        ap.error("1 ≤ reads per iteration ≤ terminals ≤ 100,000")
    if not (1 <= a.frames <= 10_000_000 and 1 <= a.reps <= 100):
        ap.error("1 ≤ frames ≤ 10,000,000 and 1 ≤ reps ≤ 100")
    import uvloop

    print(json.dumps(uvloop.run(run(a.terminals, a.reads_per_iteration, a.frames, a.reps))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
