"""``/reports/devices``: devices and their online rate (``..devices``), included when the app tracks them."""

# no "from __future__ import annotations": FastAPI resolves the dependency aliases at definition time

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request

from .deps import D, Who
from .reports import report_response

__all__ = ["router"]

router = APIRouter()


@router.get("/reports/devices")
async def report_devices(
    who: Who,
    d: D,
    request: Request,
    by: Literal["district", "station"] = "district",
    kind: Literal["camera", "alarm_panel", "vehicle", "platform"] | None = None,
    format: Literal["json", "csv"] = "json",
) -> Any:
    """Devices and their online rate (last status from ``devices.status``) per district or station and kind,
    over the caller's unit and below; the city also sees devices without a unit (vehicles, platforms)."""
    if who.role in ("alarm_company", "vehicle_owner") or who.unit is None:
        raise HTTPException(403, "units only")
    tree = d.tree
    visible: frozenset[str] | None = None if tree.is_root(who.unit) else tree.subtree(who.unit)
    districts = who.scope.get("districts") if who.role == "department" else None
    if districts:
        allowed = frozenset().union(*(tree.subtree(x) for x in districts if x in tree))
        visible = allowed if visible is None else visible & allowed
    rows = await request.app.state.devices.report(visible, by, kind)
    columns = [
        "district",
        "district_name",
        *(["station", "station_name"] if by == "station" else []),
        "kind",
        "devices",
        "online",
        "online_rate",
        "last_status_at",
    ]
    return report_response(rows, columns, format, f"devices-by-{by}")
