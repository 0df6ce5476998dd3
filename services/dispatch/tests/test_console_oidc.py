"""The console's sign-in through the city's directory (OpenID Connect), in Chromium, against the local
test-only provider of the API's tests (``oidc_provider.TestProvider``, on loopback).

The button shows only when dispatch has the directory configured (``GET /api/v1/login/options``); the
provider sends the browser back to the console (``ALARMHUB_OIDC_REDIRECT_URI`` = the console's address)
with ``?code&state``, which the console takes off the address and trades at the API's callback for a
session like a password sign-in's. A person in none of the mapped groups is told so.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from alarmhub_dispatch.app import DispatchApp
from alarmhub_dispatch.oidc import OidcClient, OidcConfig, parse_groups

from .oidc_provider import TestProvider

CHROMIUM = os.environ.get("ALARMHUB_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path("artifacts/screenshots")
CLIENT = "alarmhub-console"

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")


@pytest_asyncio.fixture
async def provider() -> AsyncIterator[TestProvider]:
    p = TestProvider(CLIENT, {"sub": "0077", "preferred_username": "li.na", "name": "李娜", "groups": []})
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


async def test_console_sign_in_through_the_directory(
    dispatch: tuple[DispatchApp, str], provider: TestProvider
) -> None:
    app, _ = dispatch
    d = app.dispatcher
    assert d is not None
    station = d.router.route(114.0550, 22.5410).station
    base = f"http://127.0.0.1:{app.http_port}"
    os.makedirs(SHOTS, exist_ok=True)
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            # not configured: no button
            await page.goto(base + "/")
            await page.wait_for_selector("#login:not([hidden])")
            await page.wait_for_load_state("networkidle")
            assert await page.locator("#oidc-login").is_hidden()

            groups = parse_groups(f'{{"cn=110-duty": "dispatcher:{station}"}}')
            cfg = OidcConfig(provider.issuer, CLIENT, None, base + "/", groups)
            d.oidc = OidcClient(cfg, d.store.oidc_logins)
            provider.claims["groups"] = ["cn=staff", "cn=110-duty"]
            await page.reload()
            await page.wait_for_selector("#oidc-login:visible")
            await page.screenshot(path=str(SHOTS / "console-signin-directory.png"))
            await page.click("#oidc-login")  # → dispatch → the directory → back to the console
            await page.wait_for_selector("#conn.on", timeout=15_000)
            assert (await page.locator("#who").inner_text()).startswith(f"李娜 · {station}")
            assert page.url == base + "/"  # the code and state are off the address
            token = await page.evaluate("sessionStorage.getItem('alarmhub.token')")
            async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}) as c:
                me = (await c.get("/api/v1/me")).json()
            assert (me["user"], me["role"], me["unit"]) == ("oidc:li.na", "dispatcher", station)

            # signed out, and back as a person in none of the mapped groups: told so, not signed in
            await page.click("#logout")
            await page.wait_for_selector("#oidc-login:visible")
            provider.claims["groups"] = ["cn=staff"]
            await page.click("#oidc-login")
            await page.wait_for_function(
                "document.querySelector('#login-error').textContent.startsWith('您所在的目录组未被授予')",
                timeout=15_000,
            )
            assert await page.evaluate("sessionStorage.getItem('alarmhub.token')") is None
            assert page.url == base + "/"
        finally:
            d.oidc = None
            await browser.close()


async def test_login_options_say_whether_the_directory_is_offered(
    dispatch: tuple[DispatchApp, str], provider: TestProvider
) -> None:
    app, _ = dispatch
    assert app.dispatcher is not None
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.http_port}") as c:
        assert (await c.get("/api/v1/login/options")).json() == {"password": True, "oidc": False}
        cfg = OidcConfig(
            provider.issuer, CLIENT, None, "http://console/", parse_groups('{"g": "dispatcher:x"}')
        )
        app.dispatcher.oidc = OidcClient(cfg, app.dispatcher.store.oidc_logins)
        try:
            assert (await c.get("/api/v1/login/options")).json() == {"password": True, "oidc": True}
        finally:
            app.dispatcher.oidc = None
