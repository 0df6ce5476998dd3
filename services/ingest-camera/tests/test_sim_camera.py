"""The simulator's cameras against the real service: every protocol answered, events on alarms.raw."""

from __future__ import annotations

from typing import Any

from alarmhub_ingest_camera.app import CameraApp
from alarmhub_sim import camera as sim_camera

from .test_camera_service import SIP_PASSWORD, camera  # noqa: F401 - the fixture


async def test_simulated_cameras(
    camera: CameraApp,  # noqa: F811
    topic_prefix: str,
    consume_topic: Any,
    monkeypatch: Any,
) -> None:
    monkeypatch.setenv("ALARMHUB_SIP_PASSWORD", SIP_PASSWORD)
    monkeypatch.delenv("ALARMHUB_API", raising=False)
    counters = await sim_camera.run(
        f"http://127.0.0.1:{camera.http_port}",
        "127.0.0.1",
        camera.sip_port,
        rate=200.0,
        count=60,
        duration_s=30.0,
        cameras=12,
        seed=7,
    )
    assert counters["sent"] == 60
    assert not [k for k in counters if k.endswith(("_error", "_timeout", "_400", "_403", "_503"))], counters
    assert any(k.startswith("gb28181_alarm_200") for k in counters), counters
    assert counters.get("gb28181_register_200", 0) >= 1
    events = await consume_topic(topic_prefix, "alarms.raw", 10, timeout=20)
    assert {e["source"]["protocol"] for e in events} <= {"isapi", "onvif", "gb28181"} and len(events) >= 10
