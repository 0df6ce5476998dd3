"""``/tokens``: supervisors mint bearer tokens for their unit and below (alarm companies: the city only;
vehicle owners: 1 to 20 registered vehicles), and list and revoke the tokens their unit or a unit below
minted (``api_tokens.minted_unit``; sessions from login end with logout, disable or a password reset)."""

# no "from __future__ import annotations": FastAPI resolves the dependency aliases at definition time

from datetime import datetime, timedelta
from typing import Any, Literal

from alarmhub_runtime import get_logger
from fastapi import APIRouter, HTTPException, Path, Query, Response
from pydantic import BaseModel, Field

from ..auth import ROLES, Principal, hash_token, new_token
from ..service import Dispatcher
from .deps import D, Who, manages, require_supervisor

__all__ = ["TokenRequest", "router"]

log = get_logger("alarmhub.dispatch.tokens")

router = APIRouter()


class TokenRequest(BaseModel):
    user: str = Field(min_length=1, max_length=128)
    unit: str | None = None
    company: str | None = None
    role: Literal["dispatcher", "supervisor", "department", "alarm_company", "vehicle_owner"]
    ttl_s: int = Field(default=8 * 3600, gt=0, le=90 * 86400)
    scope: dict[str, list[str]] = Field(default_factory=dict)


async def _token_unit(d: Dispatcher, who: Principal, req: TokenRequest) -> str | None:
    """The unit the token is for, once the caller may mint it (raises 422/403 otherwise)."""
    if req.role == "alarm_company":
        if not req.company:
            raise HTTPException(422, "an alarm_company token names a company")
        if who.unit is None or not d.tree.is_root(who.unit):
            raise HTTPException(403, "only the city tier mints alarm company tokens")
        return None
    if req.role == "vehicle_owner":
        vehicles = sorted(set(req.scope.get("vehicles") or ()))
        if not vehicles or len(vehicles) > 20:
            raise HTTPException(
                422, "a vehicle_owner token names 1 to 20 registered vehicles in scope.vehicles"
            )
        known = await d.store.registry.vehicle_owners(vehicles)
        if len(known) != len(vehicles):
            raise HTTPException(422, "unknown vehicle: " + ", ".join(sorted(set(vehicles) - set(known))))
        if who.unit is None:
            raise HTTPException(403, "units only")
        for device, (owner, unit) in sorted(known.items()):
            # the owner's papers are checked at the responsible station: only its supervisors (or those
            # above it) mint, and only for vehicles registered to the person the token is for
            if owner != req.user:
                raise HTTPException(403, f"vehicle {device} is not registered to {req.user}")
            if not (d.tree.is_root(who.unit) or (unit is not None and manages(d.tree, who.unit, unit))):
                raise HTTPException(403, f"vehicle {device} is not in your unit's care")
        return None
    if not req.unit or req.unit not in d.tree:
        raise HTTPException(422, "unknown unit")
    if who.unit is None or not manages(d.tree, who.unit, req.unit):
        raise HTTPException(403, "a supervisor mints tokens only for its own unit or below")
    return req.unit


@router.post("/tokens", status_code=201)
async def mint(who: Who, d: D, req: TokenRequest) -> dict[str, Any]:
    require_supervisor(who)
    if req.role not in ROLES:
        raise HTTPException(422, "unknown role")
    unit = await _token_unit(d, who, req)
    token = new_token()
    expires = datetime.now().astimezone() + timedelta(seconds=req.ttl_s)
    if req.role == "department":
        scope: dict[str, Any] = req.scope
    elif req.role == "vehicle_owner":
        scope = {"vehicles": sorted(set(req.scope["vehicles"]))}
    else:
        scope = {}
    await d.store.put_token(
        hash_token(token),
        req.user,
        req.role,
        unit,
        req.company if req.role == "alarm_company" else None,
        scope,
        who.user,
        expires,
        minted_unit=who.unit,
    )
    return {
        "token": token,
        "user": req.user,
        "role": req.role,
        "unit": unit,
        "company": req.company,
        "expires_at": expires.isoformat(),
    }


def _minters(d: Dispatcher, who: Principal) -> list[str] | None:
    """The units whose minted tokens the caller lists and revokes: its subtree (None: the city, every one)."""
    require_supervisor(who)
    if who.unit is None:
        raise HTTPException(403, "units only")
    return None if d.tree.is_root(who.unit) else sorted(d.tree.subtree(who.unit))


@router.get("/tokens")
async def token_list(
    who: Who, d: D, limit: int = Query(500, ge=1, le=5000), active: bool = False
) -> dict[str, Any]:
    """Tokens minted by the caller's unit or a unit below (``id``: the first 16 hex digits of the token's
    SHA-256, never the token); ``active=true``: only those neither revoked nor expired."""
    rows = await d.store.people.minted_tokens(_minters(d, who), limit)
    now = datetime.now().astimezone()
    items = [
        {
            "id": r["id"],
            "user": r["user_name"],
            "role": r["role"],
            "unit": r["unit"],
            "company": r["company"],
            "scope": r["scope"] or {},
            "created_by": r["created_by"],
            "minted_unit": r["minted_unit"],
            "created_at": r["created_at"].isoformat(),
            "expires_at": r["expires_at"].isoformat() if r["expires_at"] else None,
            "revoked_at": r["revoked_at"].isoformat() if r["revoked_at"] else None,
        }
        for r in rows
        if not active or (r["revoked_at"] is None and (r["expires_at"] is None or r["expires_at"] > now))
    ]
    return {"items": items, "count": len(items)}


@router.delete("/tokens/{token_id}", status_code=204)
async def token_revoke(who: Who, d: D, token_id: str = Path(pattern="^[0-9a-f]{16}$")) -> Response:
    """Revoke a token the caller's unit or a unit below minted (its open streams end within 5 s); another
    unit's token is 404. The call is an ``action`` row of the audit log (its path names the token)."""
    row = await d.store.people.revoke_minted(token_id, _minters(d, who))
    if row is None:
        raise HTTPException(404, "no such token")
    log.info("token_revoked", token_id=token_id, user=row["user_name"], role=row["role"], by=who.user)
    return Response(status_code=204)
