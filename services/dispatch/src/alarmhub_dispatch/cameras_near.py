"""Registered cameras within a radius of a point, nearest first (the incident view's "cameras around").

A bounding box on the ``cameras_position_idx`` index narrows the registry (200,000 cameras in the
plan) to the box around the point; the great-circle distance orders and cuts what is inside it.
Positions are WGS-84 as the registry keeps them.
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["cameras_near", "live_kind"]

_M_PER_DEG = 6371008.8 * math.pi / 180  # the same sphere as the distance in store/registry.py
_GB28181_ID = re.compile(r"^\d{20}$")


def live_kind(camera_id: str, has_stream: bool) -> str | None:
    """How the console can look through the camera: ``rtsp`` (live view and snapshots through the relay),
    ``gb28181`` (a GB/T 28181 device without a stream URL: live view over SIP INVITE is not done), or None."""
    if has_stream:
        return "rtsp"
    if _GB28181_ID.match(camera_id):
        return "gb28181"
    return None


async def cameras_near(
    store: Any, lat: float, lon: float, radius_m: float, limit: int = 50
) -> list[dict[str, Any]]:
    dlat = radius_m / _M_PER_DEG
    dlon = radius_m / (_M_PER_DEG * max(0.01, math.cos(math.radians(lat))))
    rows = await store.registry.cameras_in_box(
        lat, lon, (lat - dlat, lat + dlat, lon - dlon, lon + dlon), limit
    )
    out = []
    for r in rows:
        if r["distance_m"] > radius_m:
            break  # ordered: the rest of the box's corners are farther still
        item = {
            k: r[k] for k in ("id", "name", "type", "lat", "lon", "unit", "network", "category", "online")
        }
        item["channel"] = r["channel"]
        item["distance_m"] = round(float(r["distance_m"]), 1)
        item["live"] = live_kind(r["id"], r["has_stream"])
        out.append(item)
    return out
