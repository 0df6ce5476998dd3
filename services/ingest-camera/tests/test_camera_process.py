"""``python -m alarmhub_ingest_camera`` as a real process: ready on /readyz, answers, stops cleanly on SIGTERM."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from alarmhub_devstack.testing import ServiceProcess, service_env

from .test_isapi import SPEC_VMD


@pytest.mark.slow
async def test_process_lifecycle(stack: Any, topic_prefix: str, consume_topic: Any) -> None:
    env = service_env(
        stack,
        topic_prefix,
        ALARMHUB_ONVIF_MODE="off",
        ALARMHUB_CAMERA_HOST="127.0.0.1",
        ALARMHUB_SIP_HOST="127.0.0.1",
        ALARMHUB_SIP_PASSWORD="pw",
        ALARMHUB_CAMERA_INTAKE_AUTH="open",  # an unregistered ISAPI camera, as the dev stack allows
    )
    svc = ServiceProcess.create(
        "alarmhub_ingest_camera", env, port_vars=("ALARMHUB_CAMERA_HTTP_PORT", "ALARMHUB_SIP_PORT")
    )
    svc.start(timeout=60)
    try:
        async with httpx.AsyncClient() as client:
            r = await client.post(
                f"http://127.0.0.1:{svc.ports['ALARMHUB_CAMERA_HTTP_PORT']}/events/isapi",
                content=SPEC_VMD,
                headers={"Content-Type": "application/xml"},
            )
            metrics = (await client.get(svc.health_url + "/metrics")).text
        assert r.status_code == 200
        assert 'alarmhub_ingest_camera_requests_total{protocol="isapi",result="ok"} 1.0' in metrics
        events = await consume_topic(topic_prefix, "alarms.raw", 1, timeout=20)
        assert events[0]["source"]["device_id"] == "isapi:01:17:24:45:d9:f4:1"
    finally:
        assert svc.stop() == 0
