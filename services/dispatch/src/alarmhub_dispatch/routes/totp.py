"""The second factor of a password sign-in (TOTP, ``..totp``): enrolment, the check at login, the reset.

Who may call what (docs/security.md):

- ``POST /login/totp/enrol`` and ``/login/totp/confirm``: anyone who knows the person's password (the
  same rate limits and backoff as ``/login``), only while the person has no second factor — a confirmed
  one is replaced only after a supervisor's reset, so a stolen password cannot swap the authenticator;
- ``POST /people/{user}/totp/reset`` (``people.py``): a supervisor of the person's unit or above (not their
  own), audited; every session of the person ends.

Required for supervisors (every supervisor administers), and for everyone with
``ALARMHUB_TOTP_REQUIRED=everyone``; others may enrol and then always need it.
"""

# no "from __future__ import annotations": FastAPI resolves the dependency aliases at definition time

import asyncio
import time
from typing import Any

from alarmhub_runtime import get_logger
from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from .. import totp
from ..accounts import DUMMY_HASH, LoginRequest, verify_password
from ..service import Dispatcher
from .deps import Audit, D

__all__ = ["CODE_REQUIRED", "ENROL_FIRST", "router", "second_factor", "totp_required"]

log = get_logger("alarmhub.dispatch.accounts")

router = APIRouter()

CODE_REQUIRED = "one-time code required"
ENROL_FIRST = "a second factor is required: enrol one (POST /api/v1/login/totp/enrol)"
WRONG_CODE = "wrong or used one-time code"


def totp_required(policy: str, role: str) -> bool:
    return policy == "everyone" or role == "supervisor"


def _address(d: Dispatcher, request: Request) -> str:
    peer = request.client.host if request.client else "unknown"
    return d.trusted_proxies.client(peer, request.headers.get("x-forwarded-for"))


async def _refused(
    d: Dispatcher,
    user: str,
    address: str,
    request: Request,
    audit: Audit,
    status: int,
    reason: str,
    text: str,
) -> HTTPException:
    d.login_guard.failed(user, address, time.monotonic())
    await audit.for_request("login_failed", None, request, status, {"user": user, "reason": reason})
    log.warning("login_failed", user=user, address=address, reason=reason)
    return HTTPException(status, text)


async def second_factor(
    d: Dispatcher, row: Any, req: LoginRequest, request: Request, audit: Audit, address: str
) -> str | None:
    """After a right password: None when no second factor applies, else how it was given; raises when
    it is required and missing or wrong (wrong codes count as failed logins: the same backoff)."""
    user = row["user_name"]
    if row["totp_enabled_at"] is None:
        if not totp_required(d.totp_required, row["role"]):
            return None
        await audit.for_request(
            "login_failed", None, request, 403, {"user": user, "reason": "totp_not_enrolled"}
        )
        raise HTTPException(403, ENROL_FIRST)
    if req.otp:
        step = totp.verify(row["totp_secret"], req.otp, time.time(), row["totp_last_step"])
        if step is not None and await d.store.people.totp_use_step(user, step):
            return "totp"
        raise await _refused(d, user, address, request, audit, 401, "totp_refused", WRONG_CODE)
    if req.recovery_code:
        if await d.store.people.totp_use_recovery(user, totp.recovery_hash(req.recovery_code)):
            log.warning("login_recovery_code_used", user=user, address=address)
            return "recovery_code"
        raise await _refused(d, user, address, request, audit, 401, "recovery_code_refused", WRONG_CODE)
    raise HTTPException(401, CODE_REQUIRED, headers={"WWW-Authenticate": 'TOTP realm="alarmhub"'})


async def _password(d: Dispatcher, user: str, password: str, request: Request, audit: Audit) -> Any:
    """The person's row when the password is right (limits and backoff as ``/login``), else 401/429."""
    address = _address(d, request)
    wait = d.login_guard.check(user, address, time.monotonic())
    if wait is not None:
        await audit.for_request("login_failed", None, request, 429, {"user": user, "reason": "rate_limited"})
        raise HTTPException(
            429,
            "too many login attempts from this address, wait",
            headers={"Retry-After": str(int(wait) + 1)},
        )
    row = await d.store.people.get(user)
    ok = await asyncio.to_thread(verify_password, row["password_hash"] if row else DUMMY_HASH, password)
    if row is None or not ok or not row["active"]:
        raise await _refused(d, user, address, request, audit, 401, "password", "wrong user name or password")
    return row


class EnrolRequest(BaseModel):
    user: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class ConfirmRequest(EnrolRequest):
    code: str = Field(min_length=6, max_length=8, pattern=r"^\s*\d{6}\s*$")


@router.post("/login/totp/enrol")
async def totp_enrol(req: EnrolRequest, request: Request, d: D, audit: Audit) -> dict[str, Any]:
    """A new secret for the person's authenticator, shown this once (confirm it with a code)."""
    row = await _password(d, req.user, req.password, request, audit)
    secret = totp.new_secret()
    if not await d.store.people.totp_begin(row["user_name"], secret):
        raise HTTPException(409, "a second factor is enrolled; a supervisor of your unit resets it")
    await audit.for_request("action", None, request, 200, {"user": row["user_name"], "totp": "enrol"})
    return {
        "secret": secret,
        "otpauth_uri": totp.otpauth_uri(secret, row["user_name"], d.totp_issuer),
        "digits": totp.DIGITS,
        "period_s": totp.STEP_S,
        "algorithm": "SHA1",
    }


@router.post("/login/totp/confirm")
async def totp_confirm(req: ConfirmRequest, request: Request, d: D, audit: Audit) -> dict[str, Any]:
    """The first code from the authenticator: the second factor is on; the recovery codes, shown once."""
    row = await _password(d, req.user, req.password, request, audit)
    pending = row["totp_pending"]
    if row["totp_enabled_at"] is not None or not pending:
        raise HTTPException(409, "nothing to confirm: enrol first")
    step = totp.verify(pending, req.code, time.time(), 0)
    if step is None:
        raise await _refused(
            d, req.user, _address(d, request), request, audit, 401, "totp_refused", WRONG_CODE
        )
    codes, hashes = totp.new_recovery_codes()
    if not await d.store.people.totp_confirm(row["user_name"], pending, step, hashes):
        raise HTTPException(409, "the enrolment changed meanwhile: enrol again")
    await audit.for_request("action", None, request, 200, {"user": row["user_name"], "totp": "confirmed"})
    log.info("totp_enrolled", user=row["user_name"])
    return {"enabled": True, "recovery_codes": codes}
