from __future__ import annotations

import asyncio
import os
import signal

from alarmhub_runtime import HealthServer, run_service
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


async def test_not_ready_until_the_service_started() -> None:
    """The health server answers before the service's start() returned, and says not ready meanwhile (a
    DC-09 worker's /readyz said 200 while its port still refused connections)."""
    release, stopped = asyncio.Event(), asyncio.Event()

    class App:
        async def start(self) -> None:
            await release.wait()

        async def stop(self) -> None:
            stopped.set()

    server = HealthServer(CollectorRegistry(), "127.0.0.1", 0)
    server.add_check("dependency", lambda: True)
    running = asyncio.create_task(run_service(App(), server, grace_s=5))
    for _ in range(200):  # bounded: the health server is listening within ~2 s
        if server.port:
            break
        await asyncio.sleep(0.01)
    status, body = await _get(server.port, "/readyz")
    assert status == 503 and b'"started": false' in body
    release.set()
    await asyncio.sleep(0.05)
    assert (await _get(server.port, "/readyz"))[0] == 200
    os.kill(os.getpid(), signal.SIGTERM)  # run_service's own handler takes it
    await asyncio.wait_for(running, 10)
    assert stopped.is_set()


async def test_objects_made_at_start_are_frozen_when_the_launch_froze() -> None:
    """run_async's gc_tune freezes the imports' objects; what the service's start made (registries, route
    grids) is frozen too once it started, so no full collection walks it under load."""
    import gc

    made: list[object] = []

    class App:
        async def start(self) -> None:
            made.append({"registry": [[str(i)] for i in range(1000)]})  # lists: always tracked

        async def stop(self) -> None:
            return None

    gc.freeze()  # as run_async(gc_tune=True) does at launch
    try:
        before = gc.get_freeze_count()
        server = HealthServer(CollectorRegistry(), "127.0.0.1", 0)
        running = asyncio.create_task(run_service(App(), server, grace_s=5))
        for _ in range(500):  # bounded: started within ~5 s
            if made:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert gc.get_freeze_count() >= before + 1000  # the start's lists among them
        assert not any(made[0] is o for o in gc.get_objects())  # out of the collector's generations
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(running, 10)
    finally:
        gc.unfreeze()
