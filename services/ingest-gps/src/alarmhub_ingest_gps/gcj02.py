"""GCJ-02 ("Mars coordinates") ↔ WGS-84.

Chinese platforms may forward positions already offset to GCJ-02 (JT/T 809 marks them with the
position's encrypt flag); the contract carries WGS-84 only. The forward transform is the publicly
documented polynomial approximation; the inverse has no closed form, so it is solved by fixed-point
iteration, which converges to well under a centimetre in a handful of steps inside China.
Outside mainland China the offset is not applied, as the transform itself defines.
"""

from __future__ import annotations

import math

__all__ = ["gcj02_to_wgs84", "out_of_china", "wgs84_to_gcj02"]

_A = 6378245.0  # Krasovsky 1940 semi-major axis used by the transform
_EE = 0.00669342162296594323


def out_of_china(lat: float, lon: float) -> bool:
    """The transform's own coarse bounding box: outside it, GCJ-02 equals WGS-84."""
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _dlat(x: float, y: float) -> float:
    r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    r += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    r += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    r += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return r


def _dlon(x: float, y: float) -> float:
    r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    r += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    r += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    r += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return r


def wgs84_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    """WGS-84 → GCJ-02 (used by the simulator and to solve the inverse)."""
    if out_of_china(lat, lon):
        return lat, lon
    dlat = _dlat(lon - 105.0, lat - 35.0)
    dlon = _dlon(lon - 105.0, lat - 35.0)
    rad = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(rad) ** 2
    sqrt_magic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * math.cos(rad) * math.pi)
    return lat + dlat, lon + dlon


def gcj02_to_wgs84(lat: float, lon: float, *, tolerance_deg: float = 1e-9, max_iter: int = 30) -> tuple[float, float]:
    """GCJ-02 → WGS-84 by iterating ``w ← w + (g − f(w))`` until the forward image matches ``g``."""
    if out_of_china(lat, lon):
        return lat, lon
    wlat, wlon = lat, lon
    for _ in range(max_iter):
        glat, glon = wgs84_to_gcj02(wlat, wlon)
        elat, elon = lat - glat, lon - glon
        wlat += elat
        wlon += elon
        if abs(elat) < tolerance_deg and abs(elon) < tolerance_deg:
            break
    return wlat, wlon
