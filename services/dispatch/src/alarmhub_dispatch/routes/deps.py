"""The routes' dependencies: the service parts held in ``app.state`` and the authenticated caller."""

# no "from __future__ import annotations": FastAPI resolves the dependency aliases at definition time

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from ..audit import AuditWriter
from ..auth import Principal, hash_token
from ..service import Dispatcher
from ..units import UnitTree

__all__ = [
    "Audit",
    "D",
    "Who",
    "bearer_token",
    "manages",
    "principal",
    "require_city_supervisor",
    "require_supervisor",
    "visible_incident",
]


def get_dispatcher(request: Request) -> Dispatcher:
    d: Dispatcher = request.app.state.dispatcher
    return d


def get_audit(request: Request) -> AuditWriter:
    a: AuditWriter = request.app.state.audit
    return a


D = Annotated[Dispatcher, Depends(get_dispatcher)]
Audit = Annotated[AuditWriter, Depends(get_audit)]


def bearer_token(request: Request) -> str | None:
    """The bearer token of the call, or ``?access_token=`` (how EventSource authenticates)."""
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth[:7].lower() == "bearer " else request.query_params.get("access_token")


async def principal(request: Request, d: D) -> Principal:
    token = bearer_token(request)
    if not token:
        raise HTTPException(401, "bearer token required", headers={"WWW-Authenticate": "Bearer"})
    rec = await d.store.get_token(hash_token(token))
    if rec is None:
        raise HTTPException(401, "unknown or expired token", headers={"WWW-Authenticate": "Bearer"})
    who = Principal(
        user=rec["user_name"],
        role=rec["role"],
        unit=rec["unit"],
        company=rec["company"],
        scope=rec["scope"] or {},
        address=request.client.host if request.client else None,
    )
    request.state.principal = who  # for the audit middleware
    district = getattr(request.app.state, "backup_district", None)
    if district is not None and not (who.unit is not None and d.tree.covers(district, who.unit)):
        # a district backup serves its district's units only (backup.py)
        raise HTTPException(403, f"read-only district backup: this copy serves district {district} only")
    return who


Who = Annotated[Principal, Depends(principal)]


def require_supervisor(who: Principal) -> None:
    """Called in the route's body (after the request validated), as the routes always did."""
    if who.role != "supervisor":
        raise HTTPException(403, "supervisors only")


def require_city_supervisor(who: Principal, d: Dispatcher) -> None:
    """City-wide registries (the JT/T 809 platforms): the city tier's supervisors only."""
    require_supervisor(who)
    if who.unit is None or not d.tree.is_root(who.unit):
        raise HTTPException(403, "the city tier's supervisors only")


def manages(tree: UnitTree, unit: str, other: str) -> bool:
    """Its own unit and below; the city also manages the external services (119/120)."""
    return tree.covers(unit, other) or (tree.is_root(unit) and tree.service_kinds(other) is not None)


async def visible_incident(d: Dispatcher, who: Principal, incident_id: Any) -> dict[str, Any]:
    row = await d.store.get_incident(None, incident_id)
    if row is None or not who.sees(d.tree, row):
        raise HTTPException(404, "no such incident")  # neighbours' incidents do not exist for the caller
    return row
