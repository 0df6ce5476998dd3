"""The aggregates behind ``/api/v1/reports/*`` (``where``/``args``: the caller's visibility filter)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ._base import TableStore

__all__ = ["ReportStore"]


def _since(where: str, args: list[Any], since: datetime | None) -> str:
    if since:
        args.append(since)
        where += f" AND opened_at >= ${len(args)}"
    return where


class ReportStore(TableStore):
    async def ack_times(self, where: str, args: list[Any], since: datetime | None) -> list[dict[str, Any]]:
        """Incidents, acknowledged ones and p50/p90 seconds to acknowledge, per district and per station."""
        where = _since(where, args, since)
        rows = await self.p.fetch(
            "SELECT district, station, count(*) AS incidents, count(acknowledged_at) AS acknowledged,"
            " percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM acknowledged_at - opened_at)) AS p50_s,"
            " percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM acknowledged_at - opened_at)) AS p90_s"
            f" FROM incidents WHERE {where} AND decision IN ('dispatch','verify')"
            " GROUP BY GROUPING SETS ((district), (district, station)) ORDER BY district NULLS LAST, station NULLS FIRST",
            *args,
        )
        return [dict(r) for r in rows]

    async def false_alarms(
        self, where: str, args: list[Any], since: datetime | None, key: str
    ) -> list[dict[str, Any]]:
        """Closed incidents with a verdict, false alarms and genuine ones per ``key`` (a column name)."""
        if key not in ("protocol", "source_device_id"):
            raise ValueError(f"no false-alarm report by {key}")
        where = _since(where, args, since)
        rows = await self.p.fetch(
            f"SELECT {key} AS key, count(*) AS closed, count(*) FILTER (WHERE verdict='false_alarm') AS false_alarms,"
            " count(*) FILTER (WHERE verdict='genuine') AS genuine"
            f" FROM incidents WHERE {where} AND verdict IS NOT NULL GROUP BY {key} ORDER BY 2 DESC LIMIT 1000",
            *args,
        )
        return [dict(r) for r in rows]

    async def cameras_per_unit(self) -> list[dict[str, Any]]:
        rows = await self.p.fetch(
            "SELECT unit, count(*) AS n, count(*) FILTER (WHERE online) AS online FROM cameras GROUP BY unit"
        )
        return [dict(r) for r in rows]
