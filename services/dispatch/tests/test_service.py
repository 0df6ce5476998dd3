"""Dispatch on the real broker and PostgreSQL: alarms.triaged → incident → API, stream, incidents.events.

Also the authorization rules: a station token cannot read its neighbour's incident, a department
token cannot acknowledge, a supervisor mints tokens only at or below its unit.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from alarmhub_devstack.testing import settle_stale_escalations, wait_until
from alarmhub_dispatch.app import DispatchApp
from alarmhub_events import ALARMS_TRIAGED
from alarmhub_kafka import DurableProducer, KafkaMetrics
from prometheus_client import CollectorRegistry

from .conftest import triaged


async def _publish(stack: Any, prefix: str, items: list[Any]) -> None:
    producer = DurableProducer(
        stack.kafka_bootstrap,
        metrics=KafkaMetrics(CollectorRegistry()),
        client_id="test",
        topic_prefix=prefix,
        service="test",
    )
    await producer.start()
    try:
        await producer.send_many([(ALARMS_TRIAGED, t, t.key) for t in items])
    finally:
        await producer.stop()


async def _wait_incident(client: httpx.AsyncClient, incident_id: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await client.get(f"/api/v1/incidents/{incident_id}")
        if last.status_code == 200:
            return last.json()
        await asyncio.sleep(0.1)
    raise AssertionError(
        f"incident {incident_id} never appeared: {last and last.status_code} {last and last.text}"
    )


def _client(app: DispatchApp, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{app.http_port}", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


async def _mint(client: httpx.AsyncClient, **body: Any) -> str:
    r = await client.post("/api/v1/tokens", json=body)
    assert r.status_code == 201, r.text
    return r.json()["token"]


async def test_triaged_alarm_becomes_a_routed_incident_once(
    dispatch: tuple[DispatchApp, str], stack: Any, topic_prefix: str, consume_topic: Any
) -> None:
    app, token = dispatch
    t = triaged()
    expected = app.dispatcher.router.route(114.0550, 22.5410)  # type: ignore[union-attr]
    # start() built the lookup grid (in a thread, during the group joins) before it returned
    assert app.dispatcher.router.grid_stats["inside_cells"] > 0  # type: ignore[union-attr]
    assert expected == app.dispatcher.router.route_exact(114.0550, 22.5410)  # type: ignore[union-attr]
    await _publish(stack, topic_prefix, [t])
    async with _client(app, token) as client:
        inc = await _wait_incident(client, str(t.incident_id))
        assert inc["status"] == "routed" and inc["decision"] == "dispatch"
        assert inc["district"] == "440304" and inc["station"] == expected.station
        assert inc["route"]["method"] == "inside"
        assert inc["priority"] == 1 and inc["score"] == 90 and inc["reasons"][0]["code"] == "panic_code"
        assert inc["station_synthetic"] is True
        assert [e["type"] for e in inc["timeline"]] == ["opened", "routed"]
        assert inc["events"][0]["event"]["source"]["device_id"] == "L7#4321"
        assert inc["escalate_at"] is not None

        # replay the same decision twice more: no second incident, no second alarm, no new transitions
        await _publish(stack, topic_prefix, [t, t])
        await wait_until(lambda: app.metrics.replays._value.get() >= 2, timeout=10)
        again = (await client.get(f"/api/v1/incidents/{t.incident_id}")).json()
        assert len(again["events"]) == 1 and len(again["timeline"]) == 2 and again["alarm_count"] == 1
        listed = (await client.get("/api/v1/incidents", params={"station": expected.station})).json()["items"]
        assert [i["id"] for i in listed].count(str(t.incident_id)) == 1

    # the timer sweeps every due incident in the shared test database: keep this incident's events
    published = await consume_topic(
        topic_prefix, "incidents.events", 2, where=lambda e: e["incident_id"] == str(t.incident_id)
    )
    assert [(p["incident_id"], p["type"]) for p in published] == [
        (str(t.incident_id), "opened"),
        (str(t.incident_id), "routed"),
    ]
    assert published[1]["station"] == expected.station and published[0]["source_device_id"] == "L7#4321"


async def test_authorization_by_unit_and_role(
    dispatch: tuple[DispatchApp, str], stack: Any, topic_prefix: str
) -> None:
    app, token = dispatch
    router = app.dispatcher.router  # type: ignore[union-attr]
    t = triaged()
    mine = router.route(114.0550, 22.5410).station
    neighbour = next(s.id for s in router.stations if s.district == "440304" and s.id != mine)
    await _publish(stack, topic_prefix, [t])
    async with _client(app, token) as admin:
        await _wait_incident(admin, str(t.incident_id))
        station_tok = await _mint(admin, user="officer-wang", unit=mine, role="dispatcher", ttl_s=600)
        neighbour_tok = await _mint(admin, user="officer-li", unit=neighbour, role="dispatcher", ttl_s=600)
        district_sup = await _mint(admin, user="sup-futian", unit="440304", role="supervisor", ttl_s=600)
        dept_tok = await _mint(
            admin,
            user="urban-mgmt",
            unit="440304",
            role="department",
            ttl_s=600,
            scope={"districts": ["440304"]},
        )
        other_district = await _mint(admin, user="sup-luohu", unit="440303", role="supervisor", ttl_s=600)

    iid = str(t.incident_id)
    async with _client(app, neighbour_tok) as c:
        assert (await c.get(f"/api/v1/incidents/{iid}")).status_code == 404
        assert iid not in [i["id"] for i in (await c.get("/api/v1/incidents")).json()["items"]]
        assert (await c.post(f"/api/v1/incidents/{iid}/ack")).status_code == 404
        units = (await c.get("/api/v1/units")).json()["items"]
        assert [u["id"] for u in units] == [neighbour]
    async with _client(app, other_district) as c:
        assert (await c.get(f"/api/v1/incidents/{iid}")).status_code == 404
    async with _client(app, dept_tok) as c:
        assert (await c.get(f"/api/v1/incidents/{iid}")).status_code == 200  # may read
        r = await c.post(f"/api/v1/incidents/{iid}/ack")
        assert r.status_code == 403  # may not act
    async with _client(app, district_sup) as c:
        r = await c.post("/api/v1/tokens", json={"user": "x", "unit": "440303-S01", "role": "dispatcher"})
        assert r.status_code == 403  # not below the district
        r = await c.post("/api/v1/tokens", json={"user": "x", "unit": "city", "role": "dispatcher"})
        assert r.status_code == 403  # not above it either
    async with _client(app, "not-a-token") as c:
        assert (await c.get("/api/v1/incidents")).status_code == 401

    # the station's own dispatcher acknowledges, goes on scene and closes; the stream shows each change
    async with _client(app, station_tok) as c:
        seen: list[dict[str, Any]] = []

        async def read() -> None:
            async with (
                httpx.AsyncClient(timeout=15) as sc,
                sc.stream(
                    "GET",
                    f"http://127.0.0.1:{app.http_port}/api/v1/stream",
                    params={"access_token": station_tok},
                ) as resp,
            ):
                assert resp.status_code == 200
                async for line in resp.aiter_lines():
                    if line.startswith("data:"):
                        msg = json.loads(line[5:])
                        if "incident" in msg:
                            seen.append(msg)
                            if msg["incident"]["status"] == "closed":
                                return

        reader = asyncio.create_task(read())
        await asyncio.sleep(0.3)
        r = await c.post(f"/api/v1/incidents/{iid}/ack", json={"note": "收到"})
        assert r.status_code == 200 and r.json()["status"] == "acknowledged"
        assert (await c.post(f"/api/v1/incidents/{iid}/ack")).status_code == 409
        assert (await c.post(f"/api/v1/incidents/{iid}/on-scene")).status_code == 200
        r = await c.post(f"/api/v1/incidents/{iid}/close", json={"verdict": "genuine"})
        assert r.status_code == 200 and r.json()["verdict"] == "genuine"
        await asyncio.wait_for(reader, 10)
        assert [m["incident"]["status"] for m in seen] == ["acknowledged", "on_scene", "closed"]
        detail = (await c.get(f"/api/v1/incidents/{iid}")).json()
        tl = detail["timeline"]
        assert [e["type"] for e in tl] == ["opened", "routed", "acknowledged", "on_scene", "closed"]
        assert tl[2]["actor"]["user"] == "officer-wang" and tl[2]["actor"]["address"] == "127.0.0.1"
        assert tl[2]["data"]["note"] == "收到"


async def test_units_with_geometry_and_console(dispatch: tuple[DispatchApp, str]) -> None:
    app, token = dispatch
    async with _client(app, token) as c:
        body = (await c.get("/api/v1/units", params={"geometry": 1})).json()
        by_id = {u["id"]: u for u in body["items"]}
        assert by_id["city"]["tier"] == 1 and by_id["440304"]["parent"] == "city"
        stations = [u for u in body["items"] if u["tier"] == 3]
        assert len(stations) >= 200 and all(u["synthetic"] for u in stations)
        assert by_id["440304-S01"]["geometry"]["type"] in ("Polygon", "MultiPolygon")
        assert "geometry" not in (await c.get("/api/v1/units")).json()["items"][0]
        # the areas (~1 MB) are served gzipped with an ETag; asked again with it, a 304 without a body
        r = await c.get("/api/v1/units", params={"geometry": 1}, headers={"Accept-Encoding": "gzip"})
        assert r.headers["content-encoding"] == "gzip" and r.json() == body
        assert int(r.headers["content-length"]) < len(r.content) / 2
        again = await c.get(
            "/api/v1/units", params={"geometry": 1}, headers={"If-None-Match": r.headers["etag"]}
        )
        assert again.status_code == 304 and again.content == b""
        page = await c.get("/")
        assert page.status_code == 200 and "警情调度台" in page.text
        assert (await c.get("/console/console.js")).status_code == 200
        leaflet = await c.get("/console/vendor/leaflet/leaflet.js")  # vendored, never fetched at run time
        assert leaflet.status_code == 200 and "Leaflet" in leaflet.text[:400]
        assert (await c.get("/console/../app.py")).status_code == 404
        assert (await c.get("/console/vendor/leaflet/LICENSE")).status_code == 404
        spec = (await c.get("/openapi.json")).json()
        assert "/api/v1/incidents/{incident_id}/ack" in spec["paths"] and "/api/v1/stream" in spec["paths"]


@pytest.mark.drill  # a restart drill: `make drills`
async def test_escalation_timer_survives_a_restart(stack: Any, topic_prefix: str, consume_topic: Any) -> None:
    """The deadline is a column: a dispatch that restarts before it falls due still escalates."""
    import uuid

    from alarmhub_dispatch.config import DispatchSettings

    token = f"dev-{uuid.uuid4().hex}"
    env = dict(
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
        ALARMHUB_DISPATCH_ACK_TIMEOUT_S=2.0,
        ALARMHUB_DISPATCH_DISTRICT_TIMEOUT_S=1.0,
    )
    await settle_stale_escalations(stack.database_url)
    first = DispatchApp(DispatchSettings(**env), CollectorRegistry())  # type: ignore[arg-type]
    await first.start()
    t = triaged(device="L7#9876")
    try:
        await _publish(stack, topic_prefix, [t])
        async with _client(first, token) as c:
            inc = await _wait_incident(c, str(t.incident_id))
            assert inc["status"] == "routed" and inc["escalation_level"] == 0
    finally:
        await first.stop()  # down before the deadline
    await asyncio.sleep(1.0)
    second = DispatchApp(DispatchSettings(**env), CollectorRegistry())  # type: ignore[arg-type]
    await second.start()
    try:
        async with _client(second, token) as c:

            async def level() -> int:
                return (await c.get(f"/api/v1/incidents/{t.incident_id}")).json()["escalation_level"]

            await wait_until(lambda: _ge(level(), 2), timeout=15, interval=0.2)
            inc = (await c.get(f"/api/v1/incidents/{t.incident_id}")).json()
            assert inc["status"] == "escalated" and inc["escalate_at"] is None
            esc = [e for e in inc["timeline"] if e["type"] == "escalated"]
            assert [e["data"]["to"] for e in esc] == [["district"], ["city"]]
            assert all(e["actor"]["user"] == "system:dispatch" for e in esc)
    finally:
        await second.stop()
    # the second dispatch also escalates incidents other tests left due in the shared database
    mine = await consume_topic(
        topic_prefix, "incidents.events", 5, timeout=3, where=lambda e: e["incident_id"] == str(t.incident_id)
    )
    types = [p["type"] for p in mine]
    assert types == ["opened", "routed", "escalated", "escalated"]


async def _ge(value: Any, n: int) -> bool:
    return (await value) >= n


async def test_verification_and_registry(
    dispatch: tuple[DispatchApp, str], stack: Any, topic_prefix: str
) -> None:
    app, token = dispatch
    async with _client(app, token) as c:
        # an account registered through the API locates an alarm that carries no position
        r = await c.post(
            "/api/v1/registry/accounts",
            json={
                "line": "L9",
                "account": "5555",
                "company": "acme-security",
                "site": {"name": "金库", "address": "罗湖区", "lat": 22.5480, "lon": 114.1200},
            },
        )
        assert r.status_code == 201 and r.json()["id"] == "L9#5555"
        assert (await c.get("/api/v1/registry/accounts")).json()["count"] >= 1
        t = triaged(device="L9#5555", lat=None, lon=None, decision="verify", priority=3, score=55)
        await _publish(stack, topic_prefix, [t])
        inc = await _wait_incident(c, str(t.incident_id))
        assert inc["district"] == "440303" and inc["location"]["source"] == "registry"
        assert inc["company"] == "acme-security" and inc["escalate_at"] is None
        r = await c.post(
            f"/api/v1/incidents/{t.incident_id}/verify", json={"outcome": "confirmed", "note": "回拨确认"}
        )
        assert r.status_code == 200 and r.json()["decision"] == "dispatch" and r.json()["escalate_at"]
        assert (
            await c.post(f"/api/v1/incidents/{t.incident_id}/verify", json={"outcome": "maybe"})
        ).status_code == 422

        # the company's own token sees its accounts' incidents and nothing else
        company_tok = await _mint(c, user="acme-api", company="acme-security", role="alarm_company")
        async with _client(app, company_tok) as cc:
            items = (await cc.get("/api/v1/incidents")).json()["items"]
            assert {i["company"] for i in items} == {"acme-security"}
            assert (await cc.post(f"/api/v1/incidents/{t.incident_id}/ack")).status_code == 403

        # CSV import, update and delete
        csv = "id,name,lat,lon,network,unit\n44030400001320000001,福田 1 号,22.54,114.05,police_video,440304-S01\n"
        r = await c.post(
            "/api/v1/registry/cameras/import", content=csv.encode(), headers={"Content-Type": "text/csv"}
        )
        assert r.status_code == 200 and r.json()["imported"] == 1
        r = await c.put(
            "/api/v1/registry/cameras/44030400001320000001",
            json={"name": "福田 1 号 (新)", "lat": 22.55, "lon": 114.05},
        )
        assert r.status_code == 200 and r.json()["name"] == "福田 1 号 (新)"
        assert (await c.delete("/api/v1/registry/cameras/44030400001320000001")).status_code == 204
        assert (await c.delete("/api/v1/registry/cameras/44030400001320000001")).status_code == 404
        bad = await c.post("/api/v1/registry/cameras/import", content=b"id,lat\nX,999\n")
        assert bad.status_code == 422 and bad.json()["errors"][0]["line"] == 2


async def test_reports_and_cap_feed(dispatch: tuple[DispatchApp, str], stack: Any, topic_prefix: str) -> None:
    app, token = dispatch
    t = triaged(device="L7#1357")
    await _publish(stack, topic_prefix, [t])
    async with _client(app, token) as c:
        await _wait_incident(c, str(t.incident_id))
        assert (await c.post(f"/api/v1/incidents/{t.incident_id}/ack")).status_code == 200
        assert (
            await c.post(f"/api/v1/incidents/{t.incident_id}/close", json={"verdict": "false_alarm"})
        ).status_code == 200
        ack = (await c.get("/api/v1/reports/ack-times")).json()["items"]
        futian = next(r for r in ack if r["level"] == "district" and r["district"] == "440304")
        assert (
            futian["acknowledged"] >= 1 and futian["p50_s"] is not None and futian["p90_s"] >= futian["p50_s"]
        )
        csv = await c.get("/api/v1/reports/ack-times", params={"format": "csv"})
        assert csv.headers["content-type"].startswith("text/csv")
        assert csv.text.splitlines()[0] == "level,district,station,name,incidents,acknowledged,p50_s,p90_s"
        fa = (await c.get("/api/v1/reports/false-alarms", params={"by": "account"})).json()["items"]
        assert next(r for r in fa if r["key"] == "L7#1357")["false_alarm_rate"] == 1.0
        cams = (await c.get("/api/v1/reports/cameras")).json()["items"]
        assert next(r for r in cams if r["district"] == "440308")["target"] == 9_700
        assert next(r for r in cams if r["district"] == "city")["target"] == 200_000

        cap = await c.get(f"/api/v1/incidents/{t.incident_id}/cap")
        assert cap.headers["content-type"].startswith("application/cap+xml")
        assert "<msgType>Cancel</msgType>" in cap.text and "<references>" in cap.text
        # the whole feed: the shared test database holds other tests' newer incidents (default 200)
        feed = await c.get("/api/v1/cap", params={"limit": 1000})
        assert feed.status_code == 200 and str(t.incident_id) in feed.text


async def test_fire_alarm_is_handed_to_119(
    dispatch: tuple[DispatchApp, str], stack: Any, topic_prefix: str
) -> None:
    app, token = dispatch
    fire, panic = triaged(kind="fire", device="L7#2222"), triaged(kind="panic", device="L7#3333")
    await _publish(stack, topic_prefix, [fire, panic])
    async with _client(app, token) as c:
        inc = await _wait_incident(c, str(fire.incident_id))
        await _wait_incident(c, str(panic.incident_id))
        assert inc["timeline"][0]["data"]["handover"] == ["fire-119"]
        assert inc["station"] is not None  # the police station is dispatched as well
        tok119 = await _mint(c, user="fire-desk", unit="fire-119", role="dispatcher", ttl_s=600)
    async with _client(app, tok119) as c:
        ids = {i["id"] for i in (await c.get("/api/v1/incidents")).json()["items"]}
        assert str(fire.incident_id) in ids and str(panic.incident_id) not in ids
        assert (await c.get(f"/api/v1/incidents/{panic.incident_id}")).status_code == 404
        assert all(i["kind"] == "fire" for i in (await c.get("/api/v1/incidents")).json()["items"])
