"""The console lists a GB/T 28181 camera's channels: the cameras-near panel's "通道" button asks dispatch,
dispatch asks ingest-camera's command port, ingest-camera sends the registered device (the simulator's
GB/T 28181 UA on a real UDP socket) a Catalog query and collects its two Response MESSAGEs; the list
shows with the device's GB2312 names. A device that is not registered is said so plainly."""

from __future__ import annotations

import uuid

from alarmhub_ingest_camera.app import CameraApp
from alarmhub_ingest_camera.config import CameraSettings
from alarmhub_sim.camera import GbDevice, SimCamera
from prometheus_client import CollectorRegistry

from .test_console_workflows import SHOTS, Env, decision, env, open_incident, wait_incident  # noqa: F401

LAT, LON = 22.5620, 114.0710


async def test_gb28181_camera_channels_in_the_cameras_near_panel(env: Env) -> None:  # noqa: F811
    token = f"cmd-{uuid.uuid4().hex}"
    camera = CameraApp(
        CameraSettings(
            KAFKA_BOOTSTRAP=env.stack.kafka_bootstrap, DATABASE_URL=env.stack.database_url,
            REDIS_URL=env.stack.redis_url, ALARMHUB_TOPIC_PREFIX=env.prefix, ALARMHUB_CAMERA_HOST="127.0.0.1",
            ALARMHUB_CAMERA_HTTP_PORT=0, ALARMHUB_SIP_HOST="127.0.0.1", ALARMHUB_SIP_PORT=0,
            ALARMHUB_HEALTH_PORT=0, ALARMHUB_SIP_PASSWORD="12345678", ALARMHUB_ONVIF_MODE="off",
            ALARMHUB_CAMERA_COMMAND_PORT=0, ALARMHUB_CAMERA_COMMAND_TOKEN=token,
        ),
        CollectorRegistry(),
    )  # fmt: skip
    await camera.start()
    gb_id = f"440305001132{uuid.uuid4().int % 10**8:08d}"
    silent = f"440305001132{(uuid.uuid4().int + 7) % 10**8:08d}"
    device = GbDevice(
        SimCamera("gb28181", gb_id, "科技园南门", LAT + 0.0003, LON, "02:00:00:00:00:02"),
        "127.0.0.1", camera.sip_port, server_id=camera.settings.sip_server_id,
        realm=camera.settings.sip_realm, password="12345678",
    )  # fmt: skip
    try:
        await device.open()
        assert await device.register() == 200
        env.dispatch.camera_catalog.url = f"http://127.0.0.1:{camera.command_port}/gb28181/catalog"
        env.dispatch.camera_catalog.token = token
        t = decision(priority=2, lat=LAT, lon=LON)
        await env.publish(t)
        await wait_incident(env, t.incident_id)
        async with env.client() as admin:
            for cam, name, north in ((gb_id, "科技园南门 国标", 0.0003), (silent, "科技园北门 国标", 0.0006)):
                r = await admin.post(
                    "/api/v1/registry/cameras",
                    json={"id": cam, "name": name, "lat": LAT + north, "lon": LON, "network": "social_video"},
                )
                assert r.status_code == 201, r.text
        page = await env.page()
        await open_incident(page, t.incident_id)
        await page.click(f'#inc-cameras button[data-channels="{gb_id}"]', timeout=20_000)
        await page.wait_for_selector('#cam-channels [data-status="complete"]', timeout=20_000)
        rows = page.locator("#cam-channels tr[data-channel]")
        assert await rows.count() == 2
        text = await page.locator("#cam-channels").inner_text()
        assert "科技园南门 通道1" in text and "报警输入1" in text and "设备已列出全部通道" in text
        assert f"{gb_id[:10]}131{gb_id[13:]}" in text
        await page.screenshot(path=str(SHOTS / "console-gb28181-channels.png"), full_page=True)
        # a camera whose device never registered: the console says so, with no list
        await page.click(f'#inc-cameras button[data-channels="{silent}"]')
        await page.wait_for_selector('#cam-channels [data-status="not_registered"]', timeout=20_000)
        assert "设备未注册" in await page.locator("#cam-channels").inner_text()
        await page.context.close()
        assert env.errors == []
    finally:
        env.dispatch.camera_catalog.token = None
        device.close()
        await camera.stop()
