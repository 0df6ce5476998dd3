"""The console in a real browser (Playwright driving Debian's Chromium at /usr/bin/chromium).

An alarm decision published on ``alarms.triaged`` appears on the station's console without a reload,
is acknowledged and closed there; screenshots are kept in ``artifacts/screenshots/``. Skipped when
Playwright or the system Chromium is not installed.
"""

from __future__ import annotations

import asyncio
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


async def test_alarm_appears_live_and_is_acknowledged_and_closed(
    dispatch: tuple[DispatchApp, str], stack: Any, topic_prefix: str
) -> None:
    app, token = dispatch
    t = triaged(device="L7#2468")
    station = app.dispatcher.router.route(114.0550, 22.5410).station  # type: ignore[union-attr]
    async with _client(app, token) as admin:
        station_tok = await _mint(admin, user="officer-zhao", unit=station, role="dispatcher", ttl_s=600)
    os.makedirs(SHOTS, exist_ok=True)
    base = f"http://127.0.0.1:{app.http_port}"
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            await page.goto(f"{base}/?access_token={station_tok}")
            await page.wait_for_selector("#conn.on", timeout=10_000)  # live stream connected
            assert "access_token" not in page.url  # token not left in the bar
            assert await page.locator("h1").inner_text() == "警情调度台"  # Chinese by default
            await page.wait_for_selector("#map .leaflet-interactive", timeout=10_000)
            await page.screenshot(path=str(SHOTS / "dispatch-1-signed-in.png"))

            await _publish(stack, topic_prefix, [t])  # no reload from here on
            row = page.locator(f'tr[data-id="{t.incident_id}"]')
            await row.wait_for(timeout=20_000)
            assert "L7#2468" in await row.inner_text()
            await page.screenshot(path=str(SHOTS / "dispatch-2-alarm-arrived.png"))

            await row.locator('button[data-act="ack"]').click()
            await page.wait_for_function(
                f'document.querySelector(\'tr[data-id="{t.incident_id}"] .status\').textContent === "已接警"',
                timeout=10_000,
            )
            await page.screenshot(path=str(SHOTS / "dispatch-3-acknowledged.png"))

            row = page.locator(f'tr[data-id="{t.incident_id}"]')
            await row.locator('button[data-act="details"]').click()  # closing is in the incident view
            await page.click('#detail button[data-run="close"]')
            await page.select_option("#act-dialog select[name=verdict]", "genuine")
            await page.click('#act-dialog button[value="send"]')
            await row.wait_for(state="detached", timeout=10_000)  # closed leave the queue
            await page.check("#show-closed")
            closed = page.locator(f'tr[data-id="{t.incident_id}"]')
            assert "已结束" in await closed.inner_text()

            await page.click("#lang")  # the English switch
            assert await page.locator("h1").inner_text() == "Dispatch console"
            await page.screenshot(path=str(SHOTS / "dispatch-4-closed-english.png"))
        finally:
            await browser.close()

    async with _client(app, token) as admin:
        detail = (await admin.get(f"/api/v1/incidents/{t.incident_id}")).json()
    assert detail["status"] == "closed" and detail["verdict"] == "genuine"
    assert [e["actor"]["user"] for e in detail["timeline"] if e["type"] in ("acknowledged", "closed")] == [
        "officer-zhao",
        "officer-zhao",
    ]


