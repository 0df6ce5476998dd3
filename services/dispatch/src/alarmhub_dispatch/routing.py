"""Point → police station routing over jurisdiction polygons (pure; shapely 2 STRtree).

Every station area sits in an STRtree; shapely evaluates ``intersects`` against prepared geometries,
and a batch of points is answered by one vectorized ``query`` call. The decision is recorded with the
route, because a dispatcher (and an auditor) must be able to see *why* an alarm went where it did:

- ``inside``    the point lies in exactly one station area;
- ``border``    it lies on the shared border of several areas: the lowest unit id wins (deterministic);
- ``nearest``   it lies in no area (a gap, a hole, offshore) but within ``max_distance_m`` of one:
                the nearest station;
- ``district``  no station is near enough, but the point is inside (or near) a district: the district
                takes it, with no station;
- ``outside``   nothing within reach: no station, no district (the city tier sees it).

Single points (:meth:`Router.route`) go through a cell grid classified once at build time (see
:meth:`Router._build_grid`): most cells answer with a shared Route and no GEOS call, the rest test only
their few candidate areas with the same GEOS calls as the STRtree path (:meth:`Router.route_exact`),
so both give the same answers (the tests compare them point by point).

Distances are computed on a local equirectangular plane (a copy of the areas scaled to metres at the
city's latitude); at city scale (tens of km) that is accurate to about 0.5 %, plenty for a tolerance band.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt
import shapely
from shapely import STRtree, contains_xy, intersects_xy
from shapely.geometry.base import BaseGeometry

__all__ = ["Area", "Route", "RouteMethod", "Router"]

_M_PER_DEG_LAT = 111_320.0


class RouteMethod(StrEnum):
    INSIDE = "inside"
    BORDER = "border"
    NEAREST = "nearest"
    DISTRICT = "district"
    OUTSIDE = "outside"
    NO_LOCATION = "no_location"


@dataclass(frozen=True)
class Area:
    """A routable area: a station (with its district) or a district (``district == id``)."""

    id: str
    district: str | None
    geometry: BaseGeometry


@dataclass(frozen=True)
class Route:
    station: str | None
    district: str | None
    method: RouteMethod
    distance_m: float = 0.0
    site: str | None = None  # the grassroots site (tier 4) whose area holds the point: told, not responsible

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "station": self.station,
            "district": self.district,
            "method": self.method.value,
            "distance_m": round(self.distance_m, 1),
        }
        if self.site is not None:
            out["site"] = self.site
        return out


NO_LOCATION = Route(None, None, RouteMethod.NO_LOCATION)
_OUTSIDE = Route(None, None, RouteMethod.OUTSIDE)

# where a cell lies relative to the "reach" / "near" polygon; _EXACT: a cell the union of the stations
# covers, whose points should never miss — should one (a float sliver between two areas) miss anyway,
# it takes the exact fallback rather than a guess
_OUT, _IN, _PART, _EXACT = 0, 1, 2, 3
# cell boxes are widened by this (≈ 1 cm) so that a point's cell, found by float arithmetic, surely
# contains it, and GEOS's box predicates are never asked about a point on the box's own edge
_BOX_EPS_DEG = 1e-7
# slack, in metres, for the candidate lists: a candidate too many costs one distance call, one too few
# would change a result
_SLACK_M = 1.0
# cells classified per vectorized pass of the grid build (bounds its transient memory)
_BUILD_SLICE = 16_384


class _Cell:
    """A grid cell whose points do not all get the same answer: the few areas its points may need.

    ``contain``: stations whose area touches the cell (point-in-polygon candidates), by index (= id order);
    ``reach``/``near``: the cell against those two polygons (out, in, partly; ``reach`` is ``_EXACT``
    for a cell the stations cover together);
    ``near_st``/``near_d``: stations / districts that can be the nearest within tolerance of some point
    of the cell (those always farther than another candidate are dropped).
    """

    __slots__ = ("contain", "near", "near_d", "near_st", "reach")

    def __init__(
        self,
        contain: tuple[int, ...],
        reach: int,
        near: int,
        near_st: tuple[int, ...],
        near_d: tuple[int, ...],
    ) -> None:
        self.contain = contain
        self.reach = reach
        self.near = near
        self.near_st = near_st
        self.near_d = near_d


@dataclass(frozen=True)
class _CellGrid:
    """A regular lon/lat grid over the map; each cell is a shared :class:`Route` or a :class:`_Cell`."""

    x0: float
    y0: float
    inv_dx: float
    inv_dy: float
    nx: int
    ny: int
    cells: list[Route | _Cell]
    stats: dict[str, float]


def _closest(
    geoms_m: npt.NDArray[np.object_], cand: tuple[int, ...], p: shapely.Point, within_m: float
) -> tuple[int, float]:
    """The nearest candidate within ``within_m`` (the lowest index among equals), or ``(-1, 0.0)``.

    Same distances as :meth:`Router._nearest` (the same GEOS call on the same geometries); its STRtree
    ``dwithin`` filter is ``distance <= within_m``, hence the test here.
    """
    best, best_d = -1, 0.0
    for j in cand:
        d = float(shapely.distance(geoms_m[j], p))
        if d <= within_m and (best < 0 or d < best_d):
            best, best_d = j, d
    return best, best_d


class Router:
    """Routes WGS-84 points to stations. Build once from the areas; lookups are read-only and thread-safe."""

    def __init__(
        self,
        stations: Iterable[Area],
        districts: Iterable[Area],
        *,
        max_distance_m: float = 500.0,
        district_distance_m: float = 2_000.0,
        ref_lat: float = 22.6,
        grid_cell_m: float | None = 200.0,
        grid_max_cells: int = 2_000_000,
    ) -> None:
        self.stations = sorted(stations, key=lambda a: a.id)
        self.districts = sorted(districts, key=lambda a: a.id)
        self.max_distance_m = max_distance_m
        self.district_distance_m = district_distance_m
        # degrees of longitude shrink with latitude: one factor for the whole (city-sized) map
        self._m_per_deg_lon = _M_PER_DEG_LAT * math.cos(math.radians(ref_lat))
        self._st_geoms = np.array([a.geometry for a in self.stations], dtype=object)
        self._st_ids = np.array([a.id for a in self.stations], dtype=object)
        self._st_district = np.array([a.district for a in self.stations], dtype=object)
        self._d_geoms = np.array([a.geometry for a in self.districts], dtype=object)
        self._d_ids = np.array([a.id for a in self.districts], dtype=object)
        shapely.prepare(self._st_geoms)
        shapely.prepare(self._d_geoms)
        self._st_tree = STRtree(self._st_geoms)
        self._d_tree = STRtree(self._d_geoms)
        self._st_geoms_m = self._to_m(self._st_geoms)
        # district fallback distances tolerate a 20 m simplification (its band is kilometres wide)
        self._d_geoms_m = (
            shapely.simplify(self._to_m(self._d_geoms), 20.0) if len(self._d_geoms) else self._d_geoms
        )
        shapely.prepare(self._st_geoms_m)
        shapely.prepare(self._d_geoms_m)
        self._st_tree_m = STRtree(self._st_geoms_m)
        self._d_tree_m = STRtree(self._d_geoms_m)
        # everything within reach of any area: points beyond it are "outside" without a nearest-search
        # (the nearest-search costs hundreds of µs on detailed coastlines; most misses are far away)
        reach_m = max(max_distance_m, district_distance_m) * 1.05
        covered = (
            shapely.union_all(np.concatenate([self._st_geoms, self._d_geoms]))
            if len(self._st_geoms) + len(self._d_geoms)
            else shapely.Polygon()
        )
        self._reach = (
            shapely.buffer(covered.simplify(self._deg(50)), self._deg(reach_m), quad_segs=4)
            if not covered.is_empty
            else covered
        )
        shapely.prepare(self._reach)
        self._st_union = shapely.union_all(self._st_geoms) if len(self._st_geoms) else shapely.Polygon()
        self._near = (
            shapely.buffer(
                self._st_union.simplify(self._deg(50)), self._deg(max_distance_m * 1.05), quad_segs=4
            )
            if len(self._st_geoms)
            else shapely.Polygon()
        )
        shapely.prepare(self._near)
        shapely.prepare(self._st_union)
        self._inside_routes = [
            Route(i, d, RouteMethod.INSIDE) for i, d in zip(self._st_ids, self._st_district, strict=True)
        ]
        self._border_routes = [
            Route(i, d, RouteMethod.BORDER) for i, d in zip(self._st_ids, self._st_district, strict=True)
        ]
        self._ref_lat = ref_lat
        self._grid: _CellGrid | None = None
        if grid_cell_m and grid_cell_m > 0 and not self._reach.is_empty:
            self._grid = self._build_grid(grid_cell_m, grid_max_cells)

    def build_grid(self, cell_m: float = 200.0, max_cells: int = 2_000_000) -> dict[str, float]:
        """Build (or rebuild) the cell grid that :meth:`route` uses; returns its :attr:`grid_stats`.

        Safe to call from a worker thread while lookups run: until the grid is swapped in (one reference
        assignment) :meth:`route` takes the exact path — same answers, slower. The classification runs on
        a private copy of the areas, because GEOS builds a prepared geometry's indexes lazily and without
        a lock, so two threads must not share one. The service builds the grid this way, overlapping its
        Kafka group joins, so the ~1 s build does not lengthen start-up.
        """
        if cell_m <= 0 or self._reach.is_empty:
            return self.grid_stats
        t0 = time.perf_counter()

        def copied(areas: list[Area]) -> list[Area]:  # WKB keeps every double exactly
            geoms = shapely.from_wkb(shapely.to_wkb(np.array([a.geometry for a in areas], dtype=object)))
            return [Area(a.id, a.district, g) for a, g in zip(areas, geoms, strict=True)]

        twin = Router(
            copied(self.stations),
            copied(self.districts),
            max_distance_m=self.max_distance_m,
            district_distance_m=self.district_distance_m,
            ref_lat=self._ref_lat,
            grid_cell_m=None,
        )
        grid = twin._build_grid(cell_m, max_cells)  # indices, and Routes equal to ours
        grid.stats["build_s"] = round(time.perf_counter() - t0, 3)  # the copy included
        self._grid = grid
        return self.grid_stats

    @property
    def grid_stats(self) -> dict[str, float]:
        """Size and build figures of the cell grid (empty without one): for logs and the bench."""
        return dict(self._grid.stats) if self._grid else {}

    # -- the cell grid ----------------------------------------------------------------------------
    def _build_grid(self, cell_m: float, max_cells: int) -> _CellGrid:
        """Classify every cell of a regular grid once, so that most lookups need no GEOS call.

        Why: a single lookup through the STRtree costs a Point, a tree query and, for a miss, a second
        tree query and distances over every area near the coast — per-call overheads that put the p99
        over 100 µs. Here a cell that lies inside one station's area (``covers``) and touches no other
        holds that station's shared ``inside`` Route; a cell that touches no station and has nothing
        within reach holds the shared ``outside`` Route; only the rest (cells on a border or the coast)
        hold a :class:`_Cell` with their few candidates, on which the same predicates and distance calls
        as :meth:`route_exact` run. Cell boxes are widened by ~1 cm, so every classification holds for
        every point that can fall in the cell.
        """
        t0 = time.perf_counter()
        allg = np.concatenate(
            [self._st_geoms, self._d_geoms, np.array([self._reach, self._near], dtype=object)]
        )
        b = shapely.bounds(allg[~shapely.is_empty(allg)])
        dx, dy = cell_m / self._m_per_deg_lon, cell_m / _M_PER_DEG_LAT
        x0, y0 = float(b[:, 0].min()) - dx, float(b[:, 1].min()) - dy
        w, h = float(b[:, 2].max()) + dx - x0, float(b[:, 3].max()) + dy - y0
        scale = max(1.0, math.sqrt(math.ceil(w / dx) * math.ceil(h / dy) / max(max_cells, 1)))
        while math.ceil(w / (dx * scale)) * math.ceil(h / (dy * scale)) > max(max_cells, 1):
            scale *= 1.02  # a big map gets bigger cells, not unbounded memory
        dx, dy = dx * scale, dy * scale
        nx, ny = math.ceil(w / dx), math.ceil(h / dy)
        n = nx * ny
        cells: list[Route | _Cell] = [_OUTSIDE] * n
        tuples: dict[tuple[int, ...], tuple[int, ...]] = {}  # neighbouring cells share their lists
        n_inside = n_mixed = 0
        # in slices of cells: the boxes and pairs of one slice are freed before the next (peak memory)
        for lo in range(0, n, _BUILD_SLICE):
            k_inside, k_mixed = self._classify(
                cells, tuples, lo, min(n, lo + _BUILD_SLICE), nx, x0, y0, dx, dy
            )
            n_inside += k_inside
            n_mixed += k_mixed
        stats = {
            "cells": n,
            "cell_m": round(cell_m * scale, 1),
            "inside_cells": n_inside,
            "mixed_cells": n_mixed,
            "outside_cells": n - n_inside - n_mixed,
            "build_s": round(time.perf_counter() - t0, 3),
        }
        return _CellGrid(x0, y0, 1.0 / dx, 1.0 / dy, nx, ny, cells, stats)

    def _classify(
        self,
        cells: list[Route | _Cell],
        tuples: dict[tuple[int, ...], tuple[int, ...]],
        lo: int,
        hi: int,
        nx: int,
        x0: float,
        y0: float,
        dx: float,
        dy: float,
    ) -> tuple[int, int]:
        """Classify cells ``lo``..``hi`` (see :meth:`_build_grid`); returns how many are inside / have a record."""
        ids = np.arange(lo, hi)
        ix, iy = ids % nx, ids // nx
        bx0, bx1 = x0 + ix * dx - _BOX_EPS_DEG, x0 + (ix + 1) * dx + _BOX_EPS_DEG
        by0, by1 = y0 + iy * dy - _BOX_EPS_DEG, y0 + (iy + 1) * dy + _BOX_EPS_DEG
        boxes = shapely.box(bx0, by0, bx1, by1)
        n = hi - lo  # local index c ↔ cell lo + c
        # stations touching each cell
        inp, st = self._st_tree.query(boxes, predicate="intersects")
        order = np.lexsort((st, inp))
        inp, st = inp[order], st[order]
        counts = np.bincount(inp, minlength=n)
        starts = np.concatenate([[0], np.cumsum(counts)])
        one = np.flatnonzero(counts == 1)
        inside = np.zeros(n, dtype=bool)
        if len(one):
            only = st[starts[one]]
            ok = shapely.covers(self._st_geoms[only], boxes[one])
            inside[one] = ok
            for c, i in zip(one[ok].tolist(), only[ok].tolist(), strict=True):
                cells[lo + c] = self._inside_routes[i]
        # a point of these may miss every station, unless the stations together cover the cell
        sealed, mixed = self._sealed(np.flatnonzero(~inside), counts, boxes)
        reach = self._state(self._reach, boxes[mixed])
        near = self._state(self._near, boxes[mixed])
        live = mixed[reach != _OUT]
        boxes_m = shapely.box(
            bx0[live] * self._m_per_deg_lon,
            by0[live] * _M_PER_DEG_LAT,
            bx1[live] * self._m_per_deg_lon,
            by1[live] * _M_PER_DEG_LAT,
        )
        near_live = near[reach != _OUT]
        st_cand = self._candidates(
            self._st_tree_m, self._st_geoms_m, boxes_m, self.max_distance_m, near_live != _OUT
        )
        d_cand = self._candidates(
            self._d_tree_m, self._d_geoms_m, boxes_m, self.district_distance_m, np.ones(len(live), dtype=bool)
        )
        reach_of = dict(zip(mixed.tolist(), reach.tolist(), strict=True))
        near_of = dict(zip(mixed.tolist(), near.tolist(), strict=True))
        live_pos = {c: k for k, c in enumerate(live.tolist())}
        n_mixed = 0
        for c in sealed.tolist():
            contain = tuple(st[starts[c] : starts[c + 1]].tolist())
            cells[lo + c] = _Cell(tuples.setdefault(contain, contain), _EXACT, _OUT, (), ())
            n_mixed += 1
        for c in mixed.tolist():
            contain = tuple(st[starts[c] : starts[c + 1]].tolist())
            k = live_pos.get(c)
            ns, nd = (st_cand[k], d_cand[k]) if k is not None else ((), ())
            if not contain and not ns and not nd:
                continue  # misses everything, nothing near: outside
            cells[lo + c] = _Cell(
                tuples.setdefault(contain, contain),
                reach_of[c],
                near_of[c],
                tuples.setdefault(ns, ns),
                tuples.setdefault(nd, nd),
            )
            n_mixed += 1
        return int(inside.sum()), n_mixed

    def _sealed(
        self, mixed: npt.NDArray[np.intp], counts: npt.NDArray[np.intp], boxes: npt.NDArray[np.object_]
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """Of the cells inside no single station: those the stations together cover, and the rest."""
        several = counts[mixed] > 0
        if not several.any() or self._st_union.is_empty:
            return mixed[:0], mixed
        covered = np.zeros(len(mixed), dtype=bool)
        covered[several] = shapely.covers(self._st_union, boxes[mixed[several]])
        return mixed[covered], mixed[~covered]

    @staticmethod
    def _state(poly: BaseGeometry, boxes: npt.NDArray[np.object_]) -> npt.NDArray[np.int8]:
        """Each box against a prepared polygon: wholly in its interior, disjoint from it, or partly."""
        if poly.is_empty or not len(boxes):
            return np.zeros(len(boxes), dtype=np.int8)
        st = np.where(shapely.intersects(poly, boxes), _PART, _OUT).astype(np.int8)
        part = st == _PART
        st[part] = np.where(shapely.contains_properly(poly, boxes[part]), _IN, _PART)
        return st

    @staticmethod
    def _candidates(
        tree: STRtree,
        geoms_m: npt.NDArray[np.object_],
        boxes_m: npt.NDArray[np.object_],
        within_m: float,
        wanted: npt.NDArray[np.bool_],
    ) -> list[tuple[int, ...]]:
        """Per metric box: the areas that can be the nearest within ``within_m`` of one of its points.

        An area farther than ``within_m`` from the whole box is never a candidate; nor is one whose
        distance to the box exceeds another's farthest possible distance (centre distance + half the
        diagonal), since that other one is always nearer. Both tests keep :data:`_SLACK_M` of slack.
        """
        out: list[tuple[int, ...]] = [()] * len(boxes_m)
        idx = np.flatnonzero(wanted)
        if not len(idx) or not len(geoms_m):
            return out
        # envelopes first, then dwithin against the prepared (facet-indexed) areas: much cheaper than
        # the tree's own dwithin, which prepares each box instead
        r = within_m + _SLACK_M
        bnd = shapely.bounds(boxes_m[idx])
        inp, tr = tree.query(shapely.box(bnd[:, 0] - r, bnd[:, 1] - r, bnd[:, 2] + r, bnd[:, 3] + r))
        near = shapely.dwithin(geoms_m[tr], boxes_m[idx][inp], r)
        inp, tr = inp[near], tr[near]
        if not len(inp):
            return out
        multi = np.bincount(inp, minlength=len(idx))[inp] > 1  # a lone candidate needs no pruning
        if multi.any():
            sub = boxes_m[idx][inp[multi]]
            lb = shapely.distance(geoms_m[tr[multi]], sub)
            bnd = shapely.bounds(sub)
            half_diag = 0.5 * np.hypot(bnd[:, 2] - bnd[:, 0], bnd[:, 3] - bnd[:, 1])
            ub = shapely.distance(geoms_m[tr[multi]], shapely.centroid(sub)) + half_diag
            best_ub = np.full(len(idx), np.inf)
            np.minimum.at(best_ub, inp[multi], ub)
            keep = np.ones(len(inp), dtype=bool)
            keep[multi] = lb <= best_ub[inp[multi]] + _SLACK_M
            inp, tr = inp[keep], tr[keep]
        order = np.lexsort((tr, inp))
        inp, tr = inp[order], tr[order]
        bounds = np.searchsorted(inp, np.arange(len(idx) + 1))
        for k in np.flatnonzero(np.diff(bounds)).tolist():
            out[int(idx[k])] = tuple(tr[bounds[k] : bounds[k + 1]].tolist())
        return out

    # -- distances ------------------------------------------------------------------------------
    def _deg(self, metres: float) -> float:
        """A radius in degrees that is never smaller than ``metres`` in any direction."""
        return metres / self._m_per_deg_lon

    def _to_m(self, geoms: npt.NDArray[np.object_]) -> npt.NDArray[np.object_]:
        """Geometries on the local metric plane (x = lon·k_lon, y = lat·k_lat), for distance queries."""
        k = np.array([self._m_per_deg_lon, _M_PER_DEG_LAT])
        return shapely.transform(geoms, lambda c: c * k) if len(geoms) else geoms

    def _nearest(
        self, tree: STRtree, geoms_m: npt.NDArray[np.object_], x: float, y: float, within_m: float
    ) -> tuple[int, float] | None:
        p = shapely.Point(x * self._m_per_deg_lon, y * _M_PER_DEG_LAT)
        cand = tree.query(p, predicate="dwithin", distance=within_m)
        if not len(cand):
            return None
        cand = np.sort(cand)
        d = shapely.distance(geoms_m[cand], p)
        j = int(np.argmin(d))  # first minimum: the lowest id among equals
        return int(cand[j]), float(d[j])

    # -- single point ---------------------------------------------------------------------------
    def route(self, lon: float | None, lat: float | None) -> Route:
        """One point through the cell grid (see :class:`_CellGrid`); same answer as :meth:`route_exact`."""
        if lon is None or lat is None or not (math.isfinite(lon) and math.isfinite(lat)):
            return NO_LOCATION
        g = self._grid
        if g is None:
            return self.route_exact(lon, lat)
        fx = (lon - g.x0) * g.inv_dx
        fy = (lat - g.y0) * g.inv_dy
        if not (0.0 <= fx < g.nx and 0.0 <= fy < g.ny):
            return _OUTSIDE  # the grid spans every area's bounds and the reach: nothing out there
        cell = g.cells[int(fy) * g.nx + int(fx)]
        if cell.__class__ is Route:
            return cell
        return self._route_cell(cell, lon, lat)  # type: ignore[arg-type]

    def _route_cell(self, cell: _Cell, lon: float, lat: float) -> Route:
        """A mixed cell: point-in-polygon over its few stations, else the fallback over its few candidates."""
        geoms = self._st_geoms
        first = -1
        for i in cell.contain:  # sorted: the first hit is the lowest id
            if intersects_xy(geoms[i], lon, lat):
                if first >= 0:
                    return self._border_routes[first]
                first = i
        if first >= 0:
            return self._inside_routes[first]
        if cell.reach == _OUT or (cell.reach == _PART and not contains_xy(self._reach, lon, lat)):
            return _OUTSIDE
        if cell.reach == _EXACT:
            return self._fallback(lon, lat)
        p = None
        if cell.near_st and (cell.near == _IN or (cell.near == _PART and contains_xy(self._near, lon, lat))):
            p = shapely.points(np.array((lon * self._m_per_deg_lon, lat * _M_PER_DEG_LAT)))
            j, d = _closest(self._st_geoms_m, cell.near_st, p, self.max_distance_m)
            if j >= 0:
                return Route(self._st_ids[j], self._st_district[j], RouteMethod.NEAREST, d)
        if cell.near_d:
            if p is None:  # (shapely.points on an array: half the cost of shapely.Point, same point)
                p = shapely.points(np.array((lon * self._m_per_deg_lon, lat * _M_PER_DEG_LAT)))
            j, d = _closest(self._d_geoms_m, cell.near_d, p, self.district_distance_m)
            if j >= 0:
                return Route(None, self._d_ids[j], RouteMethod.DISTRICT, d)
        return _OUTSIDE

    def route_exact(self, lon: float | None, lat: float | None) -> Route:
        """The reference path: STRtree queries over every area for each point (no grid).

        Kept for routers without a grid, as the oracle the grid is tested against, and as the bench's
        baseline.
        """
        if lon is None or lat is None or not (math.isfinite(lon) and math.isfinite(lat)):
            return NO_LOCATION
        hits = self._st_tree.query(shapely.Point(lon, lat), predicate="intersects")
        if len(hits) == 1:
            i = int(hits[0])
            return Route(self._st_ids[i], self._st_district[i], RouteMethod.INSIDE)
        if len(hits) > 1:
            i = int(min(hits))  # stations are sorted by id: the lowest index is the lowest id
            return Route(self._st_ids[i], self._st_district[i], RouteMethod.BORDER)
        return self._fallback(lon, lat)

    def _fallback(self, lon: float, lat: float) -> Route:
        if self._reach.is_empty or not shapely.contains_xy(self._reach, lon, lat):
            return _OUTSIDE
        hit = None
        if not self._near.is_empty and shapely.contains_xy(self._near, lon, lat):
            hit = self._nearest(self._st_tree_m, self._st_geoms_m, lon, lat, self.max_distance_m)
        if hit is not None:
            i, d = hit
            return Route(self._st_ids[i], self._st_district[i], RouteMethod.NEAREST, d)
        hit = self._nearest(self._d_tree_m, self._d_geoms_m, lon, lat, self.district_distance_m)
        if hit is not None:
            i, d = hit
            return Route(None, self._d_ids[i], RouteMethod.DISTRICT, d)
        return _OUTSIDE

    # -- batches --------------------------------------------------------------------------------
    def route_ids(
        self, lon: npt.ArrayLike, lat: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int8]]:
        """Vectorized core: station index per point (-1 when none) and a code (0 inside, 1 border, 2 miss).

        Misses are left to :meth:`route_many`'s per-point fallback: they are rare (off the map) and the
        fallback needs distances anyway.
        """
        xs = np.asarray(lon, dtype=np.float64)
        ys = np.asarray(lat, dtype=np.float64)
        pts = shapely.points(xs, ys)
        inp, tree = self._st_tree.query(pts, predicate="intersects")
        n = len(xs)
        counts = np.bincount(inp, minlength=n)
        best = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(best, inp, tree)
        best[counts == 0] = -1
        code = np.where(counts == 0, 2, np.where(counts == 1, 0, 1)).astype(np.int8)
        return best, code

    def route_many(
        self, lon: Sequence[float] | npt.ArrayLike, lat: Sequence[float] | npt.ArrayLike
    ) -> list[Route]:
        xs = np.asarray(lon, dtype=np.float64)
        ys = np.asarray(lat, dtype=np.float64)
        best, code = self.route_ids(xs, ys)
        out: list[Route] = []
        for i in range(len(xs)):
            c = code[i]
            if c == 2:
                out.append(self.route(float(xs[i]), float(ys[i])))  # a miss: the grid's fallback
            else:
                j = best[i]
                out.append(
                    Route(
                        self._st_ids[j],
                        self._st_district[j],
                        RouteMethod.INSIDE if c == 0 else RouteMethod.BORDER,
                    )
                )
        return out
