"""``/registry/platforms``: the JT/T 809 lower-level platforms, supervisors only (the password hashed and
the cipher keys never returned: ``..platforms`` holds the models and the rules)."""

# no "from __future__ import annotations": FastAPI resolves the dependency aliases at definition time

from typing import Any

from alarmhub_runtime import get_logger
from alarmhub_store import hash_password
from fastapi import APIRouter
from fastapi.responses import Response

from ..platforms import PlatformCreate, PlatformUpdate, platform_out, table_row
from .deps import D, Who, require_city_supervisor

__all__ = ["router"]

log = get_logger("alarmhub.dispatch.platforms")

router = APIRouter(tags=["platforms"])


@router.get("/registry/platforms")
async def platforms_list(who: Who, d: D, limit: int = 1000, offset: int = 0) -> dict[str, Any]:
    """JT/T 809 lower-level platforms (supervisors only): never the password nor the cipher keys."""
    require_city_supervisor(who, d)
    rows = await d.store.registry.platforms(max(1, min(limit, 100_000)), max(0, offset))
    items = [platform_out(r) for r in rows]
    return {"items": items, "count": len(items)}


@router.get("/registry/platforms/{user_id}")
async def platforms_get(who: Who, d: D, user_id: int) -> dict[str, Any]:
    require_city_supervisor(who, d)
    return platform_out(await d.store.registry.platform(user_id))


@router.post("/registry/platforms", status_code=201)
async def platforms_create(who: Who, d: D, body: PlatformCreate) -> dict[str, Any]:
    """Register a platform (409 when the user id or the GNSS centre id is taken)."""
    require_city_supervisor(who, d)
    await d.store.registry.create_platform(table_row(body))
    log.info("platform_created", user_id=body.user_id, user=who.user)
    return platform_out(await d.store.registry.platform(body.user_id))


@router.put("/registry/platforms/{user_id}")
async def platforms_update(who: Who, d: D, user_id: int, body: PlatformUpdate) -> dict[str, Any]:
    """Change what is given; a new password is hashed; disabling closes the live link at ingest-gps's
    next registry refresh."""
    require_city_supervisor(who, d)
    given = body.model_fields_set
    changes: list[tuple[str, Any, str]] = []
    if body.password is not None:
        changes.append(("password", hash_password(body.password), ""))
    if body.gnss_center_id is not None:
        changes.append(("gnss_center_id", body.gnss_center_id, ""))
    if "name" in given:
        changes.append(("name", body.name, ""))
    if "encrypt" in given:
        changes.append(("encrypt", body.encrypt.model_dump() if body.encrypt else None, "::jsonb"))
    if body.allowed is not None:
        changes.append(("allowed", body.allowed.model_dump(exclude_none=True), "::jsonb"))
    if body.disabled is not None:
        changes.append(("disabled", body.disabled, ""))
    await d.store.registry.update_platform(user_id, changes)
    log.info("platform_updated", user_id=user_id, fields=sorted(given), user=who.user)
    return platform_out(await d.store.registry.platform(user_id))


def _toggle(flag: bool) -> Any:
    async def toggle(who: Who, d: D, user_id: int) -> dict[str, Any]:
        require_city_supervisor(who, d)
        await d.store.registry.update_platform(user_id, [("disabled", flag, "")])
        log.info("platform_disabled" if flag else "platform_enabled", user_id=user_id, user=who.user)
        return platform_out(await d.store.registry.platform(user_id))

    return toggle


for _action, _flag in (("disable", True), ("enable", False)):
    router.add_api_route(
        f"/registry/platforms/{{user_id}}/{_action}",
        _toggle(_flag),
        methods=["POST"],
        name=f"platforms_{_action}",
        summary=f"{_action.capitalize()} a platform (its logins are "
        f"{'refused with 0x1002 result 0x06' if _flag else 'accepted again'})",
    )


@router.delete("/registry/platforms/{user_id}", status_code=204)
async def platforms_delete(who: Who, d: D, user_id: int) -> Response:
    require_city_supervisor(who, d)
    await d.store.registry.delete_platform(user_id)
    log.info("platform_deleted", user_id=user_id, user=who.user)
    return Response(status_code=204)
