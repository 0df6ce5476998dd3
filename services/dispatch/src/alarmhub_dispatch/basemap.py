"""The console's base map: the tile source it should use, and offline tiles from a local MBTiles file.

- ``GET /map/config`` tells the console which XYZ tile source to draw under the jurisdictions
  (``ALARMHUB_MAP_TILE_URL``, e.g. the police GIS), its attribution, its zoom range and — the part that
  matters — the coordinate system its tiles are drawn in (``ALARMHUB_MAP_TILE_CRS``): tiles from Chinese
  web maps and many police GIS servers are in GCJ-02, so the console converts every WGS-84 area and
  marker to GCJ-02 before drawing it (otherwise they sit ~500 m off the streets).
- ``GET /map/tiles/{z}/{x}/{y}.{ext}`` serves tiles from ``ALARMHUB_MAP_MBTILES`` (an MBTiles 1.3 SQLite
  file: ``tiles(zoom_level, tile_column, tile_row, tile_data)`` with TMS rows, flipped here to XYZ) for
  isolated networks where no tile server is reachable. With an MBTiles file and no URL, the console
  uses these.

Both are public (no token): a browser's tile requests carry no Authorization header, and tiles hold
streets, not personal data; a deployment that must hide its map puts dispatch behind the police
network's boundary anyway (docs/deployment.md). The file is opened read-only (``mode=ro`` URI), one
connection per request in a worker thread.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Response

__all__ = ["MBTiles", "add_map_routes", "map_config"]

_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "pbf": "application/x-protobuf",
}


class MBTiles:
    """Read-only access to an MBTiles file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"MBTiles file {self.path} does not exist")
        self.metadata = self._metadata()

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)

    def _metadata(self) -> dict[str, str]:
        with self._connect() as conn:
            return {str(k): str(v) for k, v in conn.execute("SELECT name, value FROM metadata")}

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        """The tile at XYZ (z, x, y), or None."""
        row = (1 << z) - 1 - y  # MBTiles stores TMS rows (origin bottom-left)
        conn = self._connect()
        try:
            hit = conn.execute(
                "SELECT tile_data FROM tiles WHERE zoom_level=? AND tile_column=? AND tile_row=?", (z, x, row)
            ).fetchone()
        finally:
            conn.close()
        return bytes(hit[0]) if hit else None


def map_config(settings: Any, mbtiles: MBTiles | None) -> dict[str, Any]:
    url = settings.map_tile_url
    attribution = settings.map_attribution
    crs = settings.map_tile_crs
    min_zoom, max_zoom = 0, settings.map_max_zoom
    if not url and mbtiles is not None:
        fmt = mbtiles.metadata.get("format", "png")
        url = f"/map/tiles/{{z}}/{{x}}/{{y}}.{fmt}"
        attribution = attribution or mbtiles.metadata.get("attribution", "")
        crs = mbtiles.metadata.get("crs", crs).lower().replace("-", "")
        min_zoom = int(mbtiles.metadata.get("minzoom", 0))
        max_zoom = int(mbtiles.metadata.get("maxzoom", max_zoom))
    return {
        "tiles": url or None,
        "attribution": attribution or "",
        "crs": crs,
        "min_zoom": min_zoom,
        "max_zoom": max_zoom,
    }


def add_map_routes(app: FastAPI, settings: Any) -> MBTiles | None:
    """``/map/config`` and, with ``ALARMHUB_MAP_MBTILES``, ``/map/tiles/…`` on ``app``."""
    mbtiles = MBTiles(settings.map_mbtiles) if settings.map_mbtiles else None
    config = map_config(settings, mbtiles)

    @app.get("/map/config", tags=["map"])
    async def get_map_config() -> dict[str, Any]:
        """The console's base map: XYZ tile URL, attribution, coordinate system of the tiles, zoom range."""
        return config

    if mbtiles is not None:
        tiles = mbtiles

        @app.get("/map/tiles/{z}/{x}/{y}.{ext}", tags=["map"])
        async def get_tile(z: int, x: int, y: int, ext: str) -> Response:
            """One tile of the local MBTiles file (XYZ numbering)."""
            if ext not in _TYPES or not (0 <= z <= 24) or not (0 <= x < (1 << z)) or not (0 <= y < (1 << z)):
                raise HTTPException(404, "no such tile")
            data = await asyncio.to_thread(tiles.tile, z, x, y)
            if data is None:
                raise HTTPException(404, "no such tile")
            return Response(data, media_type=_TYPES[ext], headers={"Cache-Control": "max-age=86400"})

    return mbtiles
