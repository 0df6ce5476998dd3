"""Validating a unit tree before it is written (pure): the findings an operator must fix, in plain words.

Errors block the import; warnings are printed and the import proceeds (routing covers them: a point in
a gap goes to the nearest station within ``ALARMHUB_ROUTE_MAX_DISTANCE_M``, else to its district).

=================== ======= ==================================================================
code                level   meaning
=================== ======= ==================================================================
unreadable          error   a feature/row of the file could not be read (no id, bad level, bad WKT)
duplicate_id        error   two units share an id
orphan              error   the parent is missing, or is not the tier directly above
no_root             error   no city (tier 1) unit, or more than one
no_area             error   a district, station or site without an area
invalid_area        warning a self-intersecting or otherwise invalid polygon (repaired, please fix)
overlap             error   two stations (or two sites of one station) share ground
outside_parent      error   a station reaches out of its district (a site out of its station)
gap                 warning part of a district that none of its stations covers
uncovered           warning a district with no station at all, or city ground outside every district
=================== ======= ==================================================================

Areas are measured on a Lambert azimuthal equal-area plane centred on the data, so a tolerance in
square metres means the same thing everywhere in the city. Pieces smaller than the tolerance (digitising
slivers along shared borders) are not reported.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import Transformer
from shapely import STRtree
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from .sources import UnitIn

__all__ = ["DEFAULT_TOLERANCE_M2", "Finding", "Report", "validate"]

DEFAULT_TOLERANCE_M2 = 1_000.0
TIER_NAMES = {1: "city", 2: "district", 3: "station", 4: "site"}


@dataclass(frozen=True)
class Finding:
    level: str  # error | warning
    code: str
    units: tuple[str, ...]
    message: str
    area_m2: float = 0.0
    where: tuple[float, float] | None = None  # a WGS-84 point (lon, lat) inside the piece
    geometry: BaseGeometry | None = field(default=None, compare=False, repr=False)

    def line(self) -> str:
        at = f" near {self.where[1]:.5f}N {self.where[0]:.5f}E" if self.where else ""
        size = (
            f" ({self.area_m2 / 1e6:.3f} km²)"
            if self.area_m2 >= 1e4
            else (f" ({self.area_m2:,.0f} m²)" if self.area_m2 else "")
        )
        return f"{self.level.upper():7} {self.code:15} {self.message}{size}{at}"


@dataclass
class Report:
    units: list[UnitIn]
    findings: list[Finding]
    counts: dict[str, int]

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    def text(self) -> str:
        c = self.counts
        head = (
            f"{c.get('city', 0)} city, {c.get('district', 0)} districts, {c.get('station', 0)} stations, "
            f"{c.get('site', 0)} grassroots sites; "
            f"{len(self.errors)} errors, {len(self.warnings)} warnings"
        )
        lines = [head, *(f.line() for f in self.findings)]
        if not self.findings:
            lines.append("no problems found")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "counts": self.counts,
            "findings": [
                {
                    "level": f.level,
                    "code": f.code,
                    "units": list(f.units),
                    "message": f.message,
                    "area_m2": round(f.area_m2, 1),
                    "where": list(f.where) if f.where else None,
                }
                for f in self.findings
            ],
        }


class _Plane:
    """WGS-84 ↔ a local equal-area plane in metres."""

    def __init__(self, lon: float, lat: float) -> None:
        proj = f"+proj=laea +lat_0={lat:.6f} +lon_0={lon:.6f} +ellps=WGS84 +units=m"
        self._fwd = Transformer.from_crs("EPSG:4326", proj, always_xy=True)
        self._inv = Transformer.from_crs(proj, "EPSG:4326", always_xy=True)

    def _apply(self, tr: Transformer, geom: BaseGeometry) -> BaseGeometry:
        def f(c: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
            x, y = tr.transform(c[:, 0], c[:, 1])
            return np.column_stack([x, y])

        return shapely.transform(geom, f)

    def to_m(self, geom: BaseGeometry) -> BaseGeometry:
        return self._apply(self._fwd, geom)

    def to_deg(self, geom: BaseGeometry) -> BaseGeometry:
        return self._apply(self._inv, geom)


def _pieces(geom: BaseGeometry, tol: float) -> list[BaseGeometry]:
    """The polygonal parts of ``geom`` larger than ``tol`` m² (lines and points of a touch dropped)."""
    out = []
    for g in shapely.get_parts(geom):
        if g.geom_type in ("Polygon", "MultiPolygon") and g.area >= tol:
            out.append(g)
    return out


def validate(
    units: list[UnitIn],
    unreadable: list[tuple[int, str]] | None = None,
    tolerance_m2: float = DEFAULT_TOLERANCE_M2,
) -> Report:
    findings: list[Finding] = [Finding("error", "unreadable", (), msg) for _, msg in (unreadable or [])]
    counts: dict[str, int] = defaultdict(int)
    by_id: dict[str, UnitIn] = {}
    for u in units:
        counts[TIER_NAMES[u.tier]] += 1
        if u.id in by_id:
            findings.append(
                Finding("error", "duplicate_id", (u.id,), f"unit id {u.id} appears twice (row {u.row})")
            )
            continue
        by_id[u.id] = u
    roots = [u for u in by_id.values() if u.tier == 1]
    if len(roots) != 1:
        findings.append(
            Finding(
                "error",
                "no_root",
                tuple(r.id for r in roots),
                f"{len(roots)} city units (exactly one needed)",
            )
        )
    for u in by_id.values():
        if u.tier == 1:
            if u.parent_id:
                findings.append(
                    Finding("error", "orphan", (u.id,), f"city {u.id} has a parent ({u.parent_id})")
                )
            continue
        p = by_id.get(u.parent_id or "")
        what = f"{TIER_NAMES[u.tier]} {u.id} ({u.name})"
        if p is None:
            where = u.geometry.representative_point() if u.geometry is not None else None
            findings.append(
                Finding(
                    "error",
                    "orphan",
                    (u.id,),
                    f"{what}: parent {u.parent_id or '(none)'} is not in the file",
                    where=(round(where.x, 6), round(where.y, 6)) if where is not None else None,
                    geometry=u.geometry,
                )
            )
        elif p.tier != u.tier - 1:
            findings.append(
                Finding(
                    "error",
                    "orphan",
                    (u.id,),
                    f"{what}: parent {p.id} is a {TIER_NAMES[p.tier]}, not a {TIER_NAMES[u.tier - 1]}",
                )
            )
        if u.geometry is None:
            findings.append(Finding("error", "no_area", (u.id,), f"{what} has no area"))
    with_area = [u for u in by_id.values() if u.geometry is not None]
    if not with_area:
        return Report(units, findings, dict(counts))
    for u in with_area:
        assert u.geometry is not None
        if not u.geometry.is_valid:
            reason = shapely.is_valid_reason(u.geometry)
            u.geometry = shapely.make_valid(u.geometry)
            findings.append(
                Finding("warning", "invalid_area", (u.id,), f"{u.id}: invalid polygon ({reason}), repaired")
            )
    centre = unary_union([u.geometry for u in with_area]).centroid
    plane = _Plane(centre.x, centre.y)
    area_m = {u.id: plane.to_m(u.geometry) for u in with_area if u.geometry is not None}
    findings += _overlaps(by_id, area_m, plane, tolerance_m2)
    findings += _containment(by_id, area_m, plane, tolerance_m2)
    findings += _coverage(by_id, area_m, plane, tolerance_m2)
    return Report(units, findings, dict(counts))


def _at(plane: _Plane, piece_m: BaseGeometry) -> tuple[BaseGeometry, tuple[float, float]]:
    deg = plane.to_deg(piece_m)
    p = deg.representative_point()
    return deg, (round(p.x, 6), round(p.y, 6))


def _overlaps(
    by_id: dict[str, UnitIn], area_m: dict[str, BaseGeometry], plane: _Plane, tol: float
) -> list[Finding]:
    """Stations against stations (city-wide: a station may overlap one across a district line) and sites
    against the other sites of their station."""
    out: list[Finding] = []
    for tier in (3, 4):
        ids = sorted(i for i, u in by_id.items() if u.tier == tier and i in area_m)
        geoms = [area_m[i] for i in ids]
        if len(geoms) < 2:
            continue
        tree = STRtree(geoms)
        left, right = tree.query(geoms, predicate="intersects")
        for a, b in zip(left.tolist(), right.tolist(), strict=True):
            if a >= b:
                continue
            ua, ub = by_id[ids[a]], by_id[ids[b]]
            if tier == 4 and ua.parent_id != ub.parent_id:
                continue
            for piece in _pieces(geoms[a].intersection(geoms[b]), tol):
                deg, where = _at(plane, piece)
                out.append(
                    Finding(
                        "error",
                        "overlap",
                        (ua.id, ub.id),
                        f"{TIER_NAMES[tier]}s {ua.id} ({ua.name}) and {ub.id} ({ub.name}) overlap",
                        piece.area,
                        where,
                        deg,
                    )
                )
    return out


def _containment(
    by_id: dict[str, UnitIn], area_m: dict[str, BaseGeometry], plane: _Plane, tol: float
) -> list[Finding]:
    out: list[Finding] = []
    for uid in sorted(area_m):
        u = by_id[uid]
        if u.tier not in (3, 4) or u.parent_id not in area_m:
            continue
        parent = by_id[u.parent_id]
        for piece in _pieces(area_m[uid].difference(area_m[parent.id]), tol):
            deg, where = _at(plane, piece)
            out.append(
                Finding(
                    "error",
                    "outside_parent",
                    (uid, parent.id),
                    f"{TIER_NAMES[u.tier]} {uid} ({u.name}) reaches outside its "
                    f"{TIER_NAMES[parent.tier]} {parent.id} ({parent.name})",
                    piece.area,
                    where,
                    deg,
                )
            )
    return out


def _coverage(
    by_id: dict[str, UnitIn], area_m: dict[str, BaseGeometry], plane: _Plane, tol: float
) -> list[Finding]:
    out: list[Finding] = []
    children: dict[str, list[str]] = defaultdict(list)
    for u in by_id.values():
        if u.parent_id and u.id in area_m:
            children[u.parent_id].append(u.id)
    districts = sorted(i for i, u in by_id.items() if u.tier == 2 and i in area_m)
    for d in districts:
        stations = [s for s in children.get(d, []) if by_id[s].tier == 3]
        if not stations:
            out.append(
                Finding(
                    "warning",
                    "uncovered",
                    (d,),
                    f"district {d} ({by_id[d].name}) has no station: every alarm in it goes to the district",
                    area_m[d].area,
                    _at(plane, area_m[d])[1],
                    by_id[d].geometry,
                )
            )
            continue
        rest = area_m[d].difference(unary_union([area_m[s] for s in stations]))
        for piece in _pieces(rest, tol):
            deg, where = _at(plane, piece)
            out.append(
                Finding(
                    "warning",
                    "gap",
                    (d,),
                    f"part of district {d} ({by_id[d].name}) that none of its stations covers",
                    piece.area,
                    where,
                    deg,
                )
            )
    cities = [i for i, u in by_id.items() if u.tier == 1 and i in area_m]
    for c in cities:
        if not districts:
            continue
        rest = area_m[c].difference(unary_union([area_m[d] for d in districts]))
        for piece in _pieces(rest, tol):
            deg, where = _at(plane, piece)
            out.append(
                Finding(
                    "warning", "uncovered", (c,), "city ground outside every district", piece.area, where, deg
                )
            )
    return out
