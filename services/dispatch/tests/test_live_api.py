"""Cameras around an incident and live view over HTTP: the cameras-near query (radius, nearest first),
a stream token that opens the relay's playlist (and nothing else), snapshots, the refusals with their
codes, and who may look."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from alarmhub_devstack.rtsp_camera import available, rtsp_camera
from alarmhub_dispatch.app import DispatchApp

from .conftest import triaged
from .test_service import _client, _mint, _publish, _wait_incident

LAT, LON = 22.5410, 114.0550


def _offset(north_m: float, east_m: float) -> tuple[float, float]:
    import math

    return LAT + north_m / 111_320.0, LON + east_m / (111_320.0 * math.cos(math.radians(LAT)))


async def _register(
    admin: httpx.AsyncClient, cam_id: str, north_m: float, east_m: float, **extra: Any
) -> None:
    lat, lon = _offset(north_m, east_m)
    r = await admin.post(
        "/api/v1/registry/cameras",
        json={
            "id": cam_id,
            "name": f"cam {cam_id}",
            "lat": lat,
            "lon": lon,
            "network": "police_video",
            **extra,
        },
    )
    assert r.status_code == 201, r.text


async def test_cameras_near_an_incident_nearest_first(
    dispatch: tuple[DispatchApp, str], stack: Any, topic_prefix: str
) -> None:
    app, token = dispatch
    t = triaged(device="L7#8801")
    await _publish(stack, topic_prefix, [t])
    tag = str(t.incident_id)[:8]
    async with _client(app, token) as admin:
        await _wait_incident(admin, str(t.incident_id))
        await _register(admin, f"near-{tag}-300", 300, 0)
        await _register(admin, f"near-{tag}-120", 0, -120)
        await _register(admin, f"near-{tag}-900", 0, 900)  # outside the default 500 m
        gb_id = f"44030400113200{t.incident_id.int % 10**6:06d}"  # a GB/T 28181 code, no stream URL
        await _register(admin, gb_id, 40, 0)
        r = await admin.get(f"/api/v1/incidents/{t.incident_id}/cameras")
        assert r.status_code == 200, r.text
        body = r.json()
        mine = [c for c in body["items"] if tag in c["id"] or c["id"] == gb_id]
        assert [c["distance_m"] for c in mine] == pytest.approx([40, 120, 300], rel=0.01)
        assert body["radius_m"] == 500 and all(c["distance_m"] <= 500 for c in body["items"])
        assert mine[0]["live"] == "gb28181" and mine[1]["live"] is None
        wide = (await admin.get(f"/api/v1/incidents/{t.incident_id}/cameras?radius_m=1000")).json()
        assert f"near-{tag}-900" in [c["id"] for c in wide["items"]]
        refused = await admin.post(f"/api/v1/cameras/{mine[0]['id']}/live")
        assert refused.status_code == 409 and refused.json()["detail"]["code"] == "gb28181_invite"
        refused = await admin.post(f"/api/v1/cameras/{mine[1]['id']}/live")
        assert refused.status_code == 409 and refused.json()["detail"]["code"] == "no_stream"
        company = await _mint(admin, user="acme-ops", role="alarm_company", company="acme", ttl_s=600)
    async with _client(app, company) as other:
        assert (await other.get(f"/api/v1/incidents/{t.incident_id}/cameras")).status_code == 403


@pytest.mark.skipif(available() is not None, reason=str(available()))
async def test_live_view_token_playlist_snapshot_and_close(
    dispatch: tuple[DispatchApp, str], stack: Any, topic_prefix: str
) -> None:
    app, token = dispatch
    async with rtsp_camera() as url, _client(app, token) as admin:
        cam = "live-api-1"
        await _register(admin, cam, 50, 50, stream_url=url, username="viewer", password="s3cret-pw")
        r = await admin.post(f"/api/v1/cameras/{cam}/live")
        assert r.status_code == 200, r.text
        live = r.json()
        assert live["codec"] == "h264" and token not in live["playlist"]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.http_port}") as anon:
            pl = await anon.get(live["playlist"])  # the stream token alone opens it
            assert pl.status_code == 200 and pl.text.startswith("#EXTM3U")
            seg = next(line for line in pl.text.splitlines() if line.endswith(".ts"))
            assert (await anon.get(live["playlist"].replace("index.m3u8", seg))).status_code == 200
            assert (await anon.get(f"/media/{token}/index.m3u8")).status_code == 404  # not the user's token
            assert len(app.relay.streams()) == 1
            assert (await anon.post(live["close"])).status_code == 204
            assert app.relay.streams() == {} and (await anon.get(live["playlist"])).status_code == 404
        snap = await admin.get(f"/api/v1/cameras/{cam}/snapshot")
        assert snap.status_code == 200 and snap.content[:2] == b"\xff\xd8"  # a JPEG
        await _register(admin, "live-api-dead", 60, 60, stream_url="rtsp://127.0.0.1:9/none")
        dead = await admin.post("/api/v1/cameras/live-api-dead/live")
        assert dead.status_code == 502 and dead.json()["detail"]["code"] == "camera_unreachable"
        reg = (await admin.get("/api/v1/registry/cameras?limit=100000")).json()["items"]
        assert "s3cret-pw" not in str([c for c in reg if c["id"] == cam])


async def test_gb28181_camera_channels_through_ingest_camera(
    dispatch: tuple[DispatchApp, str], stack: Any, topic_prefix: str
) -> None:
    """dispatch → ingest-camera's command port → a Catalog query over UDP to a registered device (the
    simulator's, answering one Item per message in GB2312) → the channel list, in the API's answer."""
    import uuid

    from alarmhub_ingest_camera.app import CameraApp
    from alarmhub_ingest_camera.config import CameraSettings
    from alarmhub_sim.camera import GbDevice, SimCamera
    from prometheus_client import CollectorRegistry

    app, token = dispatch
    command_token = f"cmd-{uuid.uuid4().hex}"
    camera = CameraApp(
        CameraSettings(
            KAFKA_BOOTSTRAP=stack.kafka_bootstrap, DATABASE_URL=stack.database_url, REDIS_URL=stack.redis_url,
            ALARMHUB_TOPIC_PREFIX=topic_prefix, ALARMHUB_CAMERA_HOST="127.0.0.1", ALARMHUB_CAMERA_HTTP_PORT=0,
            ALARMHUB_SIP_HOST="127.0.0.1", ALARMHUB_SIP_PORT=0, ALARMHUB_HEALTH_PORT=0,
            ALARMHUB_SIP_PASSWORD="12345678", ALARMHUB_ONVIF_MODE="off", ALARMHUB_CAMERA_COMMAND_PORT=0,
            ALARMHUB_CAMERA_COMMAND_TOKEN=command_token,
        ),
        CollectorRegistry(),
    )  # fmt: skip
    await camera.start()
    gb_id = f"440304001132{uuid.uuid4().int % 10**8:08d}"
    device = GbDevice(
        SimCamera("gb28181", gb_id, "南山路口", LAT, LON, "02:00:00:00:00:01"),
        "127.0.0.1", camera.sip_port, server_id=camera.settings.sip_server_id,
        realm=camera.settings.sip_realm, password="12345678",
    )  # fmt: skip
    try:
        await device.open()
        assert await device.register() == 200
        async with _client(app, token) as admin:
            await _register(admin, gb_id, 30, 30)
            await _register(admin, f"rtsp-{gb_id[-6:]}", 30, 40, stream_url="rtsp://127.0.0.1:9/x")
            off = await admin.get(f"/api/v1/cameras/{gb_id}/channels")
            assert off.status_code == 503 and off.json()["detail"]["code"] == "catalog_off"
            app.camera_catalog.url = f"http://127.0.0.1:{camera.command_port}/gb28181/catalog"
            app.camera_catalog.token = command_token
            r = await admin.get(f"/api/v1/cameras/{gb_id}/channels")
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["status"] == "complete" and body["sum_num"] == 2 and body["pages"] == 2, body
            video, alarm_in = body["channels"]
            assert video["device_id"] == f"{gb_id[:10]}131{gb_id[13:]}" and video["name"] == "南山路口 通道1"
            assert video["kind"] == "camera" and video["online"] is True and video["lat"] == LAT
            assert alarm_in["kind"] == "alarm_input" and alarm_in["name"] == "报警输入1"
            refused = await admin.get(f"/api/v1/cameras/rtsp-{gb_id[-6:]}/channels")
            assert refused.status_code == 409 and refused.json()["detail"]["code"] == "not_gb28181"
            assert (await admin.get("/api/v1/cameras/44030400113200000000/channels")).status_code == 404
            other = f"440304001132{(uuid.uuid4().int + 1) % 10**8:08d}"
            await _register(admin, other, 35, 35)
            gone = (await admin.get(f"/api/v1/cameras/{other}/channels?timeout_s=1")).json()
            assert gone["status"] == "not_registered" and gone["channels"] == []
            app.camera_catalog.token = "wrong-token-0123456789"
            bad = await admin.get(f"/api/v1/cameras/{gb_id}/channels")
            assert bad.status_code == 502 and bad.json()["detail"]["code"] == "ingest_unreachable"
            company = await _mint(admin, user="acme-cat", role="alarm_company", company="acme", ttl_s=600)
        async with _client(app, company) as other_client:
            assert (await other_client.get(f"/api/v1/cameras/{gb_id}/channels")).status_code == 403
    finally:
        app.camera_catalog.token = None
        device.close()
        await camera.stop()
