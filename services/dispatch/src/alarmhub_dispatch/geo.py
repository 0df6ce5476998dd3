"""GCJ-02 ↔ WGS-84 conversion (pure, numpy-vectorized).

Chinese web maps (amap, Tencent) publish coordinates in GCJ-02, an obfuscated offset of WGS-84 that
moves points by a few hundred metres; GPS terminals report WGS-84. Jurisdictions are stored and routed
in WGS-84, so GCJ-02 input is converted once, at import.

The forward transform is the published GCJ-02 formula (Krasovsky 1940 ellipsoid, the well-known
trigonometric polynomial). It has no closed-form inverse, so :func:`gcj02_to_wgs84` inverts it by
fixed-point iteration: ``w ← w − (forward(w) − g)``; the offset varies slowly, so a few rounds reach
millimetre agreement, far better than the ~1–2 m of the one-step approximation.

Outside mainland China's bounding box the offset is not applied (the formula's own convention).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

__all__ = ["gcj02_to_wgs84", "geometry_gcj02_to_wgs84", "out_of_china", "wgs84_to_gcj02"]

_A = 6378245.0                     # Krasovsky 1940 semi-major axis, metres
_EE = 0.00669342162296594323       # its first eccentricity squared
_PI = np.pi

Floats = npt.NDArray[np.float64]


def out_of_china(lon: Any, lat: Any) -> Any:
    """True where the point lies outside the box the GCJ-02 offset applies to."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    return (lon < 72.004) | (lon > 137.8347) | (lat < 0.8293) | (lat > 55.8271)


def _delta(lon: Floats, lat: Floats) -> tuple[Floats, Floats]:
    """The GCJ-02 offset (dlon, dlat) in degrees at WGS-84 position (lon, lat)."""
    x = lon - 105.0
    y = lat - 35.0
    common = (20.0 * np.sin(6.0 * x * _PI) + 20.0 * np.sin(2.0 * x * _PI)) * 2.0 / 3.0
    t_lat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x)) + common
             + (20.0 * np.sin(y * _PI) + 40.0 * np.sin(y / 3.0 * _PI)) * 2.0 / 3.0
             + (160.0 * np.sin(y / 12.0 * _PI) + 320.0 * np.sin(y * _PI / 30.0)) * 2.0 / 3.0)
    t_lon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x)) + common
             + (20.0 * np.sin(x * _PI) + 40.0 * np.sin(x / 3.0 * _PI)) * 2.0 / 3.0
             + (150.0 * np.sin(x / 12.0 * _PI) + 300.0 * np.sin(x / 30.0 * _PI)) * 2.0 / 3.0)
    rad = lat / 180.0 * _PI
    magic = 1.0 - _EE * np.sin(rad) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (t_lat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * _PI)
    dlon = (t_lon * 180.0) / (_A / sqrt_magic * np.cos(rad) * _PI)
    outside = out_of_china(lon, lat)
    return np.where(outside, 0.0, dlon), np.where(outside, 0.0, dlat)


def wgs84_to_gcj02(lon: Any, lat: Any) -> tuple[Any, Any]:
    """WGS-84 → GCJ-02. Scalars in, floats out; arrays in, arrays out."""
    lo = np.asarray(lon, dtype=np.float64)
    la = np.asarray(lat, dtype=np.float64)
    dlon, dlat = _delta(lo, la)
    return _shape_like(lon, lo + dlon), _shape_like(lat, la + dlat)


def gcj02_to_wgs84(lon: Any, lat: Any, *, tol_deg: float = 1e-9, max_iter: int = 30) -> tuple[Any, Any]:
    """GCJ-02 → WGS-84 by fixed-point iteration of the forward transform (see module docstring)."""
    glon = np.asarray(lon, dtype=np.float64)
    glat = np.asarray(lat, dtype=np.float64)
    wlon, wlat = glon.copy(), glat.copy()
    for _ in range(max_iter):
        dlon, dlat = _delta(wlon, wlat)
        elon = wlon + dlon - glon
        elat = wlat + dlat - glat
        wlon = wlon - elon
        wlat = wlat - elat
        if float(np.max(np.abs(elon), initial=0.0)) < tol_deg and float(np.max(np.abs(elat), initial=0.0)) < tol_deg:
            break
    return _shape_like(lon, wlon), _shape_like(lat, wlat)


def geometry_gcj02_to_wgs84(geom: BaseGeometry) -> BaseGeometry:
    """Convert every vertex of a shapely geometry from GCJ-02 to WGS-84 (done once, at import)."""
    def _conv(coords: Floats) -> Floats:
        lon, lat = gcj02_to_wgs84(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])
    return shapely.transform(geom, _conv)


def _shape_like(template: Any, value: Floats) -> Any:
    return float(value) if np.ndim(template) == 0 else value
