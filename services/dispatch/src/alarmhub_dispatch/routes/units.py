"""``/units``: the caller's unit and below, with their areas on request.

The areas of a city's police geography are about a megabyte of GeoJSON, and every console page asks
for them. The tree does not change while the process runs, so each caller unit's answer is serialised
once (off the event loop: serialising it on the loop held every other request for seconds on a busy
host), kept with its gzip form and an ETag, and a repeated ask with ``If-None-Match`` is a 304.
"""

# no "from __future__ import annotations": FastAPI resolves the dependency aliases at definition time

import asyncio
import gzip
import hashlib
import json
import weakref
from typing import Any

from fastapi import APIRouter, Request, Response

from ..units import UnitTree
from .deps import D, Who

__all__ = ["router"]

router = APIRouter()


class _Body:
    __slots__ = ("etag", "gzipped", "plain")

    def __init__(self, doc: dict[str, Any]) -> None:
        self.plain = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
        self.gzipped = gzip.compress(self.plain, compresslevel=6)
        self.etag = '"' + hashlib.sha256(self.plain).hexdigest()[:32] + '"'


#: tree → (caller's unit or None, geometry) → the serialised answer; a handful of entries per tree
_BODIES: "weakref.WeakKeyDictionary[UnitTree, dict[tuple[str | None, bool], _Body]]" = (
    weakref.WeakKeyDictionary()
)


def _listing(tree: UnitTree, unit: str | None, geometry: bool) -> dict[str, Any]:
    visible = tree.subtree(unit) if unit is not None else frozenset()
    items = []
    for uid in sorted(visible, key=lambda u: (tree.nodes[u].tier, u)):
        n = tree.nodes[uid]
        item = {**n.summary(), "children": list(n.children)}
        if geometry:
            item["geometry"] = n.geometry
        items.append(item)
    return {"items": items, "count": len(items), "crs": "WGS84"}


async def _body(tree: UnitTree, unit: str | None, geometry: bool) -> _Body:
    bodies = _BODIES.setdefault(tree, {})
    hit = bodies.get((unit, geometry))
    if hit is None:  # two first asks at once both serialise; the second's result is kept, same bytes
        hit = bodies[(unit, geometry)] = await asyncio.to_thread(
            lambda: _Body(_listing(tree, unit, geometry))
        )
    return hit


@router.get("/units", response_model=dict[str, Any])
async def units(who: Who, d: D, request: Request, geometry: bool = False) -> Response:
    unit = None if who.role == "alarm_company" else who.unit
    body = await _body(d.tree, unit, geometry)
    headers = {
        "ETag": body.etag,
        "Cache-Control": "private, no-cache",
        "Vary": "Accept-Encoding, Authorization",
    }
    if body.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(
            body.gzipped, media_type="application/json", headers={**headers, "Content-Encoding": "gzip"}
        )
    return Response(body.plain, media_type="application/json", headers=headers)
