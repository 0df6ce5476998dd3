"""GCJ-02 ↔ WGS-84, written once for two backends.

Chinese web maps (amap, Tencent) and many GPS operators' platforms publish GCJ-02, an obfuscated
offset of WGS-84 that moves points by a few hundred metres; the contract carries WGS-84 only. The
forward transform is the published GCJ-02 formula (Krasovsky 1940 ellipsoid, the well-known
trigonometric polynomial). It has no closed-form inverse, so :func:`gcj02_to_wgs84` inverts it by
fixed-point iteration ``w ← w − (forward(w) − g)``; the offset varies slowly, so a few rounds reach
millimetre agreement. Outside mainland China's bounding box the offset is not applied (the
formula's own convention).

Argument order is (lon, lat) everywhere, as in GeoJSON and shapely. Floats take a pure-Python path
(a JT/T 809 link converts positions one by one, where numpy's per-call overhead would dominate);
arrays take the numpy path (jurisdiction outlines, converted once at import). Both evaluate the same
:func:`_offset`, so they cannot drift apart.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np

__all__ = ["gcj02_to_wgs84", "out_of_china", "wgs84_to_gcj02"]

_A = 6378245.0  # Krasovsky 1940 semi-major axis, metres
_EE = 0.00669342162296594323  # its first eccentricity squared
_PI = math.pi
_MATH = SimpleNamespace(sin=math.sin, cos=math.cos, sqrt=math.sqrt, abs=abs)
_NUMPY = SimpleNamespace(sin=np.sin, cos=np.cos, sqrt=np.sqrt, abs=np.abs)


def _offset(lon: Any, lat: Any, m: SimpleNamespace) -> tuple[Any, Any]:
    """The GCJ-02 offset (dlon, dlat) in degrees at WGS-84 (lon, lat), with the math of backend ``m``."""
    x = lon - 105.0
    y = lat - 35.0
    common = (20.0 * m.sin(6.0 * x * _PI) + 20.0 * m.sin(2.0 * x * _PI)) * 2.0 / 3.0
    t_lat = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * m.sqrt(m.abs(x))
        + common
        + (20.0 * m.sin(y * _PI) + 40.0 * m.sin(y / 3.0 * _PI)) * 2.0 / 3.0
        + (160.0 * m.sin(y / 12.0 * _PI) + 320.0 * m.sin(y * _PI / 30.0)) * 2.0 / 3.0
    )
    t_lon = (
        300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * m.sqrt(m.abs(x))
        + common
        + (20.0 * m.sin(x * _PI) + 40.0 * m.sin(x / 3.0 * _PI)) * 2.0 / 3.0
        + (150.0 * m.sin(x / 12.0 * _PI) + 300.0 * m.sin(x / 30.0 * _PI)) * 2.0 / 3.0
    )
    rad = lat / 180.0 * _PI
    magic = 1.0 - _EE * m.sin(rad) ** 2
    sqrt_magic = m.sqrt(magic)
    dlat = (t_lat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * _PI)
    dlon = (t_lon * 180.0) / (_A / sqrt_magic * m.cos(rad) * _PI)
    return dlon, dlat


def out_of_china(lon: Any, lat: Any) -> Any:
    """True where the point lies outside the box the GCJ-02 offset applies to."""
    return (lon < 72.004) | (lon > 137.8347) | (lat < 0.8293) | (lat > 55.8271)


def _is_scalar(lon: Any, lat: Any) -> bool:
    return np.ndim(lon) == 0 and np.ndim(lat) == 0


def _delta(lon: Any, lat: Any) -> tuple[Any, Any]:
    if isinstance(lon, np.ndarray):
        dlon, dlat = _offset(lon, lat, _NUMPY)
        outside = out_of_china(lon, lat)
        return np.where(outside, 0.0, dlon), np.where(outside, 0.0, dlat)
    if out_of_china(lon, lat):
        return 0.0, 0.0
    return _offset(lon, lat, _MATH)


def wgs84_to_gcj02(lon: Any, lat: Any) -> tuple[Any, Any]:
    """WGS-84 → GCJ-02. Scalars in, floats out; arrays in, arrays out."""
    lo: Any
    la: Any
    if _is_scalar(lon, lat):
        lo, la = float(lon), float(lat)
    else:
        lo, la = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    dlon, dlat = _delta(lo, la)
    return lo + dlon, la + dlat


def gcj02_to_wgs84(lon: Any, lat: Any, *, tol_deg: float = 1e-9, max_iter: int = 30) -> tuple[Any, Any]:
    """GCJ-02 → WGS-84 by fixed-point iteration of the forward transform (see the module docstring)."""
    if _is_scalar(lon, lat):
        glon, glat = float(lon), float(lat)
        wlon, wlat = glon, glat
        for _ in range(max_iter):
            dlon, dlat = _delta(wlon, wlat)
            elon, elat = wlon + dlon - glon, wlat + dlat - glat
            wlon, wlat = wlon - elon, wlat - elat
            if abs(elon) < tol_deg and abs(elat) < tol_deg:
                break
        return wlon, wlat
    garr = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    alon, alat = garr[0].copy(), garr[1].copy()
    for _ in range(max_iter):
        dlon, dlat = _delta(alon, alat)
        elon, elat = alon + dlon - garr[0], alat + dlat - garr[1]
        alon, alat = alon - elon, alat - elat
        if (
            float(np.max(np.abs(elon), initial=0.0)) < tol_deg
            and float(np.max(np.abs(elat), initial=0.0)) < tol_deg
        ):
            break
    return alon, alat
