"""``python -m alarmhub_dispatch`` as a real process: ready on ephemeral ports, serves, stops cleanly on SIGTERM."""

from __future__ import annotations

from typing import Any

import httpx
from alarmhub_devstack.testing import ServiceProcess, service_env


def test_process_starts_serves_and_stops_on_sigterm(stack: Any, topic_prefix: str) -> None:
    env = service_env(stack, topic_prefix, ALARMHUB_DEV_TOKEN="proc-city-admin", ALARMHUB_DEV_MODE="1")
    svc = ServiceProcess.create("alarmhub_dispatch", env, ("ALARMHUB_HTTP_PORT",))
    svc.start(timeout=90)
    try:
        base = f"http://127.0.0.1:{svc.ports['ALARMHUB_HTTP_PORT']}"
        r = httpx.get(f"{base}/api/v1/units", headers={"Authorization": "Bearer proc-city-admin"}, timeout=10)
        assert r.status_code == 200 and r.json()["count"] >= 300
        assert httpx.get(f"{base}/api/v1/units", timeout=10).status_code == 401
        metrics = httpx.get(f"{svc.health_url}/metrics", timeout=10).text
        assert "alarmhub_dispatch_routes_total" in metrics
    finally:
        rc = svc.stop(timeout=30)
    assert rc == 0
