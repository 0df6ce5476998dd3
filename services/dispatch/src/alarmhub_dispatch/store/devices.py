"""The ``device_status`` table (last status per device) and the camera places it is filed under; the rules
are in ``devices.py``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._base import TableStore

__all__ = ["DeviceStore"]

_UPSERT = """
INSERT INTO device_status AS d (device_id, kind, protocol, online, status, status_at, station, district, updated_at)
VALUES ($1, $2, $3, COALESCE($4, true), $5, $6, $7, $8, now())
ON CONFLICT (device_id) DO UPDATE SET
    kind = EXCLUDED.kind, protocol = EXCLUDED.protocol, online = COALESCE($4, d.online), status = EXCLUDED.status,
    status_at = EXCLUDED.status_at, station = COALESCE(EXCLUDED.station, d.station),
    district = COALESCE(EXCLUDED.district, d.district), updated_at = now()
WHERE d.status_at <= EXCLUDED.status_at
"""


class DeviceStore(TableStore):
    async def camera_places(self, camera_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Registry unit and position of these cameras (the registered ones among them)."""
        rows = await self.p.fetch(
            "SELECT id, unit, lat, lon FROM cameras WHERE id = ANY($1::text[])", list(camera_ids)
        )
        return [dict(r) for r in rows]

    async def upsert_statuses(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """(device, kind, protocol, online or None, status, at, station, district) rows; an older status
        than the stored one changes nothing."""
        await self.p.executemany(_UPSERT, rows)

    async def online_report(
        self, visible: Sequence[str] | None, kind: str | None, by_station: bool
    ) -> list[dict[str, Any]]:
        """Devices, online ones and the last status time per (district[, station], kind), of the stations
        and districts in ``visible`` (None: everything) and of one ``kind`` if given."""
        group = "district, station, kind" if by_station else "district, kind"
        args: list[Any] = []
        where = ["true"]
        if visible is not None:
            args.append(list(visible))
            where.append(f"(station = ANY(${len(args)}::text[]) OR district = ANY(${len(args)}::text[]))")
        if kind:
            args.append(kind)
            where.append(f"kind = ${len(args)}")
        rows = await self.p.fetch(
            f"SELECT {group}, count(*) AS devices, count(*) FILTER (WHERE online) AS online,"
            " max(status_at) AS last_status_at"
            f" FROM device_status WHERE {' AND '.join(where)} GROUP BY {group}"
            f" ORDER BY district NULLS LAST, {'station NULLS FIRST, ' if by_station else ''}kind",
            *args,
        )
        return [dict(r) for r in rows]
