"""A supervisor enrols the second factor (TOTP) from the console's sign-in screen, in Chromium.

Asked for it at sign-in, the supervisor opens the enrolment with the password already typed: the QR code
of the otpauth URI and the key are shown once, a wrong code is refused, the right one confirms it and the
recovery codes are shown once; both leave the page when the person moves on, and the sign-in then takes
the authenticator's next code. A second enrolment is refused (a supervisor of the unit resets it).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import httpx
import pyotp
import pytest
from alarmhub_dispatch.app import DispatchApp
from alarmhub_dispatch.totp import otpauth_uri, recovery_hash

from .test_attack_totp import next_code

CHROMIUM = os.environ.get("ALARMHUB_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path("artifacts/screenshots")
PASSWORD = "night-shift-2026"

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")


async def test_supervisor_enrols_an_authenticator_in_the_console(dispatch: tuple[DispatchApp, str]) -> None:
    app, token = dispatch
    d = app.dispatcher
    assert d is not None
    base = f"http://127.0.0.1:{app.http_port}"
    station = d.router.route(114.0550, 22.5410).station
    user = f"sup-{uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}) as admin:
        body = {
            "user": user,
            "display_name": "主管",
            "password": PASSWORD,
            "role": "supervisor",
            "unit": station,
        }
        assert (await admin.post("/api/v1/people", json=body)).status_code == 201
    os.makedirs(SHOTS, exist_ok=True)
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            await page.goto(base + "/")
            await page.fill("#user", user)
            await page.fill("#password", PASSWORD)
            await page.click("#login-form button[type=submit]")
            await page.wait_for_function(
                "document.querySelector('#login-error').textContent.startsWith('此账户须使用第二因素')"
            )
            assert await page.input_value("#password") == PASSWORD  # kept for the enrolment

            await page.click("#enrol-start")
            await page.wait_for_selector("#enrol-qr svg")
            assert await page.locator("#login").is_hidden()
            shown = (await page.inner_text("#enrol-secret")).replace(" ", "")
            pending = await d.store.p.fetchval("SELECT totp_pending FROM people WHERE user_name=$1", user)
            assert shown == pending
            # the QR code carries the otpauth URI of that secret (drawn again here by the same library)
            uri = otpauth_uri(pending, user, d.totp_issuer)
            same = await page.evaluate(
                "(u) => { const q = qrcode(0, 'M'); q.addData(u); q.make(); const div = document.createElement('div');"
                " div.innerHTML = q.createSvgTag({cellSize: 5, margin: 20});"
                " return div.innerHTML === document.querySelector('#enrol-qr').innerHTML; }",
                uri,
            )
            assert same
            assert pyotp.parse_uri(uri).secret == shown  # type: ignore[union-attr]
            await page.screenshot(path=str(SHOTS / "console-totp-enrol.png"))

            gen = pyotp.TOTP(shown)
            await page.fill("#enrol-code", "000000" if gen.now() != "000000" else "111111")
            await page.click("#enrol-form button[type=submit]")
            await page.wait_for_function(
                "document.querySelector('#enrol-error').textContent.startsWith('验证码错误')"
            )
            await page.fill("#enrol-code", gen.now())
            await page.click("#enrol-form button[type=submit]")
            await page.wait_for_selector("#enrol-recovery:not([hidden])")
            codes = await page.locator("#recovery-codes li").all_inner_texts()
            stored = await d.store.p.fetchval("SELECT totp_recovery FROM people WHERE user_name=$1", user)
            assert len(codes) == 10 and sorted(recovery_hash(c) for c in codes) == sorted(stored)
            assert await page.inner_text("#enrol-secret") == "" and await page.inner_html("#enrol-qr") == ""
            await page.screenshot(path=str(SHOTS / "console-totp-recovery.png"))

            await page.click("#enrol-done")
            await page.wait_for_selector("#otp:visible")
            assert await page.locator("#recovery-codes li").count() == 0  # shown once: gone from the page
            assert (await page.inner_text("#login-error")).startswith("绑定完成")
            await page.fill("#otp", next_code(gen))
            await page.click("#login-form button[type=submit]")
            await page.wait_for_selector("#conn.on", timeout=15_000)
            assert (await page.locator("#who").inner_text()).startswith("主管 · ")

            # enrolled: a second enrolment (someone holding the password) is refused
            await page.click("#logout")
            await page.wait_for_selector("#login:not([hidden])")
            await page.fill("#user", user)
            await page.fill("#password", PASSWORD)
            await page.click("#enrol-start")
            await page.wait_for_function(
                "document.querySelector('#login-error').textContent.startsWith('已绑定身份验证器')"
            )
            assert await page.locator("#enrol").is_hidden()
        finally:
            await browser.close()
