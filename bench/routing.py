"""Benchmark of point → police-station routing over the demo geography.

Measured in one run, on the same random points (seeded; 80 % inside the city's bounding box of
districts, the rest around it):

- ``strtree batch``: :meth:`Router.route_ids`, one vectorized STRtree query per batch (misses flagged);
- ``strtree route_many``: the same plus the per-point nearest/district fallback for the misses (through
  the cell grid);
- ``single``: one point at a time, p50/p99 latency of both paths on the same points, each point timed
  through the exact path (:meth:`Router.route_exact`: STRtree queries, the pre-grid router) and the cell
  grid (:meth:`Router.route`) back to back, the order alternating, so both see the same machine load;
  also the p99 over the points that miss every station (the nearest/district search);
- ``naive loop``: every station polygon tested in turn with shapely's ``contains_xy`` (the baseline);
- ``postgis``: ``ST_Contains`` on a GiST index, when the server has the PostGIS extension (skipped
  and said so otherwise).

    .venv/bin/python bench/routing.py --points 200000 --single 20000

Goals (issue 7): ≥ 200,000 lookups/s batched, p99 < 100 µs single. Every loop is bounded in count.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import json
import os
import statistics
import sys
import time
from typing import Any

import numpy as np
import shapely
from alarmhub_dispatch.demo_geo import demo_units
from alarmhub_dispatch.routing import Area, Route, RouteMethod, Router


def _points(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lon = rng.uniform(113.75, 114.62, n)
    lat = rng.uniform(22.45, 22.86, n)
    return lon, lat


def bench_batch(router: Router, lon: np.ndarray, lat: np.ndarray, batch: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    hits = 0
    for i in range(0, len(lon), batch):
        _, code = router.route_ids(lon[i : i + batch], lat[i : i + batch])
        hits += int((code < 2).sum())
    dt = time.perf_counter() - t0
    return {
        "lookups_per_s": round(len(lon) / dt),
        "points": len(lon),
        "batch": batch,
        "inside_share": hits / len(lon),
    }


def bench_many(router: Router, lon: np.ndarray, lat: np.ndarray) -> dict[str, Any]:
    """``route_many``: the batch core plus the per-point fallback for misses (complete Route objects)."""
    t0 = time.perf_counter()
    router.route_many(lon, lat)
    dt = time.perf_counter() - t0
    return {"lookups_per_s": round(len(lon) / dt), "points": len(lon)}


def _q(lat_us: list[float]) -> dict[str, float]:
    q = statistics.quantiles(sorted(lat_us), n=100)
    return {"p50_us": round(q[49], 1), "p99_us": round(q[98], 1)}


def bench_single(router: Router, lon: np.ndarray, lat: np.ndarray) -> dict[str, Any]:
    """Exact path and grid path on each point, back to back (alternating which goes first)."""
    exact: list[float] = []
    grid: list[float] = []
    miss_exact: list[float] = []
    miss_grid: list[float] = []
    differ = 0
    clock = time.perf_counter_ns
    for k, (x, y) in enumerate(zip(lon.tolist(), lat.tolist(), strict=True)):
        if k % 2:
            t0 = clock()
            a = router.route_exact(x, y)
            t1 = clock()
            b = router.route(x, y)
            t2 = clock()
            te, tg = t1 - t0, t2 - t1
        else:
            t0 = clock()
            b = router.route(x, y)
            t1 = clock()
            a = router.route_exact(x, y)
            t2 = clock()
            tg, te = t1 - t0, t2 - t1
        exact.append(te / 1000)
        grid.append(tg / 1000)
        differ += a != b
        if a.method not in (RouteMethod.INSIDE, RouteMethod.BORDER):
            miss_exact.append(te / 1000)
            miss_grid.append(tg / 1000)
    old, new = _q(exact), _q(grid)
    return {
        "exact": {**old, "lookups_per_s": round(len(exact) / (sum(exact) / 1e6))},
        "grid": {**new, "lookups_per_s": round(len(grid) / (sum(grid) / 1e6))},
        "p99_ratio_exact_over_grid": round(old["p99_us"] / new["p99_us"], 2),
        "misses": {
            "points": len(miss_grid),
            "exact_p99_us": _q(miss_exact)["p99_us"],
            "grid_p99_us": _q(miss_grid)["p99_us"],
        }
        if len(miss_grid) > 1
        else {"points": len(miss_grid)},
        "points": len(grid),
        "answers_differ": differ,
    }


def _rss_bytes(trim: bool = False) -> int:
    """Resident set size now (Linux), to count what the grid holds in GEOS and numpy too.

    ``trim``: first collect garbage and hand freed heap back to the OS (glibc ``malloc_trim``), so that the
    difference to an earlier trimmed reading is what is retained, not what the build freed.
    """
    if trim:
        gc.collect()
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _grid_bytes(router: Router) -> int:
    """Memory held by the grid: the cell list and the per-cell records (shared Routes not counted)."""
    g = router._grid
    if g is None:
        return 0
    seen: set[int] = set()
    n = sys.getsizeof(g.cells)
    for c in g.cells:
        if isinstance(c, Route):
            continue
        n += sys.getsizeof(c)
        for t in (c.contain, c.near_st, c.near_d):
            if id(t) not in seen:
                seen.add(id(t))
                n += sys.getsizeof(t)
    return n


def bench_naive(stations: list[Any], lon: np.ndarray, lat: np.ndarray) -> dict[str, Any]:
    """The obvious loop: test each polygon until one contains the point (prepared geometries, to be fair)."""
    geoms = [s.geometry for s in stations]
    for g in geoms:
        shapely.prepare(g)
    t0 = time.perf_counter()
    for x, y in zip(lon.tolist(), lat.tolist(), strict=True):
        for g in geoms:
            if shapely.contains_xy(g, x, y):
                break
    dt = time.perf_counter() - t0
    return {"lookups_per_s": round(len(lon) / dt), "points": len(lon)}


async def bench_postgis(dsn: str, stations: list[Any], lon: np.ndarray, lat: np.ndarray) -> dict[str, Any]:
    import asyncpg

    try:
        admin = await asyncpg.connect(dsn, timeout=5)
    except Exception as exc:
        return {"skipped": f"PostgreSQL unreachable: {exc!r}"}
    db = f"alarmhub_bench_routing_{os.getpid()}"  # a scratch database: the extension never touches others
    try:
        if not await admin.fetchval("SELECT count(*) FROM pg_available_extensions WHERE name='postgis'"):
            return {"skipped": "PostGIS is not installed on this server"}
        await admin.execute(f'CREATE DATABASE "{db}"')
    except Exception:
        await admin.close()
        raise
    conn = await asyncpg.connect(dsn.rsplit("/", 1)[0] + "/" + db, timeout=5)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        await conn.execute("CREATE TEMP TABLE bench_areas (id text, g geometry(Geometry, 4326))")
        await conn.executemany(
            "INSERT INTO bench_areas VALUES ($1, ST_GeomFromText($2, 4326))",
            [(s.id, s.geometry.wkt) for s in stations],
        )
        await conn.execute("CREATE INDEX ON bench_areas USING gist (g); ANALYZE bench_areas")
        stmt = await conn.prepare(
            "SELECT id FROM bench_areas WHERE ST_Contains(g, ST_SetSRID(ST_MakePoint($1,$2),4326)) LIMIT 1"
        )
        t0 = time.perf_counter()
        for x, y in zip(lon.tolist(), lat.tolist(), strict=True):
            await stmt.fetchval(x, y)
        dt = time.perf_counter() - t0
        t1 = time.perf_counter()
        await conn.fetch(
            "SELECT p.i, a.id FROM unnest($1::float8[], $2::float8[]) WITH ORDINALITY AS p(x, y, i)"
            " LEFT JOIN bench_areas a ON ST_Contains(a.g, ST_SetSRID(ST_MakePoint(p.x, p.y), 4326))",
            lon.tolist(),
            lat.tolist(),
        )
        dt_batch = time.perf_counter() - t1
        return {
            "single_lookups_per_s": round(len(lon) / dt),
            "batch_lookups_per_s": round(len(lon) / dt_batch),
            "points": len(lon),
        }
    finally:
        await conn.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await admin.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--points", type=int, default=200_000, help="points for the batched run (max 5,000,000)")
    ap.add_argument("--batch", type=int, default=50_000)
    ap.add_argument("--single", type=int, default=20_000, help="points for single lookups and the baselines")
    ap.add_argument("--naive", type=int, default=5_000, help="points for the naive loop (it is slow)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--grid-cell-m", type=float, default=None, help="grid cell size (default: the router's)")
    ap.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    a = ap.parse_args(argv)
    n = min(a.points, 5_000_000)
    units = demo_units()
    stations = [u for u in units if u.tier == 3]
    t0 = time.perf_counter()
    router = Router(
        [Area(u.id, u.parent_id, u.geometry) for u in stations],
        [Area(u.id, u.id, u.geometry) for u in units if u.tier == 2],
        grid_cell_m=None,
    )
    build_s = time.perf_counter() - t0
    rss0 = _rss_bytes(trim=True)
    grid_stats = router.build_grid(*([a.grid_cell_m] if a.grid_cell_m is not None else []))
    rss_build = _rss_bytes() - rss0
    rss_kept = _rss_bytes(trim=True) - rss0
    lon, lat = _points(n, a.seed)
    router.route_ids(lon[:1000], lat[:1000])  # warm-up
    res: dict[str, Any] = {
        "stations": len(stations),
        "router_build_s_without_grid": round(build_s, 3),
        "grid": {
            **grid_stats,
            "python_objects_mb": round(_grid_bytes(router) / 1e6, 1),
            "rss_after_build_mb": round(rss_build / 1e6, 1),
            "rss_retained_mb": round(rss_kept / 1e6, 1),
        },
        "strtree_batch": bench_batch(router, lon, lat, a.batch),
        "strtree_route_many": bench_many(router, lon[: a.single * 2], lat[: a.single * 2]),
        "single": bench_single(router, lon[: a.single], lat[: a.single]),
        "naive_loop": bench_naive(stations, lon[: a.naive], lat[: a.naive]),
        "postgis": asyncio.run(bench_postgis(a.database_url, stations, lon[: a.naive], lat[: a.naive])),
    }
    res["goals"] = {
        "batched_200k_per_s": res["strtree_batch"]["lookups_per_s"] >= 200_000,
        "single_p99_under_100us": res["single"]["grid"]["p99_us"] < 100,
        "grid_answers_identical": res["single"]["answers_differ"] == 0,
    }
    if a.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:16} {v}")
    return 0 if all(res["goals"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
