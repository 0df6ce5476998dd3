"""GCJ-02 ↔ WGS-84 for jurisdictions: the shared transform (``alarmhub_geo``) applied to geometries.

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

import numpy as np
import numpy.typing as npt
import shapely
from alarmhub_geo import gcj02_to_wgs84, out_of_china, wgs84_to_gcj02
from shapely.geometry.base import BaseGeometry

__all__ = ["gcj02_to_wgs84", "geometry_gcj02_to_wgs84", "out_of_china", "wgs84_to_gcj02"]

Floats = npt.NDArray[np.float64]


def geometry_gcj02_to_wgs84(geom: BaseGeometry) -> BaseGeometry:
    """Convert every vertex of a shapely geometry from GCJ-02 to WGS-84 (done once, at import)."""

    def _conv(coords: Floats) -> Floats:
        lon, lat = gcj02_to_wgs84(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])

    return shapely.transform(geom, _conv)
