"""The ``tracks`` table's reads for the vehicle rules (the track service's own queries are in ``tracks.py``,
still to move here: issue #14)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ._base import TableStore

__all__ = ["TrackStore"]


class TrackStore(TableStore):
    async def latest_fix(self, device_id: str, now: datetime) -> dict[str, Any] | None:
        """The vehicle's newest position of the last day (``at``, ``speed_kmh``); of fixes in the same
        second the fastest or the one without a speed, so a tie never hides movement."""
        row = await self.p.fetchrow(
            "SELECT at, speed_kmh FROM tracks WHERE device_id=$1 AND at >= $2::timestamptz - interval '1 day'"
            " ORDER BY at DESC, speed_kmh DESC NULLS FIRST LIMIT 1",
            device_id,
            now,
        )
        return dict(row) if row else None
