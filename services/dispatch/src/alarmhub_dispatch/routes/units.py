"""``/units``: the caller's unit and below, with their areas on request."""

# no "from __future__ import annotations": FastAPI resolves the dependency aliases at definition time

from typing import Any

from fastapi import APIRouter

from .deps import D, Who

__all__ = ["router"]

router = APIRouter()


@router.get("/units")
async def units(who: Who, d: D, geometry: bool = False) -> dict[str, Any]:
    if who.role == "alarm_company" or who.unit is None:
        visible: frozenset[str] = frozenset()
    else:
        visible = d.tree.subtree(who.unit)
    items = []
    for uid in sorted(visible, key=lambda u: (d.tree.nodes[u].tier, u)):
        n = d.tree.nodes[uid]
        item = {**n.summary(), "children": list(n.children)}
        if geometry:
            item["geometry"] = n.geometry
        items.append(item)
    return {"items": items, "count": len(items), "crs": "WGS84"}
