"""The DC-09 receiver's account registry refresh: this tree's (only the rows changed since, in chunks)
against another revision's registry.py (``--ref``, default 45bdec2: the last whose refresh rebuilt the
whole table), in one process, same database.

    .venv/bin/python bench/registry_refresh.py [--accounts 6000 100000] [--changed 10] [--rounds 3] [--ref 45bdec2]

For each registry size, in a fresh database of its own (dropped afterwards): the first load, then a
refresh with nothing changed and one after ``--changed`` rows were updated in SQL. Printed per revision,
best of ``--rounds``: wall ms, this process's CPU ms, and the longest the event loop was held (a 1 ms
ticker's largest gap beyond its interval: what a DC-09 panel connecting meanwhile would wait for its
frame to be read). The process does nothing else; PostgreSQL's own CPU is not counted, and the machine's
load average is printed. Bounded: at most 200,000 accounts, 10 rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = "services/ingest-contactid/src/alarmhub_ingest_contactid/registry.py"


def _load_ref(ref: str) -> Any:
    """``ref``'s registry module, imported beside this tree's package (its relative imports resolve)."""
    text = subprocess.run(
        ["git", "show", f"{ref}:{REGISTRY}"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / "registry.py"
    path.write_bytes(text)
    spec = importlib.util.spec_from_file_location("alarmhub_ingest_contactid._bench_registry", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


async def _timed(call: Any) -> dict[str, float]:
    """Run ``call()`` beside a 1 ms ticker: wall, CPU and the ticker's longest gap, in ms."""
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last - 0.001)
            last = now

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    c0, t0 = time.process_time(), time.perf_counter()
    await call()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    done.set()
    await tick
    return {"wall_ms": wall * 1000, "cpu_ms": cpu * 1000, "held_ms": max(gaps, default=0.0) * 1000}


async def _round(db_url: str, ref: Any, changed: int, line: str) -> dict[str, dict[str, float]]:
    import asyncpg
    from alarmhub_ingest_contactid.registry import AccountRegistry

    out: dict[str, dict[str, float]] = {}
    new, old = AccountRegistry(db_url), ref.AccountRegistry(db_url)
    out["this: first load"] = await _timed(new.refresh)
    out["ref: full load (every refresh)"] = await _timed(old.load)
    out["this: nothing changed"] = await _timed(new.refresh)
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(
            "UPDATE accounts SET site_name = site_name || '+' WHERE line = $1 AND account IN"
            " (SELECT account FROM accounts WHERE line = $1 ORDER BY account LIMIT $2)",
            line,
            changed,
        )
    finally:
        await conn.close()
    out[f"this: {changed} changed"] = await _timed(new.refresh)
    assert len(new.accounts) == len(await old.load())
    return out


def _setup(db_url: str, n: int, line: str) -> None:
    from alarmhub_store import migrate_sync, sqlalchemy_url
    from sqlalchemy import create_engine, text

    migrate_sync(db_url)
    engine = create_engine(sqlalchemy_url(db_url))
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO accounts (line, account, company, supervision_s, site_name, site_address, lat, lon,"
                " zones) SELECT :l, upper(to_hex(g)), 'bench', CASE WHEN g % 10 = 0 THEN 300 END,"
                ' \'Site \' || g, g || \' Main St\', 22.5, 114.0, \'{"1": "Front door", "3": "Vault"}\'::jsonb'
                " FROM generate_series(1, :n) AS g"
            ),
            {"l": line, "n": n},
        )
    engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, nargs="+", default=[6000, 100_000])
    ap.add_argument("--changed", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ref", default="45bdec2")
    args = ap.parse_args()
    rounds = max(1, min(args.rounds, 10))
    sys.path.insert(0, str(ROOT))
    from alarmhub_store import ensure_database

    ref = _load_ref(args.ref)
    base = os.environ.get("ALARMHUB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
    print(f"machine load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; ref {args.ref}")
    for n in args.accounts:
        n = max(1, min(n, 200_000))
        name = f"alarmhub_bench_registry_{uuid.uuid4().hex[:8]}"
        db_url = base.rsplit("/", 1)[0] + "/" + name
        ensure_database(db_url)
        try:
            _setup(db_url, n, "B")
            best: dict[str, dict[str, float]] = {}
            for _ in range(rounds):
                for step, r in asyncio.run(_round(db_url, ref, min(args.changed, n), "B")).items():
                    if step not in best or r["wall_ms"] < best[step]["wall_ms"]:
                        best[step] = r
        finally:
            subprocess.run(["psql", base, "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=False)
        print(f"\n{n:,} accounts, best of {rounds} (by wall time)")
        print(f"{'step':34} {'wall ms':>9} {'CPU ms':>9} {'loop held ms':>13}")
        for step, r in best.items():
            print(f"{step:34} {r['wall_ms']:9.1f} {r['cpu_ms']:9.1f} {r['held_ms']:13.1f}")
    print(f"\nmachine load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
