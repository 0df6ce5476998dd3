"""The camera registry in PostgreSQL (table ``cameras`` of the base schema), as the ingest service uses it.

200,000 cameras are too many to hold per process for the few that speak in any minute, so lookups go
to PostgreSQL through a bounded LRU cache with a TTL (misses are cached too, so an unregistered
camera flooding us costs one query per TTL). Also here, for dispatch's API and reports:
:func:`parse_cameras_csv` / :meth:`CameraRegistry.import_rows` (the CSV import) and
:meth:`CameraRegistry.district_counts` (cameras per district, to compare with the plan's targets).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import asyncpg
from alarmhub_runtime import get_logger

__all__ = ["CATEGORIES", "Camera", "CameraRegistry", "CsvError", "parse_cameras_csv"]

log = get_logger("alarmhub.ingest_camera.registry")

#: the plan's camera categories
CATEGORIES = (
    "city_checkpoint",
    "district_boundary",
    "street_boundary",
    "main_road",
    "market",
    "public_place",
    "key_facility",
    "residential_estate",
    "internal_unit",
)
NETWORKS = ("police_video", "social_video")
GB_CODE = re.compile(r"^\d{20}$")


@dataclass(frozen=True)
class Camera:
    id: str
    name: str
    lat: float | None
    lon: float | None
    unit: str | None
    network: str | None = None
    category: str | None = None
    ip: str | None = None
    mac: str | None = None
    channel: int | None = None
    onvif_url: str | None = None
    username: str | None = None
    password: str | None = None
    online: bool = False
    #: the only webhook integrator whose signature speaks for this camera (docs/security.md)
    integrator: str | None = None


_COLS = (
    "id, name, lat, lon, unit, network, category, ip, mac, channel, onvif_url, username, password, online,"
    " integrator"
)


def _camera(r: Any) -> Camera:
    return Camera(
        r["id"],
        r["name"],
        r["lat"],
        r["lon"],
        r["unit"],
        r["network"],
        r["category"],
        r["ip"],
        r["mac"],
        r["channel"],
        r["onvif_url"],
        r["username"],
        r["password"],
        r["online"],
        r["integrator"],
    )


class CsvError(ValueError):
    pass


def parse_cameras_csv(text: str, *, max_rows: int = 250_000) -> list[dict[str, Any]]:
    """Validate a camera CSV (header: id,name,type,lat,lon,ip,mac,channel,unit,network,category).

    All-or-nothing: the first bad row raises CsvError naming its line, so a half-imported file never
    leaves the registry in a state nobody asked for.
    """
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if not reader.fieldnames or "id" not in reader.fieldnames or "name" not in reader.fieldnames:
        raise CsvError("header must name at least id and name")
    rows: list[dict[str, Any]] = []
    for n, row in enumerate(reader, start=2):
        if len(rows) >= max_rows:
            raise CsvError(f"more than {max_rows} rows")

        def get(k: str, row: dict[str, str | None] = row) -> str | None:
            return (row.get(k) or "").strip() or None

        cid, name = get("id"), get("name")
        if not cid or not name:
            raise CsvError(f"line {n}: id and name are required")
        try:
            lat = float(v) if (v := get("lat")) is not None else None
            lon = float(v) if (v := get("lon")) is not None else None
            channel = int(v) if (v := get("channel")) is not None else None
        except ValueError as exc:
            raise CsvError(f"line {n}: {exc}") from exc
        if (lat is None) != (lon is None) or (
            lat is not None and lon is not None and not (-90 <= lat <= 90 and -180 <= lon <= 180)
        ):
            raise CsvError(f"line {n}: lat/lon missing one half or out of range")
        network, category = get("network"), get("category")
        if network is not None and network not in NETWORKS:
            raise CsvError(f"line {n}: network must be one of {', '.join(NETWORKS)}")
        if category is not None and category not in CATEGORIES:
            raise CsvError(f"line {n}: category must be one of {', '.join(CATEGORIES)}")
        rows.append(
            {
                "id": cid,
                "name": name,
                "type": get("type"),
                "lat": lat,
                "lon": lon,
                "ip": get("ip"),
                "mac": (get("mac") or "").lower() or None,
                "channel": channel,
                "unit": get("unit"),
                "network": network,
                "category": category,
            }
        )
    return rows


_UPSERT = """
INSERT INTO cameras (id, name, type, lat, lon, ip, mac, channel, unit, network, category)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, type = EXCLUDED.type, lat = EXCLUDED.lat,
    lon = EXCLUDED.lon, ip = EXCLUDED.ip, mac = EXCLUDED.mac, channel = EXCLUDED.channel, unit = EXCLUDED.unit,
    network = EXCLUDED.network, category = EXCLUDED.category, updated_at = now()
"""

# Walk each camera's unit up the tree to its tier-2 ancestor (the district), then count per district.
_DISTRICT_COUNTS = """
WITH RECURSIVE up AS (
    SELECT id AS start, id, parent_id, tier FROM units
    UNION ALL
    SELECT up.start, u.id, u.parent_id, u.tier FROM up JOIN units u ON u.id = up.parent_id WHERE up.tier > 2
), district_of AS (
    SELECT start, id AS district FROM up WHERE tier = 2
), located AS (
    SELECT d.district, c.online, c.network, c.category FROM cameras c JOIN district_of d ON d.start = c.unit
), by_cat AS (
    SELECT district, jsonb_object_agg(category, n)::text AS by_category
    FROM (SELECT district, category, count(*) AS n FROM located WHERE category IS NOT NULL
          GROUP BY district, category) s GROUP BY district
)
SELECT l.district, u.name, count(*) AS total, count(*) FILTER (WHERE l.online) AS online,
       count(*) FILTER (WHERE l.network = 'police_video') AS police_video,
       count(*) FILTER (WHERE l.network = 'social_video') AS social_video,
       max(b.by_category) AS by_category