async def test_report_pages(dispatch: tuple[DispatchApp, str], stack: Any, topic_prefix: str) -> None:
    """The district's report pages: ack times, false alarms, device online rates, cameras against the plan."""
    from datetime import timedelta

    from alarmhub_events import DEVICES_STATUS, DeviceStatus, DeviceStatusKind, Protocol, utcnow
    from alarmhub_kafka import DurableProducer, KafkaMetrics
    from prometheus_client import CollectorRegistry

    app, token = dispatch
    genuine, false = triaged(device="L7#3571"), triaged(device="L7#3572", lat=22.5450, lon=114.0600)
    await _publish(stack, topic_prefix, [genuine, false])
    now = utcnow()
    async with _client(app, token) as admin:
        for i in range(2):
            r = await admin.post(
                "/api/v1/registry/cameras",
                json={
                    "id": f"rep-cam-{i}",
                    "name": f"福田 {i}",
                    "lat": 22.54,
                    "lon": 114.05,
                    "unit": "440304-S01",
                },
            )
            assert r.status_code == 201
        for inc, verdict in ((genuine, "genuine"), (false, "false_alarm")):
            for _ in range(100):
                if (await admin.get(f"/api/v1/incidents/{inc.incident_id}")).status_code == 200:
                    break
                await asyncio.sleep(0.1)
            assert (await admin.post(f"/api/v1/incidents/{inc.incident_id}/ack")).status_code == 200
            assert (
                await admin.post(f"/api/v1/incidents/{inc.incident_id}/close", json={"verdict": verdict})
            ).status_code == 200
        producer = DurableProducer(
            stack.kafka_bootstrap,
            metrics=KafkaMetrics(CollectorRegistry()),
            client_id="t",
            topic_prefix=topic_prefix,
            service="test",
        )
        await producer.start()
        await producer.send_many(
            [
                (
                    DEVICES_STATUS,
                    DeviceStatus(
                        device_id=f"rep-cam-{i}",
                        protocol=Protocol.GB28181,
                        status=st,
                        occurred_at=now + timedelta(seconds=i),
                        received_at=now,
                    ),
                    f"rep-cam-{i}",
                )
                for i, st in enumerate((DeviceStatusKind.ONLINE, DeviceStatusKind.OFFLINE))
            ]
        )
        await producer.stop()
        for _ in range(100):
            rows = (await admin.get("/api/v1/reports/devices?kind=camera")).json()["items"]
            if any(r["district"] == "440304" and r["devices"] >= 2 for r in rows):
                break
            await asyncio.sleep(0.1)
        district_tok = await _mint(admin, user="futian-chief", unit="440304", role="supervisor", ttl_s=600)

    os.makedirs(SHOTS, exist_ok=True)
    base = f"http://127.0.0.1:{app.http_port}"
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
            await page.goto(f"{base}/?access_token={district_tok}")
            await page.wait_for_selector("#conn.on", timeout=10_000)
            await page.click("#nav-reports")  # from the queue to the reports
            await page.wait_for_selector("#rep-cameras table", timeout=10_000)
            await page.wait_for_selector("#rep-ack table", timeout=10_000)
            assert await page.locator("#reports-title").inner_text() == "统计报表"
            assert await page.locator("#queue-section").is_hidden()
            ack = await page.locator("#rep-ack table").inner_text()
            assert "福田区" in ack and "90 分位" in ack
            assert "dc09-cid" in await page.locator("#rep-false table").inner_text()
            # the pages show what the API computes (other tests of the session add to the same district)
            async with _client(app, district_tok) as c:
                fa = (await c.get("/api/v1/reports/false-alarms")).json()["items"]
                dv = (await c.get("/api/v1/reports/devices?kind=camera")).json()["items"]
            rate = next(r["false_alarm_rate"] for r in fa if r["key"] == "dc09-cid")
            assert (
                0 < rate < 1 and f"{rate * 100:.1f}%" in await page.locator("#rep-false table").inner_text()
            )
            online = next(r["online_rate"] for r in dv if r["district"] == "440304")
            devices = await page.locator("#rep-devices table").inner_text()
            assert "摄像机" in devices and f"{online * 100:.1f}%" in devices
            cams = await page.locator("#rep-cameras table").inner_text()
            assert "30000" in cams and "罗湖区" not in cams  # its own district only
            await page.screenshot(path=str(SHOTS / "dispatch-5-reports.png"), full_page=True)

            async with page.expect_download() as dl:
                await page.click("#rep-ack button[data-csv]")
            download = await dl.value
            assert download.suggested_filename == "ack-times.csv"
            saved = Path(await download.path())
            text = await asyncio.to_thread(lambda: saved.read_text(encoding="utf-8"))
            assert text.splitlines()[0] == "level,district,station,name,incidents,acknowledged,p50_s,p90_s"

            await page.click("#lang")
            assert await page.locator("#reports-title").inner_text() == "Reports"
            assert "Online rate" in await page.locator("#rep-devices table").inner_text()
            await page.screenshot(path=str(SHOTS / "dispatch-6-reports-english.png"), full_page=True)

            await page.click("#nav-queue")  # and back
            await page.wait_for_selector("#queue-section:not([hidden])", timeout=5_000)
            assert await page.locator("#reports-section").is_hidden()
        finally:
            await browser.close()
