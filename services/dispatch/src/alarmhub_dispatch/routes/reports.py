"""``/reports``: time to acknowledge, false-alarm rates and cameras against the plan's targets, as JSON or CSV
(``/reports/devices`` is in ``devices.py``)."""

# no "from __future__ import annotations": FastAPI resolves the dependency aliases at definition time

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

from ..reports import CAMERA_TARGETS, CITY_CAMERA_TARGET, to_csv
from ..units import UnitTree
from .deps import D, Who

__all__ = ["report_response", "router"]

router = APIRouter()


def report_response(rows: list[dict[str, Any]], columns: list[str], fmt: str, name: str) -> Any:
    if fmt == "csv":
        return Response(
            to_csv(rows, columns),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return {"items": rows, "columns": columns}


@router.get("/reports/ack-times")
async def report_ack(who: Who, d: D, since: datetime | None = None, format: str = "json") -> Any:
    """Time to acknowledge (seconds) per district and station, p50 / p90, over visible incidents."""
    where, args = who.sql_filter(d.tree, 1)
    rows = await d.store.reports.ack_times(where, args, since)
    for r in rows:
        for k in ("p50_s", "p90_s"):
            r[k] = round(r[k], 1) if r[k] is not None else None
        r["level"] = "station" if r["station"] else "district"
        r["name"] = d.tree.name(r["station"] or r["district"])
    return report_response(
        rows,
        ["level", "district", "station", "name", "incidents", "acknowledged", "p50_s", "p90_s"],
        format,
        "ack-times",
    )


@router.get("/reports/false-alarms")
async def report_false(
    who: Who,
    d: D,
    by: Literal["source", "account"] = "source",
    since: datetime | None = None,
    format: str = "json",
) -> Any:
    """False-alarm rate of closed incidents with a verdict, by source protocol or by account."""
    where, args = who.sql_filter(d.tree, 1)
    key = "protocol" if by == "source" else "source_device_id"
    rows = await d.store.reports.false_alarms(where, args, since, key)
    for r in rows:
        r["false_alarm_rate"] = round(r["false_alarms"] / r["closed"], 3) if r["closed"] else None
    return report_response(
        rows,
        ["key", "closed", "false_alarms", "genuine", "false_alarm_rate"],
        format,
        f"false-alarms-by-{by}",
    )


def _district_of(tree: UnitTree, unit: str | None) -> str | None:
    n = tree.nodes.get(unit or "")
    while n is not None and n.tier > 2 and n.parent_id:
        n = tree.nodes.get(n.parent_id)
    return n.id if n is not None and n.tier == 2 else None


def _camera_rows(tree: UnitTree, unit: str, per: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    visible = tree.subtree(unit)
    out: list[dict[str, Any]] = []
    for dist in sorted(set(per) | set(CAMERA_TARGETS)):
        if dist != "unassigned" and dist not in visible:
            continue
        if dist == "unassigned" and not tree.is_root(unit):
            continue
        c = per.get(dist, {"cameras": 0, "online": 0})
        target = CAMERA_TARGETS.get(dist)
        out.append(
            {
                "district": dist,
                "name": tree.name(dist),
                "cameras": c["cameras"],
                "online": c["online"],
                "online_rate": round(c["online"] / c["cameras"], 3) if c["cameras"] else None,
                "target": target,
                "of_target": round(c["cameras"] / target, 3) if target else None,
            }
        )
    if tree.is_root(unit):
        total = sum(r["cameras"] for r in out)
        out.append(
            {
                "district": "city",
                "name": tree.name("city"),
                "cameras": total,
                "online": sum(r["online"] for r in out),
                "online_rate": None,
                "target": CITY_CAMERA_TARGET,
                "of_target": round(total / CITY_CAMERA_TARGET, 3),
            }
        )
    return out


@router.get("/reports/cameras")
async def report_cameras(who: Who, d: D, format: str = "json") -> Any:
    """Cameras per district (by their unit), online rate, and the plan's targets."""
    if who.role == "alarm_company" or who.unit is None:
        raise HTTPException(403, "units only")
    per: dict[str, dict[str, int]] = {}
    for r in await d.store.reports.cameras_per_unit():
        district = _district_of(d.tree, r["unit"])
        acc = per.setdefault(district or "unassigned", {"cameras": 0, "online": 0})
        acc["cameras"] += r["n"]
        acc["online"] += r["online"]
    return report_response(
        _camera_rows(d.tree, who.unit, per),
        ["district", "name", "cameras", "online", "online_rate", "target", "of_target"],
        format,
        "cameras",
    )
