"""Who the caller is, and what its role lets the console offer (actions, cameras)."""

# no "from __future__ import annotations": FastAPI resolves the dependency aliases at definition time

from typing import Any

from fastapi import APIRouter

from .deps import Who
from .live import VIEWING_ROLES

__all__ = ["router"]

router = APIRouter()


@router.get("/me")
async def me(who: Who) -> dict[str, Any]:
    """The caller as its token says, and what its role lets the console offer."""
    return {
        "user": who.user,
        "role": who.role,
        "unit": who.unit,
        "company": who.company,
        "can_act": who.can_act,
        "cameras": who.role in VIEWING_ROLES and who.unit is not None,
    }