FROM located l JOIN units u ON u.id = l.district LEFT JOIN by_cat b ON b.district = l.district
GROUP BY l.district, u.name ORDER BY l.district
"""


class CameraRegistry:
    def __init__(self, database_url: str, *, ttl_s: float = 60.0, max_cached: int = 50_000) -> None:
        self._url = database_url
        self._ttl = ttl_s
        self._max = max_cached
        self._pool: asyncpg.Pool | None = None
        self._cache: OrderedDict[tuple[str, ...], tuple[float, Camera | None]] = OrderedDict()
        self.healthy = False

    async def start(self) -> None:
        try:
            await self._connect()
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("registry_unavailable", error=repr(exc))

    async def stop(self) -> None:
        if self._pool is not None:
            with contextlib.suppress(Exception):
                await self._pool.close()
            self._pool = None

    async def _connect(self) -> asyncpg.Pool:
        if self._pool is None:
            self._pool = await asyncpg.create_pool(self._url, min_size=1, max_size=8, command_timeout=10)
            self.healthy = True
        return self._pool

    def ready(self) -> bool:
        return self.healthy

    def invalidate(self) -> None:
        self._cache.clear()

    async def _cached(self, key: tuple[str, ...], query: str, *args: Any) -> Camera | None:
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self._ttl:
            self._cache.move_to_end(key)
            return hit[1]
        try:
            pool = await self._connect()
            row = await pool.fetchrow(query, *args)
            self.healthy = True
        except (OSError, asyncpg.PostgresError) as exc:
            # Locating is best effort: an event without a registry position is still an event.
            self.healthy = False
            log.warning("registry_lookup_failed", error=repr(exc))
            return hit[1] if hit else None
        cam = _camera(row) if row else None
        self._cache[key] = (now, cam)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return cam

    async def get(self, camera_id: str) -> Camera | None:
        return await self._cached(("id", camera_id), f"SELECT {_COLS} FROM cameras WHERE id = $1", camera_id)

    async def find_isapi(self, mac: str | None, ip: str | None, channel: int | None) -> Camera | None:
        """An ISAPI push names the device by MAC and IP and the channel; prefer the exact channel's row."""
        if not mac and not ip:
            return None
        return await self._cached(
            ("isapi", mac or "", ip or "", str(channel)),
            f"SELECT {_COLS} FROM cameras WHERE (lower(mac) = $1 OR ip = $2) AND (channel = $3 OR channel IS NULL)"
            " ORDER BY (lower(mac) = $1) DESC NULLS LAST, channel NULLS LAST LIMIT 1",
            (mac or "").lower() or None,
            ip,
            channel,
        )

    async def by_intake_token(self, token: str) -> Camera | None:
        """The camera whose intake token this is (only its SHA-256 is stored), or None."""
        sha = hashlib.sha256(token.encode()).hexdigest()
        return await self._cached(
            ("token", sha), f"SELECT {_COLS} FROM cameras WHERE intake_token_sha256 = $1", sha
        )

    async def set_intake_token(self, camera_id: str, token: str | None) -> bool:
        """Store ``token``'s hash for ``camera_id`` (None revokes); False when there is no such camera."""
        sha = hashlib.sha256(token.encode()).hexdigest() if token is not None else None
        pool = await self._connect()
        status = await pool.execute(
            "UPDATE cameras SET intake_token_sha256 = $2, updated_at = now() WHERE id = $1", camera_id, sha
        )
        self.invalidate()
        return not status.endswith(" 0")

    async def find_by_ip(self, ip: str) -> Camera | None:
        return await self._cached(
            ("ip", ip), f"SELECT {_COLS} FROM cameras WHERE ip = $1 ORDER BY channel NULLS FIRST LIMIT 1", ip
        )

    async def set_online(self, camera_id: str, online: bool) -> None:
        try:
            pool = await self._connect()
            await pool.execute(
                "UPDATE cameras SET online = $2, updated_at = now() WHERE id = $1 AND online <> $2",
                camera_id,
                online,
            )
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("registry_write_failed", camera_id=camera_id, error=repr(exc))

    async def onvif_cameras(self, limit: int) -> list[Camera]:
        pool = await self._connect()
        rows = await pool.fetch(
            f"SELECT {_COLS} FROM cameras WHERE onvif_url IS NOT NULL ORDER BY id LIMIT $1", limit
        )
        return [_camera(r) for r in rows]

    async def import_rows(self, rows: list[dict[str, Any]]) -> int:
        """Upsert validated CSV rows in one transaction."""
        pool = await self._connect()
        async with pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                _UPSERT,
                [
                    (
                        r["id"],
                        r["name"],
                        r["type"],
                        r["lat"],
                        r["lon"],
                        r["ip"],
                        r["mac"],
                        r["channel"],
                        r["unit"],
                        r["network"],
                        r["category"],
                    )
                    for r in rows
                ],
            )
        self.invalidate()
        return len(rows)

    async def district_counts(self) -> list[dict[str, Any]]:
        """Cameras per district (tier-2 unit): total, online, by network and by category."""
        pool = await self._connect()
        rows = await pool.fetch(_DISTRICT_COUNTS)
        return [
            {
                "district": r["district"],
                "name": r["name"],
                "total": r["total"],
                "online": r["online"],
                "police_video": r["police_video"],
                "social_video": r["social_video"],
                "by_category": json.loads(r["by_category"] or "{}"),
            }
            for r in rows
        ]
