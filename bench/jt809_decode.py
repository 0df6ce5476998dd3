"""Benchmark of the JT/T 809 decode hot path alone: µs of CPU per 0x1202 position, no socket, no Kafka.

A logged-in ``Jt809LinkSession`` (sans-IO) is fed pre-encoded 2011 0x1202 frames (500 vehicles, reads of
2,000 frames, built as ``bench/jt809.py``'s load processes build theirs) and the time of ``feed`` per position
is taken, after a warm-up read. ``direct``: the server's path (the fix written as JSON, ``RawFix``);
``model``: the same hot path building a ``GpsFix`` (``direct=False``). The end-to-end figure with the
broker is ``bench/jt809.py``; this one resolves a change to the decode path to a few per cent.

    .venv/bin/python bench/jt809_decode.py --positions 200000 --repeat 7

Prints one JSON line per path: the module decoded with, positions per run, and µs per position
(median, min and max of the runs). To compare two versions of ingest-gps, run this once against each
(``PYTHONPATH=<other checkout>/services/ingest-gps/src``), alternately, in one go.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from datetime import UTC, datetime

from jt809 import fleet_frames  # bench/jt809.py: the frames its load processes stream

PASSWORD = "bench809"
USER = 90000
BATCH = 2000


def _session(direct: bool, now: datetime) -> object:
    from alarmhub_ingest_gps.jt809 import Jt809LinkSession, PlatformDirectory, PlatformRecord
    from alarmhub_ingest_gps.protocols import jt809 as p

    s = Jt809LinkSession(PlatformDirectory([PlatformRecord(USER, PASSWORD, USER, "bench-0")]), direct=direct)
    login = p.encode(
        p.UP_CONNECT_REQ,
        p.encode_login(p.Login(USER, PASSWORD, "127.0.0.1", 0)),
        serial=0,
        gnss_center_id=USER,
    )
    if s.feed(login, now).login_result != p.LOGIN_OK:
        raise RuntimeError("login refused")
    return s


def run(direct: bool, positions: int, repeat: int) -> list[float]:
    """µs per position of each run."""
    now = datetime.now(UTC)
    data = fleet_frames(USER, now, BATCH)
    reads = max(positions // BATCH, 1)
    out: list[float] = []
    for _ in range(repeat + 1):  # the first run warms the caches (plates, alarm words, float texts)
        s = _session(direct, now)
        n = 0
        t0 = time.process_time()
        for _ in range(reads):
            n += s.feed(data, now).positions  # type: ignore[attr-defined]
        dt = time.process_time() - t0
        if n != reads * BATCH:
            raise RuntimeError(f"{n} positions decoded of {reads * BATCH}")
        out.append(dt / n * 1e6)
    return out[1:]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--positions", type=int, default=200_000, help="positions per run (multiple of 2,000)")
    ap.add_argument("--repeat", type=int, default=5, help="counted runs per path")
    ap.add_argument("--paths", nargs="+", choices=["direct", "model"], default=["direct", "model"])
    a = ap.parse_args(argv)
    import alarmhub_ingest_gps

    gc.freeze()  # as the ingest-gps process runs (alarmhub_runtime.run_async; ALARMHUB_GC_TUNE)
    gc.set_threshold(35_000, 20, 20)
    for path in a.paths:
        us = run(path == "direct", a.positions, a.repeat)
        print(
            json.dumps(
                {
                    "path": path,
                    "module": alarmhub_ingest_gps.__file__,
                    "positions": a.positions,
                    "runs": a.repeat,
                    "us_per_position_median": round(statistics.median(us), 3),
                    "min": round(min(us), 3),
                    "max": round(max(us), 3),
                }
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
