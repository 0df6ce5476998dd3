"""The second factor at sign-in (docs/security.md, "Login"): a stolen password alone no longer signs a
supervisor in.

Before: ``POST /login`` with the right password gave a supervisor's token; MLPS level 3 asks for two
factors. Now supervisors (everyone with ``ALARMHUB_TOTP_REQUIRED=everyone``) enrol an authenticator
(RFC 6238) with their password, and every sign-in needs its code: a used code is refused within its window,
wrong codes are slowed like wrong passwords, recovery codes work once, the secret is never read back, and
only a supervisor of the person's unit resets it (audited, every session ends). Codes come from ``pyotp``.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pyotp
from alarmhub_dispatch.app import DispatchApp
from alarmhub_dispatch.routes.totp import CODE_REQUIRED, ENROL_FIRST

PASSWORD = "correct horse battery staple"


def _client(app: DispatchApp, token: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.http_port}", headers=headers, timeout=20)


async def login(app: DispatchApp, user: str, password: str = PASSWORD, **factor: str) -> httpx.Response:
    async with _client(app) as c:
        return await c.post("/api/v1/login", json={"user": user, "password": password, **factor})


async def enrol(app: DispatchApp, user: str, password: str = PASSWORD) -> tuple[pyotp.TOTP, list[str]]:
    """Enrol an authenticator as a person does (the URI read by pyotp) and confirm it with its code."""
    gen, recovery, _ = await enrol_with_code(app, user, password)
    return gen, recovery


async def enrol_with_code(
    app: DispatchApp, user: str, password: str = PASSWORD
) -> tuple[pyotp.TOTP, list[str], str]:
    """:func:`enrol`, and the code the confirmation used (a used code: refused from then on)."""
    async with _client(app) as c:
        r = await c.post("/api/v1/login/totp/enrol", json={"user": user, "password": password})
        assert r.status_code == 200, r.text
        gen = pyotp.parse_uri(r.json()["otpauth_uri"])
        assert isinstance(gen, pyotp.TOTP) and gen.secret == r.json()["secret"]
        code = gen.now()
        r = await c.post(
            "/api/v1/login/totp/confirm", json={"user": user, "password": password, "code": code}
        )
        assert r.status_code == 200, r.text
    return gen, r.json()["recovery_codes"], code


def next_code(gen: pyotp.TOTP) -> str:
    """The next step's code (accepted within the drift window): enrolment's confirmation used this step's,
    and a used step's code is refused."""
    return gen.at(time.time() + 30)


async def _person(app: DispatchApp, admin: str, role: str, unit: str) -> str:
    user = f"totp.{uuid.uuid4().hex[:8]}"
    async with _client(app, admin) as c:
        r = await c.post(
            "/api/v1/people", json={"user": user, "password": PASSWORD, "role": role, "unit": unit}
        )
        assert r.status_code == 201, r.text
    return user


async def test_supervisor_sign_in_needs_the_second_factor(dispatch: tuple[DispatchApp, str]) -> None:
    app, admin = dispatch
    d = app.dispatcher
    assert d is not None
    station = d.router.route(114.0550, 22.5410).station
    sup = await _person(app, admin, "supervisor", station)
    # the right password alone: enrol first
    first = await login(app, sup)
    assert first.status_code == 403 and first.json()["detail"] == ENROL_FIRST
    async with _client(app) as c:
        wrong_pw = await c.post(
            "/api/v1/login/totp/enrol", json={"user": sup, "password": "a wrong password"}
        )
        assert wrong_pw.status_code == 401
        r = await c.post("/api/v1/login/totp/enrol", json={"user": sup, "password": PASSWORD})
        secret = r.json()["secret"]
        bad = await c.post(
            "/api/v1/login/totp/confirm", json={"user": sup, "password": PASSWORD, "code": "000000"}
        )
        assert bad.status_code == 401
    gen, recovery = await enrol(app, sup)  # a second enrolment before confirming replaces the shown secret
    assert gen.secret != secret and len(recovery) == 10
    async with _client(app) as c:  # enrolled: the authenticator cannot be swapped with the password alone
        again = await c.post("/api/v1/login/totp/enrol", json={"user": sup, "password": PASSWORD})
        assert again.status_code == 409

    missing = await login(app, sup)
    assert missing.status_code == 401 and missing.json()["detail"] == CODE_REQUIRED
    code = next_code(gen)  # the confirming code used this step's
    ok = await login(app, sup, otp=code)
    assert ok.status_code == 200, ok.text
    replayed = await login(app, sup, otp=code)  # the same code, still inside its 30 s window
    assert replayed.status_code == 401
    assert (await login(app, sup, recovery_code=recovery[0])).status_code == 200
    assert (await login(app, sup, recovery_code=recovery[0])).status_code == 401  # used up

    # the secret and the recovery codes are never read back; only hashes of the codes are stored
    async with _client(app, ok.json()["token"]) as c:
        listed = (await c.get("/api/v1/people")).text + (await c.get("/api/v1/me")).text
    assert gen.secret not in listed and recovery[1] not in listed
    row = await d.store.people.get(sup)
    assert row is not None and not any(c in row["totp_recovery"] for c in recovery)
    assert len(row["totp_recovery"]) == 9

    audit = await d.store.p.fetch(
        "SELECT kind, status, detail FROM audit_log WHERE detail->>'user' = $1 OR user_name = $1 ORDER BY id",
        sup,
    )
    kinds = [(r["kind"], r["status"]) for r in audit]
    assert (
        ("login_failed", 403) in kinds and ("login_failed", 401) in kinds and kinds.count(("login", 200)) == 2
    )


