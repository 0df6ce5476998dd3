"""``/webhooks``: registrations for stations' systems and alarm companies, and their dead letters."""

# no "from __future__ import annotations": FastAPI resolves the dependency aliases at definition time

import secrets
from typing import Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from ..auth import Principal
from ..service import Dispatcher
from .deps import D, Who, manages, require_supervisor

__all__ = ["WebhookRequest", "router"]

router = APIRouter()


class WebhookRequest(BaseModel):
    unit: str | None = None
    company: str | None = None
    url: str = Field(pattern=r"^https?://", max_length=2000)
    secret: str | None = Field(default=None, min_length=16, max_length=200)


def _hook_visible(d: Dispatcher, who: Principal, kind: str, target: str) -> bool:
    if who.unit is None:
        return False
    if kind == "company":
        return d.tree.is_root(who.unit)
    return manages(d.tree, who.unit, target)


@router.post("/webhooks", status_code=201)
async def webhook_create(who: Who, d: D, req: WebhookRequest) -> dict[str, Any]:
    """Register a webhook for a unit (its subtree's incidents) or an alarm company (its accounts')."""
    require_supervisor(who)
    if bool(req.unit) == bool(req.company):
        raise HTTPException(422, "name exactly one of unit or company")
    kind, target = ("unit", req.unit) if req.unit else ("company", req.company)
    if kind == "unit" and target not in d.tree:
        raise HTTPException(422, "unknown unit")
    if not _hook_visible(d, who, kind, target or ""):
        raise HTTPException(403, "outside your unit")
    secret = req.secret or secrets.token_urlsafe(32)
    hook_id = await d.store.webhooks.create(kind, target, req.url, secret, who.user)
    return {"id": hook_id, "target_kind": kind, "target": target, "url": req.url, "secret": secret}


@router.get("/webhooks")
async def webhook_list(who: Who, d: D) -> dict[str, Any]:
    """The webhooks of the caller's unit and below (supervisors: they register and remove them)."""
    require_supervisor(who)
    rows = await d.store.webhooks.all()
    items = [
        {**r, "created_at": r["created_at"].isoformat()}
        for r in rows
        if _hook_visible(d, who, r["target_kind"], r["target"])
    ]
    return {"items": items, "count": len(items)}


@router.delete("/webhooks/{hook_id}", status_code=204)
async def webhook_delete(who: Who, d: D, hook_id: int) -> Response:
    require_supervisor(who)
    row = await d.store.webhooks.target(hook_id)
    if row is None or not _hook_visible(d, who, row["target_kind"], row["target"]):
        raise HTTPException(404, "no such webhook")
    await d.store.webhooks.deactivate(hook_id)
    return Response(status_code=204)


@router.get("/webhooks/dead-letters")
async def dead_letters(who: Who, d: D, limit: int = Query(200, ge=1, le=1000)) -> dict[str, Any]:
    """Deliveries that failed permanently or ran out of attempts: for supervisors to inspect and retry."""
    require_supervisor(who)
    rows = await d.store.webhooks.dead_letters(limit)
    items = [
        {**r, "incident_id": str(r["incident_id"]), "created_at": r["created_at"].isoformat()}
        for r in rows
        if _hook_visible(d, who, r["target_kind"], r["target"])
    ]
    return {"items": items, "count": len(items)}


@router.post("/webhooks/dead-letters/{delivery_id}/retry")
async def dead_letter_retry(who: Who, d: D, delivery_id: int) -> dict[str, Any]:
    require_supervisor(who)
    row = await d.store.webhooks.dead_letter_target(delivery_id)
    if row is None or not _hook_visible(d, who, row["target_kind"], row["target"]):
        raise HTTPException(404, "no such dead letter")
    await d.store.webhooks.retry(delivery_id)
    return {"id": delivery_id, "status": "pending"}
