"""``/login/oidc``: sign-in through the city's directory (``..oidc``), when ``ALARMHUB_OIDC_ISSUER`` is set.

Public: ``GET /login/options`` says which sign-ins this deployment offers (the console shows the
directory's button only when it is configured). Public (the directory authenticates): ``GET /login/oidc`` redirects to the provider; its callback
``GET /login/oidc/callback?code&state`` answers as ``POST /login`` does — a token for the role and unit the
person's groups map to (403 when none does; 401 when the provider's answer does not verify). Audited as
``login`` / ``login_failed``. Without the setting both answer 404. The sign-in's state, nonce and PKCE
verifier wait in PostgreSQL (``store/oidc.py``): the callback may reach any replica, once.

The console's own flow: ``ALARMHUB_OIDC_REDIRECT_URI`` is the console's address (``https://<dispatch>/``);
the provider sends the browser back there with ``?code&state``, and the console's ``directory.js`` calls
the callback with them and keeps the token as a password sign-in's (never in a URL).
"""

# no "from __future__ import annotations": FastAPI resolves the dependency aliases at definition time

from datetime import datetime, timedelta
from typing import Any

from alarmhub_runtime import get_logger
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse

from ..auth import Principal, hash_token, new_token
from ..oidc import OidcError
from .deps import Audit, D

__all__ = ["router"]

log = get_logger("alarmhub.dispatch.accounts")

router = APIRouter()


@router.get("/login/options")
async def login_options(d: D) -> dict[str, bool]:
    """Which sign-ins are offered here: the password (always) and the city's directory (when configured)."""
    return {"password": True, "oidc": d.oidc is not None}


@router.get("/login/oidc", response_class=RedirectResponse, status_code=302)
async def oidc_start(d: D) -> RedirectResponse:
    """Sign in through the city's directory: a redirect to its authorization endpoint (PKCE, nonce)."""
    if d.oidc is None:
        raise HTTPException(404, "sign-in through the directory is not configured")
    try:
        url = await d.oidc.start()
    except Exception as exc:  # the provider unreachable or misconfigured
        log.error("oidc_start_failed", error=repr(exc))
        raise HTTPException(503, "the directory is unavailable") from exc
    return RedirectResponse(url, status_code=302)


@router.get("/login/oidc/callback")
async def oidc_callback(code: str, state: str, request: Request, d: D, audit: Audit) -> dict[str, Any]:
    """The directory's answer: a bearer token for the role and unit the person's groups map to."""
    if d.oidc is None:
        raise HTTPException(404, "sign-in through the directory is not configured")
    try:
        claims = await d.oidc.finish(code, state)
    except OidcError as exc:
        await audit.for_request("login_failed", None, request, 401, {"oidc": str(exc)})
        log.warning("oidc_login_refused", reason=str(exc))
        raise HTTPException(401, f"directory sign-in refused: {exc}") from exc
    user = f"oidc:{claims.get('preferred_username') or claims['sub']}"[:64]
    mapped = d.oidc.role_unit(claims)
    if mapped is None or mapped[1] not in d.tree:
        await audit.for_request("login_failed", None, request, 403, {"user": user, "oidc": "no group maps"})
        raise HTTPException(403, "none of your directory groups is given a role here")
    role, unit = mapped
    token = new_token()
    expires = datetime.now().astimezone() + timedelta(seconds=d.login_ttl_s)
    await d.store.put_token(hash_token(token), user, role, unit, None, {}, "oidc", expires)
    who = Principal(user=user, role=role, unit=unit)
    await audit.for_request("login", who, request, 200, {"via": "oidc", "sub": str(claims.get("sub"))})
    log.info("login", user=user, role=role, unit=unit, via="oidc")
    return {
        "token": token,
        "user": user,
        "display_name": claims.get("name"),
        "role": role,
        "unit": unit,
        "company": None,
        "expires_at": expires.isoformat(),
    }
