"""``/login``, ``/logout`` and ``/people``: personal accounts (the rules are in ``..accounts``)."""

# no "from __future__ import annotations": FastAPI resolves the dependency aliases at definition time

import asyncio
import time
from datetime import datetime, timedelta
from typing import Any

from alarmhub_runtime import get_logger
from fastapi import APIRouter, HTTPException, Request, Response

from ..accounts import (
    DUMMY_HASH,
    LoginRequest,
    PasswordChange,
    PersonRequest,
    check_policy,
    hash_password,
    person_out,
    verify_password,
)
from ..auth import Principal, hash_token, new_token
from ..service import Dispatcher
from .deps import Audit, D, Who, bearer_token, manages, require_supervisor
from .totp import second_factor

__all__ = ["router"]

log = get_logger("alarmhub.dispatch.accounts")

router = APIRouter()

#: failed logins are counted in ``people.failed_logins`` but never lock the account (docs/security.md)
NEVER_LOCK = 2**31 - 1


def _may_manage(d: Dispatcher, who: Principal, role: str, unit: str | None) -> bool:
    if who.unit is None:
        return False
    if role == "alarm_company":
        return d.tree.is_root(who.unit)
    return unit is not None and manages(d.tree, who.unit, unit)


async def _refuse_limited(
    d: Dispatcher, req: LoginRequest, request: Request, audit: Audit, source: str
) -> None:
    """Backoff per user and source, rate per source (``..login_guard``): no account is ever locked."""
    wait = d.login_guard.check(req.user, source, time.monotonic())
    if wait is not None:
        await audit.for_request(
            "login_failed", None, request, 429, {"user": req.user, "reason": "rate_limited"}
        )
        raise HTTPException(
            429,
            "too many login attempts from this address, wait",
            headers={"Retry-After": str(int(wait) + 1)},
        )


@router.post("/login")
async def login(req: LoginRequest, request: Request, d: D, audit: Audit) -> dict[str, Any]:
    """Sign in with a personal account: a bearer token for this person, role and unit (one shift)."""
    peer = request.client.host if request.client else "unknown"
    address = d.trusted_proxies.client(peer, request.headers.get("x-forwarded-for"))
    await _refuse_limited(d, req, request, audit, address)
    row = await d.store.people.get(req.user)
    now = datetime.now().astimezone()
    ok = await asyncio.to_thread(verify_password, row["password_hash"] if row else DUMMY_HASH, req.password)
    if row is None or not ok or not row["active"]:
        d.login_guard.failed(req.user, address, time.monotonic())
        if row is not None:
            await d.store.people.login_failed(req.user, NEVER_LOCK, 0)  # counted for the people list
        await audit.for_request("login_failed", None, request, 401, {"user": req.user})
        log.warning("login_failed", user=req.user, address=address)
        raise HTTPException(401, "wrong user name or password")
    factor = await second_factor(d, row, req, request, audit, address)
    d.login_guard.succeeded(req.user, address)
    token = new_token()
    expires = now + timedelta(seconds=d.login_ttl_s)  # ALARMHUB_LOGIN_TTL_S
    await d.store.put_token(
        hash_token(token),
        row["user_name"],
        row["role"],
        row["unit"],
        row["company"],
        row["scope"] or {},
        "login",
        expires,
    )
    await d.store.people.login_succeeded(req.user)
    who = Principal(
        user=row["user_name"],
        role=row["role"],
        unit=row["unit"],
        company=row["company"],
        scope=row["scope"] or {},
        address=address,
    )
    await audit.for_request("login", who, request, 200, {"second_factor": factor} if factor else {})
    log.info("login", user=row["user_name"], role=row["role"], unit=row["unit"], address=address)
    return {
        "token": token,
        "user": row["user_name"],
        "display_name": row["display_name"],
        "role": row["role"],
        "unit": row["unit"],
        "company": row["company"],
        "expires_at": expires.isoformat(),
    }


@router.post("/logout", status_code=204)
async def logout(who: Who, d: D, audit: Audit, request: Request) -> Response:
    """Revoke the token of this call."""
    await d.store.people.revoke_token(hash_token(bearer_token(request) or ""))
    await audit.for_request("logout", who, request, 204, {})
    return Response(status_code=204)


@router.post("/people", status_code=201)
async def person_create(who: Who, d: D, req: PersonRequest) -> dict[str, Any]:
    require_supervisor(who)
    if req.role == "alarm_company":
        if not req.company:
            raise HTTPException(422, "an alarm_company account names a company")
        unit, company = None, req.company
    else:
        if not req.unit or req.unit not in d.tree:
            raise HTTPException(422, "unknown unit")
        unit, company = req.unit, None
    if not _may_manage(d, who, req.role, unit):
        raise HTTPException(403, "a supervisor creates accounts only for its own unit or below")
    check_policy(req.user, req.password)
    pw = await asyncio.to_thread(hash_password, req.password)
    scope = req.scope if req.role == "department" else {}
    if not await d.store.people.create(
        req.user, req.display_name, pw, req.role, unit, company, scope, who.user
    ):
        raise HTTPException(409, "that user name is taken")
    return person_out(
        {
            "user_name": req.user,
            "display_name": req.display_name,
            "role": req.role,
            "unit": unit,
            "company": company,
            "active": True,
        }
    )


@router.get("/people")
async def person_list(who: Who, d: D) -> dict[str, Any]:
    require_supervisor(who)
    rows = await d.store.people.all()
    items = [person_out(r) for r in rows if _may_manage(d, who, r["role"], r["unit"])]
    return {"items": items, "count": len(items)}


async def _managed(d: Dispatcher, who: Principal, user: str) -> Any:
    row = await d.store.people.brief(user)
    if row is None or not _may_manage(d, who, row["role"], row["unit"]):
        raise HTTPException(404, "no such person")
    return row


@router.post("/people/{user}/password", status_code=204)
async def person_password(who: Who, d: D, user: str, req: PasswordChange) -> Response:
    """Your own password (with the current one), or a reset by a supervisor of the person's unit."""
    if who.user == user:
        row = await d.store.people.password_hash(user)
        if row is None:
            raise HTTPException(404, "no such person")
        if not req.current_password or not await asyncio.to_thread(
            verify_password, row["password_hash"], req.current_password
        ):
            raise HTTPException(403, "the current password is wrong")
    else:
        require_supervisor(who)
        await _managed(d, who, user)
    check_policy(user, req.new_password)
    pw = await asyncio.to_thread(hash_password, req.new_password)
    # a reset ends every session of the person
    await d.store.people.set_password(user, pw, end_sessions=who.user != user)
    d.login_guard.clear_user(user)
    return Response(status_code=204)


@router.post("/people/{user}/disable", status_code=204)
async def person_disable(who: Who, d: D, user: str) -> Response:
    require_supervisor(who)
    await _managed(d, who, user)
    await d.store.people.disable(user)
    return Response(status_code=204)


@router.post("/people/{user}/totp/reset", status_code=204)
async def person_totp_reset(who: Who, d: D, user: str) -> Response:
    """Supervisor of the person's unit or above, not for themselves: the second factor and recovery codes
    are removed (the person enrols again) and every session of the person ends (audited as an action)."""
    require_supervisor(who)
    if who.user == user:
        raise HTTPException(403, "another supervisor of your unit or above resets your second factor")
    await _managed(d, who, user)
    await d.store.people.totp_reset(user)
    d.login_guard.clear_user(user)
    log.warning("totp_reset", user=user, by=who.user)
    return Response(status_code=204)
