"""The console in a real browser (Playwright driving Debian's Chromium at /usr/bin/chromium).

An alarm decision published on ``alarms.triaged`` appears on the station's console without a reload,
is acknowledged and closed there; screenshots are kept in ``artifacts/screenshots/``. Skipped when
Playwright or the system Chromium is not installed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from alarmhub_dispatch.app import DispatchApp

from .conftest import triaged
from .test_service import _client, _mint, _publish

CHROMIUM = os.environ.get("ALARMHUB_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path("artifacts/screenshots")

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")


async def test_alarm_appears_live_and_is_acknowledged_and_closed(dispatch: tuple[DispatchApp, str], stack: Any,
                                                                 topic_prefix: str) -> None:
    app, token = dispatch
    t = triaged(device="L7#2468")
    station = app.dispatcher.router.route(114.0550, 22.5410).station  # type: ignore[union-attr]
    async with _client(app, token) as admin:
        station_tok = await _mint(admin, user="officer-zhao", unit=station, role="dispatcher", ttl_s=600)
    os.makedirs(SHOTS, exist_ok=True)
    base = f"http://127.0.0.1:{app.http_port}"
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                           args=["--no-sandbox", "--disable-gpu"])
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            await page.goto(f"{base}/?access_token={station_tok}")
            await page.wait_for_selector("#conn.on", timeout=10_000)          # live stream connected
            assert "access_token" not in page.url                              # token not left in the bar
            assert await page.locator("h1").inner_text() == "警情调度台"        # Chinese by default
            await page.wait_for_selector("#map .leaflet-interactive", timeout=10_000)
            await page.screenshot(path=str(SHOTS / "dispatch-1-signed-in.png"))

            await _publish(stack, topic_prefix, [t])                           # no reload from here on
            row = page.locator(f'tr[data-id="{t.incident_id}"]')
            await row.wait_for(timeout=20_000)
            assert "L7#2468" in await row.inner_text()
            await page.screenshot(path=str(SHOTS / "dispatch-2-alarm-arrived.png"))

            await row.locator('button[data-act="ack"]').click()
            await page.wait_for_function(
                f'document.querySelector(\'tr[data-id="{t.incident_id}"] .status\').textContent === "已接警"',
                timeout=10_000)
            await page.screenshot(path=str(SHOTS / "dispatch-3-acknowledged.png"))

            row = page.locator(f'tr[data-id="{t.incident_id}"]')
            await row.locator("select[data-verdict]").select_option("genuine")
            await row.locator('button[data-act="close"]').click()
            await row.wait_for(state="detached", timeout=10_000)                  # closed leave the queue
            await page.check("#show-closed")
            closed = page.locator(f'tr[data-id="{t.incident_id}"]')
            assert "已结束" in await closed.inner_text()

            await page.click("#lang")                                             # the English switch
            assert await page.locator("h1").inner_text() == "Dispatch console"
            await page.screenshot(path=str(SHOTS / "dispatch-4-closed-english.png"))
        finally:
            await browser.close()

    async with _client(app, token) as admin:
        detail = (await admin.get(f"/api/v1/incidents/{t.incident_id}")).json()
    assert detail["status"] == "closed" and detail["verdict"] == "genuine"
    assert [e["actor"]["user"] for e in detail["timeline"] if e["type"] in ("acknowledged", "closed")] == \
        ["officer-zhao", "officer-zhao"]