async def test_wrong_codes_are_slowed_like_wrong_passwords(dispatch: tuple[DispatchApp, str]) -> None:
    app, admin = dispatch
    assert app.dispatcher is not None
    station = app.dispatcher.router.route(114.0550, 22.5410).station
    sup = await _person(app, admin, "supervisor", station)
    await enrol(app, sup)
    statuses: list[int] = []
    while len(statuses) < 10 and (not statuses or statuses[-1] != 429):
        r = await login(app, sup, otp=f"{len(statuses):06d}")
        statuses.append(r.status_code)
    # three free failures, then the backoff of wrong passwords (1 s, 2 s, 4 s …): refused before checking
    assert statuses[:3] == [401, 401, 401] and statuses[-1] == 429, statuses
    assert int(r.headers["Retry-After"]) > 0


async def test_reset_by_a_supervisor_of_the_unit_only(dispatch: tuple[DispatchApp, str]) -> None:
    app, admin = dispatch
    d = app.dispatcher
    assert d is not None
    station = d.router.route(114.0550, 22.5410).station
    other = next(u for u in d.tree.nodes if d.tree.nodes[u].tier == 3 and u != station)
    sup = await _person(app, admin, "supervisor", station)
    outsider = await _person(app, admin, "supervisor", other)
    dispatcher = await _person(app, admin, "dispatcher", station)
    gen, _ = await enrol(app, sup)
    out_gen, _ = await enrol(app, outsider)
    sup_token = (await login(app, sup, otp=next_code(gen))).json()["token"]
    out_token = (await login(app, outsider, otp=next_code(out_gen))).json()["token"]
    disp_token = (await login(app, dispatcher)).json()["token"]  # dispatchers: password alone by default
    statuses: dict[str, Any] = {}
    for name, token in (("self", sup_token), ("dispatcher", disp_token), ("other unit", out_token)):
        async with _client(app, token) as c:
            statuses[name] = (await c.post(f"/api/v1/people/{sup}/totp/reset")).status_code
    assert statuses == {"self": 403, "dispatcher": 403, "other unit": 404}
    async with _client(app, admin) as c:
        assert (await c.post(f"/api/v1/people/{sup}/totp/reset")).status_code == 204
    async with _client(app, sup_token) as c:  # every session of the person ended
        assert (await c.get("/api/v1/incidents?limit=1")).status_code == 401
    assert (await login(app, sup, otp=next_code(gen))).json()["detail"] == ENROL_FIRST
    row = await d.store.p.fetchrow(
        "SELECT user_name, kind, status FROM audit_log WHERE path = $1 AND status = 204 ORDER BY id DESC LIMIT 1",
        f"/api/v1/people/{sup}/totp/reset",
    )
    assert row is not None and row["kind"] == "action"
    await enrol(app, sup)  # and enrols a new authenticator


async def test_city_policy_everyone(dispatch: tuple[DispatchApp, str]) -> None:
    app, admin = dispatch
    d = app.dispatcher
    assert d is not None
    station = d.router.route(114.0550, 22.5410).station
    dispatcher = await _person(app, admin, "dispatcher", station)
    assert (await login(app, dispatcher)).status_code == 200
    d.totp_required = "everyone"
    try:
        assert (await login(app, dispatcher)).json()["detail"] == ENROL_FIRST
        gen, _ = await enrol(app, dispatcher)
        assert (await login(app, dispatcher, otp=next_code(gen))).status_code == 200
    finally:
        d.totp_required = "supervisors"
    # once enrolled, the code is always asked for
    assert (await login(app, dispatcher)).json()["detail"] == CODE_REQUIRED
