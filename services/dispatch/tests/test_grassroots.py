"""Grassroots sites (社区警务室, tier 4): an alarm inside a site's area is routed to the station, which stays
responsible (and escalates station → district → city as ever), and the site is told at once: the route
names it, its people see the alarm in their own queue and stream, its webhooks get the events."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import pytest_asyncio
from alarmhub_dispatch.app import DispatchApp
from alarmhub_dispatch.config import DispatchSettings
from alarmhub_dispatch.demo_geo import demo_units
from prometheus_client import CollectorRegistry
from shapely.geometry import Point, box, mapping

from .conftest import settle_stale_escalations, triaged
from .test_service import _client, _mint, _publish

# a point in Longgang, far from the points the other dispatch tests send alarms to
INSIDE = (114.2500, 22.7200)
OUTSIDE = (114.2560, 22.7200)  # ~600 m east: same station, not the site's area


@pytest_asyncio.fixture
async def with_site(stack: Any, topic_prefix: str) -> AsyncIterator[tuple[DispatchApp, str, str, str]]:
    station = next(
        u.id
        for u in demo_units()
        if u.tier == 3 and u.geometry is not None and u.geometry.contains(Point(*INSIDE))
    )
    assert any(u.id == station and u.geometry.contains(Point(*OUTSIDE)) for u in demo_units())  # type: ignore[union-attr]
    site = f"{station}-W{uuid.uuid4().hex[:4]}"
    area = box(INSIDE[0] - 0.002, INSIDE[1] - 0.002, INSIDE[0] + 0.002, INSIDE[1] + 0.002)
    token = f"dev-{uuid.uuid4().hex}"
    settings = DispatchSettings(
        KAFKA_BOOTSTRAP=stack.kafka_bootstrap,
        DATABASE_URL=stack.database_url,
        REDIS_URL=stack.redis_url,
        ALARMHUB_TOPIC_PREFIX=topic_prefix,
        ALARMHUB_HTTP_PORT=0,
        ALARMHUB_HTTP_HOST="127.0.0.1",
        ALARMHUB_HEALTH_PORT=0,
        ALARMHUB_DEV_TOKEN=token,
        ALARMHUB_DEV_MODE=True,
    )
    await settle_stale_escalations(stack.database_url)
    app = DispatchApp(settings, CollectorRegistry())
    await app.start()  # the demo geography is in the table from here on
    await app.stop()
    conn = await asyncpg.connect(stack.database_url)
    try:
        await conn.execute(
            "INSERT INTO units (id, name, tier, parent_id, kind, geometry) VALUES ($1, $2, 4, $3, 'police', $4)",
            site,
            "测试社区警务室",
            station,
            json.dumps(mapping(area)),
        )
        app = DispatchApp(settings, CollectorRegistry())
        await app.start()
        try:
            yield app, token, station, site
        finally:
            await app.stop()
    finally:
        await conn.execute("DELETE FROM units WHERE id = $1", site)
        await conn.close()


def _clock(incident: dict[str, Any]) -> float:
    """Seconds from opening to the escalation deadline."""
    at = datetime.fromisoformat(incident["escalate_at"]) - datetime.fromisoformat(incident["opened_at"])
    return at.total_seconds()


async def _site_stream(
    app: DispatchApp,
    token: str,
    into: list[dict[str, Any]],
    ready: asyncio.Event,
    told: asyncio.Event,
    wanted: str,
) -> None:
    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.http_port}", timeout=None) as c,
        c.stream("GET", f"/api/v1/stream?access_token={token}") as s,
    ):
        async for line in s.aiter_lines():
            if line.startswith("event: hello"):
                ready.set()
            if line.startswith("data:") and '"incident"' in line:
                into.append(json.loads(line[5:]))
                if into[-1]["incident"]["id"] == wanted:
                    told.set()


async def test_site_is_told_and_the_station_stays_responsible(
    with_site: tuple[DispatchApp, str, str, str], stack: Any, topic_prefix: str
) -> None:
    app, token, station, site = with_site
    inside = triaged(lon=INSIDE[0], lat=INSIDE[1], device="L7#9001")
    outside = triaged(lon=OUTSIDE[0], lat=OUTSIDE[1], device="L7#9002")
    async with _client(app, token) as admin:
        site_tok = await _mint(admin, user="site-duty", unit=site, role="dispatcher", ttl_s=600)
        station_tok = await _mint(admin, user="station-duty", unit=station, role="dispatcher", ttl_s=600)
    # the site is told at once: its own live stream, open before the alarms come
    on_site: list[dict[str, Any]] = []
    ready, told = asyncio.Event(), asyncio.Event()
    stream = asyncio.create_task(_site_stream(app, site_tok, on_site, ready, told, str(inside.incident_id)))
    await asyncio.wait_for(ready.wait(), 10)
    await _publish(stack, topic_prefix, [inside, outside])
    async with _client(app, station_tok) as st:
        for _ in range(100):
            items = (await st.get("/api/v1/incidents")).json()["items"]
            if {str(inside.incident_id), str(outside.incident_id)} <= {i["id"] for i in items}:
                break
            await asyncio.sleep(0.1)
        mine = {i["id"]: i for i in items}
        got = mine[str(inside.incident_id)]
        assert (
            got["station"] == station and got["route"]["site"] == site and got["route"]["method"] == "inside"
        )
        assert "site" not in mine[str(outside.incident_id)]["route"]
        detail = (await st.get(f"/api/v1/incidents/{inside.incident_id}")).json()
        routed = next(e for e in detail["timeline"] if e["type"] == "routed")
        assert routed["data"]["route"]["site"] == site
        assert detail["escalate_at"] is not None  # the station's acknowledgement clock runs as ever
        other = (await st.get(f"/api/v1/incidents/{outside.incident_id}")).json()
        # a site (closed at night, say) never delays it: the same deadline as an alarm outside any site
        assert _clock(detail) == _clock(other) and detail["escalation_level"] == 0
    try:
        await asyncio.wait_for(told.wait(), 20)
    finally:
        stream.cancel()
    assert {m["incident"]["id"] for m in on_site} == {str(inside.incident_id)}
    async with _client(app, site_tok) as sc:
        seen = {i["id"] for i in (await sc.get("/api/v1/incidents")).json()["items"]}
        assert seen == {
            str(inside.incident_id)
        }  # its own queue: the alarm in its area, not the station's others
        assert (await sc.get(f"/api/v1/incidents/{outside.incident_id}")).status_code in (403, 404)
    d = app.dispatcher
    assert d is not None
    assert d.deliveries.matches("unit", site, got) and not d.deliveries.matches(
        "unit", site, {**got, "route": {"station": station}}
    )
