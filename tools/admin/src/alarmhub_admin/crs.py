"""Coordinate systems an operator's unit data arrives in, converted to WGS-84 (how alarmhub stores areas).

- ``wgs84`` (EPSG:4326): GPS, most GIS exports; kept as is.
- ``gcj02``: Chinese web maps (amap, Tencent); the offset is removed with ``alarmhub_geo`` (no EPSG code).
- ``EPSG:4490`` (CGCS2000 geographic): the national datum; differs from WGS-84 by centimetres, so it is
  taken as WGS-84 (pyproj's own CGCS2000 → WGS-84 operation is the same null transform).
- ``EPSG:4491``–``EPSG:4554``: CGCS2000 Gauss–Krüger zones (6° and 3°, with or without the zone number in
  the false easting), the projected grids of Chinese police and land GIS; unprojected by pyproj.
- anything else pyproj understands (``EPSG:nnnn``, a WKT string, a shapefile's ``.prj``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely
from alarmhub_geo import gcj02_to_wgs84
from pyproj import CRS, Transformer
from shapely.geometry.base import BaseGeometry

__all__ = ["SourceCrs", "parse_crs"]

_WGS84_NAMES = {"wgs84", "wgs-84", "epsg:4326", "4326", "crs84", "urn:ogc:def:crs:ogc:1.3:crs84"}
_GCJ_NAMES = {"gcj02", "gcj-02", "gcj"}
GK_ZONES = range(4491, 4555)


@dataclass(frozen=True)
class SourceCrs:
    """A source coordinate system and how to bring its coordinates to WGS-84 (lon, lat)."""

    name: str
    kind: str  # wgs84 | gcj02 | pyproj
    transformer: Transformer | None = None

    def to_wgs84(self, geom: BaseGeometry) -> BaseGeometry:
        if self.kind == "wgs84":
            return geom
        if self.kind == "gcj02":

            def _gcj(c: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
                lon, lat = gcj02_to_wgs84(c[:, 0], c[:, 1])
                return np.column_stack([lon, lat])

            return shapely.transform(geom, _gcj)
        assert self.transformer is not None
        tr = self.transformer

        def _proj(c: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
            lon, lat = tr.transform(c[:, 0], c[:, 1])
            return np.column_stack([lon, lat])

        return shapely.transform(geom, _proj)


def parse_crs(spec: str) -> SourceCrs:
    """``wgs84``, ``gcj02``, ``EPSG:4490``, ``EPSG:4526``, ``4526`` or a WKT/PROJ string."""
    s = spec.strip()
    low = s.lower()
    if low in _WGS84_NAMES:
        return SourceCrs("EPSG:4326", "wgs84")
    if low in _GCJ_NAMES:
        return SourceCrs("GCJ-02", "gcj02")
    if s.isdigit():
        s = f"EPSG:{s}"
    try:
        crs = CRS.from_user_input(s)
    except Exception as exc:  # pyproj.exceptions.CRSError and friends
        raise ValueError(f"unknown coordinate system {spec!r}: {exc}") from None
    epsg = crs.to_epsg()
    if epsg == 4326:
        return SourceCrs("EPSG:4326", "wgs84")
    if epsg == 4490:
        return SourceCrs("EPSG:4490", "wgs84")  # CGCS2000 ≈ WGS-84 (centimetres)
    tr = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    return SourceCrs(f"EPSG:{epsg}" if epsg else crs.name, "pyproj", tr)
