"""CAP 1.2: the caller's dispatched incidents as an Atom feed, and one incident's alert."""

# no "from __future__ import annotations": FastAPI resolves the dependency aliases at definition time

import uuid

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from ..cap import alert_xml, feed_xml
from ..views import summary
from .deps import D, Who, visible_incident

__all__ = ["router"]

router = APIRouter()


@router.get("/cap", response_class=Response, responses={200: {"content": {"application/atom+xml": {}}}})
async def cap_feed(who: Who, d: D, request: Request, limit: int = Query(200, ge=1, le=1000)) -> Response:
    """Atom feed of the caller's dispatched incidents, each entry holding its current CAP 1.2 alert."""
    where, args = who.sql_filter(d.tree, 1)
    rows = await d.store.list_incidents(f"{where} AND decision = 'dispatch'", args, limit)
    body = feed_xml([(summary(r, d.tree), r["opened_at"]) for r in rows], str(request.url), d.clock())
    return Response(body, media_type="application/atom+xml")


@router.get(
    "/incidents/{incident_id}/cap",
    response_class=Response,
    responses={200: {"content": {"application/cap+xml": {}}}},
)
async def cap_alert(who: Who, d: D, incident_id: uuid.UUID) -> Response:
    row = await visible_incident(d, who, incident_id)
    return Response(alert_xml(summary(row, d.tree), row["opened_at"]), media_type="application/cap+xml")
