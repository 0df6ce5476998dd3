"""Reading a unit tree with areas from GeoJSON, an ESRI Shapefile or CSV with WKT (pure, no database).

Every format carries the same attributes per unit:

========== ============================================================================
id         the unit's stable id (kept across re-imports; history is keyed on it)
name       its name (中文名)
name_en    optional English name
level      ``city`` | ``district`` | ``station`` | ``site`` (or ``tier`` 1–4)
parent     the id of the unit above (empty for the city)
kind       optional, default ``police``
========== ============================================================================

plus the area: the feature's geometry (GeoJSON, Shapefile) or a ``wkt`` column (CSV). Shapefile
attribute names are cut to 10 characters by the format, so ``name_en`` and ``parent`` fit as they are.
The coordinate system comes from ``--crs``, else a GeoJSON ``crs`` member or a Shapefile's ``.prj``,
else WGS-84.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import shapely
from shapely import wkt as shapely_wkt
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from .crs import SourceCrs, parse_crs

__all__ = ["LEVELS", "SourceError", "UnitIn", "read_units"]

LEVELS = {"city": 1, "district": 2, "station": 3, "site": 4}
_LEVEL_ALIASES = {
    "市": 1,
    "市局": 1,
    "分局": 2,
    "district_bureau": 2,
    "派出所": 3,
    "police_station": 3,
    "警务室": 4,
    "社区警务室": 4,
    "grassroots": 4,
    "post": 4,
}


class SourceError(ValueError):
    """The file cannot be read at all (as opposed to a unit that fails validation)."""


@dataclass
class UnitIn:
    """One unit as read from the operator's file, its area already in WGS-84."""

    id: str
    name: str
    tier: int
    parent_id: str | None
    name_en: str | None = None
    kind: str = "police"
    geometry: BaseGeometry | None = None
    row: int = 0  # feature / record / line number in the source, for the report
    properties: dict[str, Any] = field(default_factory=dict)


def _tier(attrs: dict[str, Any]) -> int:
    raw = attrs.get("level") if attrs.get("level") not in (None, "") else attrs.get("tier")
    if raw in (None, ""):
        raise ValueError("no level (city/district/station/site) or tier (1-4)")
    text = str(raw).strip().lower()
    if text in LEVELS:
        return LEVELS[text]
    if text in _LEVEL_ALIASES:
        return _LEVEL_ALIASES[text]
    if text.isdigit() and 1 <= int(text) <= 4:
        return int(text)
    raise ValueError(f"unknown level {raw!r}")


def _unit(attrs: dict[str, Any], geom: BaseGeometry | None, row: int, crs: SourceCrs) -> UnitIn:
    a = {str(k).strip().lower(): (v.strip() if isinstance(v, str) else v) for k, v in attrs.items()}
    uid = str(a.get("id") or "").strip()
    if not uid:
        raise ValueError("no id")
    name = str(a.get("name") or a.get("name_zh") or "").strip()
    if not name:
        raise ValueError("no name")
    parent = a.get("parent") or a.get("parent_id")
    if geom is not None and geom.is_empty:
        geom = None
    extra = {
        k: v
        for k, v in a.items()
        if k
        not in {"id", "name", "name_zh", "name_en", "level", "tier", "parent", "parent_id", "kind", "wkt"}
        and v not in (None, "")
    }
    return UnitIn(
        id=uid,
        name=name,
        tier=_tier(a),
        parent_id=str(parent).strip() if parent not in (None, "") else None,
        name_en=str(a["name_en"]) if a.get("name_en") not in (None, "") else None,
        kind=str(a.get("kind") or "police"),
        geometry=crs.to_wgs84(geom) if geom is not None else None,
        row=row,
        properties=extra,
    )


def _geojson(path: Path, crs: SourceCrs | None) -> tuple[list[UnitIn], list[tuple[int, str]]]:
    try:
        doc = json.loads(path.read_text("utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise SourceError(f"{path}: not readable as GeoJSON: {exc}") from None
    if crs is None:
        named = ((doc.get("crs") or {}).get("properties") or {}).get("name")
        crs = parse_crs(named) if named else parse_crs("wgs84")
    feats = doc.get("features") if doc.get("type") == "FeatureCollection" else None
    if not isinstance(feats, list):
        raise SourceError(f"{path}: a GeoJSON FeatureCollection is expected")
    units, errors = [], []
    for i, f in enumerate(feats, start=1):
        try:
            geom = shape(f["geometry"]) if f.get("geometry") else None
            units.append(_unit(f.get("properties") or {}, geom, i, crs))
        except (ValueError, KeyError, TypeError, AttributeError, shapely.errors.GEOSException) as exc:
            errors.append((i, f"feature {i}: {exc}"))
    return units, errors


def _shapefile(path: Path, crs: SourceCrs | None) -> tuple[list[UnitIn], list[tuple[int, str]]]:
    import shapefile  # pyshp

    if crs is None:
        prj = path.with_suffix(".prj")
        crs = parse_crs(prj.read_text("utf-8", errors="replace")) if prj.exists() else parse_crs("wgs84")
    cpg = path.with_suffix(".cpg")
    encoding = cpg.read_text().strip() if cpg.exists() else "utf-8"
    try:
        reader = shapefile.Reader(str(path), encoding=encoding)
    except Exception as exc:
        raise SourceError(f"{path}: not readable as a Shapefile: {exc}") from None
    units, errors = [], []
    with reader:
        for i, rec in enumerate(reader.iterShapeRecords(), start=1):
            try:
                gi = rec.shape.__geo_interface__
                geom = shape(gi) if gi.get("coordinates") else None
                units.append(_unit(rec.record.as_dict(), geom, i, crs))
            except (ValueError, KeyError, TypeError, AttributeError, shapely.errors.GEOSException) as exc:
                errors.append((i, f"record {i}: {exc}"))
    return units, errors


def _csv(path: Path, crs: SourceCrs | None) -> tuple[list[UnitIn], list[tuple[int, str]]]:
    crs = crs or parse_crs("wgs84")
    units, errors = [], []
    try:
        fh = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise SourceError(f"{path}: {exc}") from None
    with fh:
        reader = csv.DictReader(fh)
        for line, row in enumerate(reader, start=2):
            try:
                text = (row.get("wkt") or row.get("geometry") or "").strip()
                geom = shapely_wkt.loads(text) if text else None
                units.append(_unit(dict(row), geom, line, crs))
            except (ValueError, KeyError, TypeError, shapely.errors.GEOSException) as exc:
                errors.append((line, f"line {line}: {exc}"))
    return units, errors


def read_units(path: Path, crs: str | None = None) -> tuple[list[UnitIn], list[tuple[int, str]]]:
    """The units of ``path`` (format by extension) and the rows that could not be read."""
    src = parse_crs(crs) if crs else None
    ext = path.suffix.lower()
    if ext in (".geojson", ".json"):
        return _geojson(path, src)
    if ext == ".shp":
        return _shapefile(path, src)
    if ext in (".csv", ".txt"):
        return _csv(path, src)
    raise SourceError(
        f"{path}: unknown format {ext!r} (GeoJSON .geojson/.json, Shapefile .shp, CSV+WKT .csv)"
    )
