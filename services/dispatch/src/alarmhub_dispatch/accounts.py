"""Per-person accounts behind the bearer tokens: passwords (argon2id), login, logout, and their management.

- A person has a user name, a role and a unit (or an alarm company) and signs in with a password;
  ``POST /api/v1/login`` issues a bearer token carrying exactly that person, role, unit and scope, for
  ``ALARMHUB_LOGIN_TTL_S`` (8 h: one shift). Only the token's SHA-256 is stored, as for minted tokens.
- Passwords are hashed with **argon2id** (argon2-cffi, RFC 9106 "second recommended" parameters:
  64 MiB, 3 passes, 4 lanes), in a worker thread so a login never stalls the event loop. At least 12
  characters, not the user name.
- ``MAX_FAILED`` wrong passwords in a row lock the account for ``LOCK_S``; the answer to a wrong user
  and a wrong password is the same 401 (and takes as long: an unknown user is checked against a dummy
  hash). Locked: 429 with ``Retry-After``.
- Supervisors create people for their unit or below (the city tier for alarm companies), reset their
  passwords and disable them; either revokes every token the person holds. A person changes their own
  password with the current one.
- Every login, failed login and logout lands in the audit log (``audit.py`` records the rest).
"""

# no "from __future__ import annotations": FastAPI resolves the route annotations at definition time

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal

from alarmhub_runtime import get_logger
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

from .auth import Principal, hash_token, new_token

__all__ = ["LOCK_S", "MAX_FAILED", "add_account_routes", "hash_password", "verify_password"]

log = get_logger("alarmhub.dispatch.accounts")

MAX_FAILED = 5
LOCK_S = 900
LOGIN_TTL_S = 8 * 3600
_HASHER = PasswordHasher()  # argon2id, m=64 MiB, t=3, p=4 (RFC 9106 second recommendation)
_DUMMY = _HASHER.hash("alarmhub-dummy-password")
USER_PATTERN = r"^[A-Za-z0-9._@-]{1,64}$"


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored: str, given: str) -> bool:
    try:
        return _HASHER.verify(stored, given)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _check_policy(user: str, password: str) -> None:
    if len(password) < 12 or password.strip().lower() == user.lower():
        raise HTTPException(422, "a password has at least 12 characters and is not the user name")


class LoginRequest(BaseModel):
    user: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class PersonRequest(BaseModel):
    user: str = Field(pattern=USER_PATTERN)
    display_name: str | None = Field(default=None, max_length=128)
    password: str = Field(min_length=12, max_length=256)
    role: Literal["dispatcher", "supervisor", "department", "alarm_company"]
    unit: str | None = None
    company: str | None = Field(default=None, max_length=128)
    scope: dict[str, list[str]] = Field(default_factory=dict)


class PasswordChange(BaseModel):
    new_password: str = Field(min_length=12, max_length=256)
    current_password: str | None = Field(default=None, max_length=256)


