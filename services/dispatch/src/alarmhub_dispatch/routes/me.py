"""Who the caller is, and what its role lets the console offer (actions, cameras)."""

# no "from __future__ import annotations": FastAPI resolves the dependency aliases at definition time

from typing import Any

from fastapi import APIRouter, Request

from .deps import Who
from .live import VIEWING_ROLES

__all__ = ["router"]

router = APIRouter()


@router.get("/me")
async def me(who: Who, request: Request) -> dict[str, Any]:
    """The caller as its token says, and what its role lets the console offer; ``backup``: the district
    whose read-only copy this instance serves (no actions there), else null."""
    backup = getattr(request.app.state, "backup_district", None)
    return {
        "user": who.user,
        "role": who.role,
        "unit": who.unit,
        "company": who.company,
        "can_act": who.can_act and backup is None,
        "backup": backup,
        "cameras": who.role in VIEWING_ROLES and who.unit is not None,
    }
