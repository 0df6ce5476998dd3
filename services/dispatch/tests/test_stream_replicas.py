"""Two dispatch replicas: a dispatcher streaming from replica B sees what replica A changed.

Both replicas share PostgreSQL and the topics; each tails ``incidents.events`` without a group, so a
change written by one reaches the other's live streams; a replica's own changes are not pushed twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio
from alarmhub_devstack.testing import settle_stale_escalations
from alarmhub_dispatch.app import DispatchApp
from alarmhub_dispatch.config import DispatchSettings
from prometheus_client import CollectorRegistry

from .conftest import triaged
from .test_service import _client, _mint, _publish


@pytest_asyncio.fixture
async def replicas(stack: Any, topic_prefix: str) -> AsyncIterator[tuple[DispatchApp, DispatchApp, str]]:
    token = f"dev-{uuid.uuid4().hex}"

    def make() -> DispatchApp:
        return DispatchApp(
            DispatchSettings(
                KAFKA_BOOTSTRAP=stack.kafka_bootstrap,
                DATABASE_URL=stack.database_url,
                REDIS_URL=stack.redis_url,
                ALARMHUB_TOPIC_PREFIX=topic_prefix,
                ALARMHUB_HTTP_PORT=0,
                ALARMHUB_HTTP_HOST="127.0.0.1",
                ALARMHUB_HEALTH_PORT=0,
                ALARMHUB_DEV_TOKEN=token,
                ALARMHUB_DEV_MODE=True,
                ALARMHUB_DISPATCH_TIMER_INTERVAL_S=0.2,
            ),
            CollectorRegistry(),
        )

    await settle_stale_escalations(stack.database_url)
    a, b = make(), make()
    await a.start()
    await b.start()
    try:
        yield a, b, token
    finally:
        await asyncio.gather(a.stop(), b.stop())


async def _collect(app: DispatchApp, token: str, into: list[dict[str, Any]], ready: asyncio.Event) -> None:
    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.http_port}", timeout=None) as c,
        c.stream("GET", f"/api/v1/stream?access_token={token}") as s,
    ):
        async for line in s.aiter_lines():
            if line.startswith("event: hello"):
                ready.set()
            if line.startswith("data:") and '"incident"' in line:
                into.append(json.loads(line[5:]))


async def test_a_change_on_replica_a_reaches_a_stream_on_replica_b(
    replicas: tuple[DispatchApp, DispatchApp, str], stack: Any, topic_prefix: str
) -> None:
    a, b, token = replicas
    t = triaged(device="L7#8642")
    station = a.dispatcher.router.route(114.0550, 22.5410).station  # type: ignore[union-attr]
    async with _client(a, token) as admin:
        desk = await _mint(admin, user="officer-b", unit=station, role="dispatcher", ttl_s=600)
    on_a: list[dict[str, Any]] = []
    on_b: list[dict[str, Any]] = []
    ready_a, ready_b = asyncio.Event(), asyncio.Event()
    tasks = [
        asyncio.create_task(_collect(a, desk, on_a, ready_a)),
        asyncio.create_task(_collect(b, desk, on_b, ready_b)),
    ]
    try:
        await asyncio.wait_for(asyncio.gather(ready_a.wait(), ready_b.wait()), 10)
        await _publish(stack, topic_prefix, [t])  # materialized by whichever replica owns the partition

        async def until(msgs: list[dict[str, Any]], status: str) -> None:
            for _ in range(150):
                if any(
                    m["incident"]["id"] == str(t.incident_id) and m["incident"]["status"] == status
                    for m in msgs
                ):
                    return
                await asyncio.sleep(0.1)
            raise AssertionError(f"no {status} for the incident: {[m['incident']['status'] for m in msgs]}")

        await asyncio.gather(until(on_a, "routed"), until(on_b, "routed"))

        async with _client(a, desk) as c:  # acknowledged on replica A …
            assert (await c.post(f"/api/v1/incidents/{t.incident_id}/ack")).status_code == 200
        await until(on_b, "acknowledged")  # … seen by the dispatcher streaming from B
        async with _client(b, desk) as c:  # closed on B, seen on A
            r = await c.post(f"/api/v1/incidents/{t.incident_id}/close", json={"verdict": "genuine"})
            assert r.status_code == 200
        await until(on_a, "closed")
        await asyncio.sleep(1.0)  # let the echoes from incidents.events arrive
        for msgs in (on_a, on_b):  # each version reaches each stream once
            versions = [
                m["incident"]["updated_at"] for m in msgs if m["incident"]["id"] == str(t.incident_id)
            ]
            assert len(versions) == len(set(versions)), versions
            assert msgs[-1]["incident"]["status"] == "closed"
        assert a.stream_feed is not None and b.stream_feed is not None
        assert a.stream_feed.seen > 0 and b.stream_feed.seen > 0
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
