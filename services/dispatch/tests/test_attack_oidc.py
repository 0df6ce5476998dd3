"""Sign-in through the city's directory (OpenID Connect, docs/security.md) against a local provider.

The provider is ``oidc_provider.TestProvider`` (test-only, on loopback, written here from the
specifications; no PyPI provider was installed). The flow is the browser's, step by step: dispatch
redirects to the provider with PKCE (S256), a nonce and a state; the provider redirects back with a code;
dispatch exchanges it and checks the id_token (RS256 against the JWKS, issuer, audience, expiry, nonce)
and maps the person's groups to a role and unit. Each way a forged or stale answer was tried is refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import pytest_asyncio
from alarmhub_dispatch.app import DispatchApp
from alarmhub_dispatch.config import DispatchSettings
from alarmhub_dispatch.oidc import OidcClient, OidcConfig, parse_groups
from prometheus_client import CollectorRegistry

from .oidc_provider import TestProvider

CLIENT = "alarmhub-dispatch"


@pytest_asyncio.fixture
async def provider() -> AsyncIterator[TestProvider]:
    p = TestProvider(CLIENT, {"sub": "0042", "preferred_username": "zhang.wei", "name": "张伟", "groups": []})
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


async def _flow(base: str, *, state_from: str | None = None) -> httpx.Response:
    """The browser's round trip: dispatch → provider → dispatch's callback (optionally with another state)."""
    async with httpx.AsyncClient(timeout=20) as browser:
        start = await browser.get(f"{base}/api/v1/login/oidc")
        assert start.status_code == 302, start.text
        back = await browser.get(start.headers["location"])
        assert back.status_code == 302, back.text
        callback = back.headers["location"]
        if state_from is not None:
            code = parse_qs(urlsplit(callback).query)["code"][0]
            callback = f"{base}/api/v1/login/oidc/callback?code={code}&state={state_from}"
        return await browser.get(callback)


async def test_directory_sign_in_and_forged_answers(
    dispatch: tuple[DispatchApp, str], provider: TestProvider
) -> None:
    app, _ = dispatch
    d = app.dispatcher
    assert d is not None
    station = d.router.route(114.0550, 22.5410).station
    base = f"http://127.0.0.1:{app.http_port}"
    groups = parse_groups(
        f'{{"cn=110-duty,ou=police": "dispatcher:{station}", "cn=ops": "supervisor:{station}"}}'
    )
    d.oidc = OidcClient(
        OidcConfig(provider.issuer, CLIENT, None, f"{base}/api/v1/login/oidc/callback", groups),
        d.store.oidc_logins,
    )
    provider.claims["groups"] = ["cn=staff", "cn=110-duty,ou=police"]
    try:
        async with httpx.AsyncClient(timeout=20) as browser:
            start = await browser.get(f"{base}/api/v1/login/oidc")
        query = parse_qs(urlsplit(start.headers["location"]).query)
        assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
        assert query["nonce"][0] and query["state"][0] and query["client_id"] == [CLIENT]

        ok = await _flow(base)
        assert ok.status_code == 200, ok.text
        body = ok.json()
        assert (body["user"], body["role"], body["unit"]) == ("oidc:zhang.wei", "dispatcher", station)
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {body['token']}"}
        ) as c:
            me = await c.get("/api/v1/me")
            assert me.status_code == 200 and me.json()["role"] == "dispatcher", me.text

        refused: dict[str, Any] = {}
        for tamper in ("audience", "expired", "nonce", "key", "hs256"):
            provider.tamper = tamper
            r = await _flow(base)
            refused[tamper] = (r.status_code, r.json()["detail"])
        provider.tamper = None
        assert {k: v[0] for k, v in refused.items()} == dict.fromkeys(refused, 401)
        assert "audience" in refused["audience"][1] and "expired" in refused["expired"][1]
        assert "nonce" in refused["nonce"][1] and "signature" in refused["key"][1]
        assert "RS256 only" in refused["hs256"][1]

        # a code obtained for one sign-in, presented with another's state: the PKCE verifier does not match
        async with httpx.AsyncClient(timeout=20) as browser:
            other = await browser.get(f"{base}/api/v1/login/oidc")
        other_state = parse_qs(urlsplit(other.headers["location"]).query)["state"][0]
        crossed = await _flow(base, state_from=other_state)
        assert crossed.status_code == 401 and "refused the code" in crossed.json()["detail"]
        # the same callback twice: the state is good once
        async with httpx.AsyncClient(timeout=20) as browser:
            start = await browser.get(f"{base}/api/v1/login/oidc")
            back = await browser.get(start.headers["location"])
            first = await browser.get(back.headers["location"])
            again = await browser.get(back.headers["location"])
        assert first.status_code == 200 and again.status_code == 401

        provider.claims["groups"] = ["cn=staff"]  # in none of the table's groups
        nobody = await _flow(base)
        assert nobody.status_code == 403
    finally:
        d.oidc = None
    async with httpx.AsyncClient(timeout=20) as browser:
        assert (await browser.get(f"{base}/api/v1/login/oidc")).status_code == 404
    rows = await d.store.p.fetch(
        "SELECT kind, status FROM audit_log WHERE path LIKE '/api/v1/login/oidc%' AND (user_name = 'oidc:zhang.wei'"
        " OR detail ? 'oidc') ORDER BY id DESC LIMIT 50"
    )
    assert ("login", 200) in [(r["kind"], r["status"]) for r in rows]
    assert ("login_failed", 401) in [(r["kind"], r["status"]) for r in rows]


async def test_a_sign_in_started_on_one_replica_finishes_on_another_once(
    dispatch: tuple[DispatchApp, str], provider: TestProvider
) -> None:
    """Two dispatch replicas behind one address: the callback reaches the other replica than the start (it
    was refused as an unknown state when the state was kept per process); it is good once on either; a
    state past its 10 minutes is refused; the state itself is not stored (its SHA-256 is)."""
    a, _ = dispatch
    b = DispatchApp(a.settings, CollectorRegistry())  # the second replica: same settings, same database
    await b.start()
    base_a, base_b = f"http://127.0.0.1:{a.http_port}", f"http://127.0.0.1:{b.http_port}"
    assert a.dispatcher is not None and b.dispatcher is not None
    station = a.dispatcher.router.route(114.0550, 22.5410).station
    cfg = OidcConfig(
        provider.issuer,
        CLIENT,
        None,
        f"{base_a}/api/v1/login/oidc/callback",
        parse_groups(f'{{"cn=110-duty": "dispatcher:{station}"}}'),
    )
    for app in (a, b):
        assert app.dispatcher is not None
        app.dispatcher.oidc = OidcClient(cfg, app.dispatcher.store.oidc_logins)
    provider.claims["groups"] = ["cn=110-duty"]
    try:
        async with httpx.AsyncClient(timeout=20) as browser:
            start = await browser.get(f"{base_a}/api/v1/login/oidc")
            state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
            stored = await a.dispatcher.store.p.fetchval(
                "SELECT count(*) FROM oidc_logins WHERE state_sha256 = $1 OR nonce = $1 OR code_verifier = $1",
                state,
            )
            assert stored == 0
            back = (await browser.get(start.headers["location"])).headers["location"]
            on_b = await browser.get(back.replace(base_a, base_b))  # the balancer sent it to replica B
            again_a = await browser.get(back)
            again_b = await browser.get(back.replace(base_a, base_b))
        assert on_b.status_code == 200, on_b.text
        assert on_b.json()["role"] == "dispatcher" and on_b.json()["unit"] == station
        assert again_a.status_code == 401 and "used" in again_a.json()["detail"]
        assert again_b.status_code == 401

        async with httpx.AsyncClient(timeout=20) as browser:
            start = await browser.get(f"{base_b}/api/v1/login/oidc")
            back = (await browser.get(start.headers["location"])).headers["location"]
            await a.dispatcher.store.p.execute(  # eleven minutes later
                "UPDATE oidc_logins SET expires_at = now() - interval '1 minute'"
                " WHERE state_sha256 = encode(sha256($1::bytea), 'hex')",
                parse_qs(urlsplit(back).query)["state"][0].encode(),
            )
            late = await browser.get(back)
        assert late.status_code == 401 and "expired" in late.json()["detail"]
    finally:
        a.dispatcher.oidc = None
        await b.stop()


def test_settings_need_the_whole_configuration() -> None:
    base = {"ALARMHUB_OIDC_ISSUER": "https://sso.example.gov.cn", "ALARMHUB_OIDC_CLIENT_ID": "x"}
    with pytest.raises(ValueError, match="ALARMHUB_OIDC_REDIRECT_URI"):
        DispatchSettings(**base)
    with pytest.raises(ValueError, match="role one of"):
        DispatchSettings(
            **base,
            ALARMHUB_OIDC_REDIRECT_URI="https://dispatch/api/v1/login/oidc/callback",
            ALARMHUB_OIDC_GROUPS='{"cn=x": "root:S1"}',
        )
