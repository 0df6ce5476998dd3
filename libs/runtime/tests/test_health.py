from __future__ import annotations

import asyncio

from alarmhub_runtime import HealthServer
from prometheus_client import CollectorRegistry, Counter


async def _get(port: int, path: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_health_ready_and_metrics() -> None:
    registry = CollectorRegistry()
    Counter("alarmhub_test_things_total", "things", registry=registry).inc(3)
    state = {"ok": False}
    server = HealthServer(registry, "127.0.0.1", 0)
    server.add_check("dependency", lambda: state["ok"])
    await server.start()
    try:
        assert (await _get(server.port, "/healthz"))[0] == 200
        status, body = await _get(server.port, "/readyz")
        assert status == 503 and b'"dependency": false' in body
        state["ok"] = True
        assert (await _get(server.port, "/readyz"))[0] == 200
        status, body = await _get(server.port, "/metrics")
        assert status == 200 and b"alarmhub_test_things_total 3.0" in body
        server.draining = True
        assert (await _get(server.port, "/readyz"))[0] == 503
        assert (await _get(server.port, "/nope"))[0] == 404
    finally:
        await server.stop()