def add_account_routes(
    api: APIRouter,
    d: Any,
    who_type: Any,
    supervisor: Callable[[Principal], None],
    manages: Callable[[str, str], bool],
    audit: Callable[..., Any],
    login_ttl_s: int = LOGIN_TTL_S,
) -> None:
    """``/login``, ``/logout`` and ``/people`` on ``api``; ``audit(kind, who_or_none, request, status, detail)``."""
    pool = d.store.p

    def _may_manage(who: Principal, role: str, unit: str | None) -> bool:
        if who.unit is None:
            return False
        if role == "alarm_company":
            return d.tree.is_root(who.unit)
        return unit is not None and manages(who.unit, unit)

    @api.post("/login")
    async def login(req: LoginRequest, request: Request) -> dict[str, Any]:
        """Sign in with a personal account: a bearer token for this person, role and unit (one shift)."""
        address = request.client.host if request.client else None
        row = await pool.fetchrow("SELECT * FROM people WHERE user_name=$1", req.user)
        now = datetime.now().astimezone()
        if row is not None and row["locked_until"] is not None and row["locked_until"] > now:
            await audit("login_failed", None, request, 429, {"user": req.user, "reason": "locked"})
            retry = int((row["locked_until"] - now).total_seconds()) + 1
            raise HTTPException(
                429, "account locked after repeated failed logins", headers={"Retry-After": str(retry)}
            )
        ok = await asyncio.to_thread(verify_password, row["password_hash"] if row else _DUMMY, req.password)
        if row is None or not ok or not row["active"]:
            if row is not None:
                await pool.execute(
                    "UPDATE people SET failed_logins = failed_logins + 1, locked_until = CASE"
                    " WHEN failed_logins + 1 >= $2 THEN now() + make_interval(secs => $3) END WHERE user_name=$1",
                    req.user,
                    MAX_FAILED,
                    LOCK_S,
                )
            await audit("login_failed", None, request, 401, {"user": req.user})
            log.warning("login_failed", user=req.user, address=address)
            raise HTTPException(401, "wrong user name or password")
        token = new_token()
        expires = now + timedelta(seconds=login_ttl_s)
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
        await pool.execute(
            "UPDATE people SET failed_logins=0, locked_until=NULL, last_login_at=now() WHERE user_name=$1",
            req.user,
        )
        who = Principal(
            user=row["user_name"],
            role=row["role"],
            unit=row["unit"],
            company=row["company"],
            scope=row["scope"] or {},
            address=address,
        )
        await audit("login", who, request, 200, {})
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

    @api.post("/logout", status_code=204)
    async def logout(who: who_type, request: Request) -> Response:
        """Revoke the token of this call."""
        auth = request.headers.get("authorization", "")
        token = (
            auth[7:].strip()
            if auth[:7].lower() == "bearer "
            else request.query_params.get("access_token", "")
        )
        await pool.execute("UPDATE api_tokens SET revoked_at=now() WHERE token_sha256=$1", hash_token(token))
        await audit("logout", who, request, 204, {})
        return Response(status_code=204)

    @api.post("/people", status_code=201)
    async def person_create(who: who_type, req: PersonRequest) -> dict[str, Any]:
        supervisor(who)
        if req.role == "alarm_company":
            if not req.company:
                raise HTTPException(422, "an alarm_company account names a company")
            unit, company = None, req.company
        else:
            if not req.unit or req.unit not in d.tree:
                raise HTTPException(422, "unknown unit")
            unit, company = req.unit, None
        if not _may_manage(who, req.role, unit):
            raise HTTPException(403, "a supervisor creates accounts only for its own unit or below")
        _check_policy(req.user, req.password)
        pw = await asyncio.to_thread(hash_password, req.password)
        res = await pool.execute(
            "INSERT INTO people (user_name, display_name, password_hash, role, unit, company, scope, created_by)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT DO NOTHING",
            req.user,
            req.display_name,
            pw,
            req.role,
            unit,
            company,
            req.scope if req.role == "department" else {},
            who.user,
        )
        if res.endswith(" 0"):
            raise HTTPException(409, "that user name is taken")
        return _person_out(
            {
                "user_name": req.user,
                "display_name": req.display_name,
                "role": req.role,
                "unit": unit,
                "company": company,
                "active": True,
            }
        )

    @api.get("/people")
    async def person_list(who: who_type) -> dict[str, Any]:
        supervisor(who)
        rows = await pool.fetch(
            "SELECT user_name, display_name, role, unit, company, active, last_login_at,"
            " locked_until FROM people ORDER BY user_name"
        )
        items = [_person_out(dict(r)) for r in rows if _may_manage(who, r["role"], r["unit"])]
        return {"items": items, "count": len(items)}

    async def _managed(who: Principal, user: str) -> Any:
        row = await pool.fetchrow(
            "SELECT user_name, role, unit, company FROM people WHERE user_name=$1", user
        )
        if row is None or not _may_manage(who, row["role"], row["unit"]):
            raise HTTPException(404, "no such person")
        return row

    @api.post("/people/{user}/password", status_code=204)
    async def person_password(who: who_type, user: str, req: PasswordChange) -> Response:
        """Your own password (with the current one), or a reset by a supervisor of the person's unit."""
        caller: Principal = who
        if caller.user == user:
            row = await pool.fetchrow("SELECT password_hash FROM people WHERE user_name=$1", user)
            if row is None:
                raise HTTPException(404, "no such person")
            if not req.current_password or not await asyncio.to_thread(
                verify_password, row["password_hash"], req.current_password
            ):
                raise HTTPException(403, "the current password is wrong")
        else:
            supervisor(caller)
            await _managed(caller, user)
        _check_policy(user, req.new_password)
        pw = await asyncio.to_thread(hash_password, req.new_password)
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE people SET password_hash=$2, password_changed_at=now(), failed_logins=0,"
                " locked_until=NULL WHERE user_name=$1",
                user,
                pw,
            )
            if caller.user != user:  # a reset ends every session of the person
                await conn.execute(
                    "UPDATE api_tokens SET revoked_at=now() WHERE user_name=$1 AND revoked_at IS NULL", user
                )
        return Response(status_code=204)

    @api.post("/people/{user}/disable", status_code=204)
    async def person_disable(who: who_type, user: str) -> Response:
        supervisor(who)
        await _managed(who, user)
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("UPDATE people SET active=false WHERE user_name=$1", user)
            await conn.execute(
                "UPDATE api_tokens SET revoked_at=now() WHERE user_name=$1 AND revoked_at IS NULL", user
            )
        return Response(status_code=204)


def _person_out(r: dict[str, Any]) -> dict[str, Any]:
    out = {
        "user": r["user_name"],
        "display_name": r.get("display_name"),
        "role": r["role"],
        "unit": r.get("unit"),
        "company": r.get("company"),
        "active": r.get("active", True),
    }
    for k in ("last_login_at", "locked_until"):
        if r.get(k) is not None:
            out[k] = r[k].isoformat()
    return out
