"""``/audit``: supervisors read the audit rows of the people of their unit and below."""

# no "from __future__ import annotations": FastAPI resolves the dependency aliases at definition time

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query

from ..audit import since_clause
from .deps import Audit, D, Who, require_supervisor

__all__ = ["router"]

router = APIRouter()


@router.get("/audit")
async def audit_list(
    who: Who,
    d: D,
    writer: Audit,
    user: str | None = None,
    kind: str | None = None,
    since: datetime | None = None,
    limit: int = Query(200, ge=1, le=5000),
) -> dict[str, Any]:
    require_supervisor(who)
    args: list[Any] = []
    where = "true"
    if who.unit is None:
        where = "false"
    elif not d.tree.is_root(who.unit):
        args.append(sorted(d.tree.subtree(who.unit)))
        where = f"unit = ANY(${len(args)}::text[])"
    for col, val in (("user_name", user), ("kind", kind)):
        if val:
            args.append(val)
            where += f" AND {col} = ${len(args)}"
    where += since_clause(since, args)
    items = await writer.query(where, args, limit)
    return {"items": items, "count": len(items)}
