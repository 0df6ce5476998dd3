"""The queue's filters, search and counts, and the manual hand-off to 119/120, over HTTP against a real
dispatch: search by account, plate and address; kind and priority filters; counts per status; a
medical centre sees a burglary only once a dispatcher handed it over, and hears of it on its stream."""

from __future__ import annotations

import uuid
from typing import Any

from alarmhub_dispatch.app import DispatchApp
from alarmhub_events import Protocol, Source

from .conftest import triaged
from .test_service import _client, _mint, _publish, _wait_incident


async def test_filters_search_and_counts(
    dispatch: tuple[DispatchApp, str], stack: Any, topic_prefix: str
) -> None:
    app, token = dispatch
    tag = uuid.uuid4().hex[:6]
    burglary = triaged(kind="burglary", priority=2, device=f"L7#{tag}1")
    panic = triaged(kind="panic", priority=1, device=f"L7#{tag}2")
    phone = f"0139{uuid.uuid4().int % 10**8:08d}"
    car = triaged(kind="vehicle_theft", priority=2, device=phone)
    car = car.model_copy(
        update={
            "event": car.event.model_copy(update={"source": Source(protocol=Protocol.JT808, device_id=phone)})
        }
    )
    async with _client(app, token) as c:
        r = await c.post(
            "/api/v1/registry/accounts",
            json={
                "line": "7",
                "account": f"{tag}2",
                "company": "acme",
                "site_name": "华强北商铺",
                "site_address": f"深南中路 {tag} 号",
                "contacts": [{"name": "王店长", "phone": "13800000000"}],
            },
        )
        assert r.status_code == 201, r.text
    await _publish(stack, topic_prefix, [burglary, panic, car])
    async with _client(app, token) as c:
        for t in (burglary, panic, car):
            await _wait_incident(c, str(t.incident_id))
        r = await c.post(
            "/api/v1/registry/vehicles",
            json={"device_id": phone, "protocol": "jt808", "plate": f"粤B{tag[:5]}"},
        )
        assert r.status_code == 201, r.text

        async def ids(query: str) -> set[str]:
            r = await c.get(f"/api/v1/incidents?{query}")
            assert r.status_code == 200, r.text
            return {i["id"] for i in r.json()["items"]}

        assert await ids(f"q={tag}1") == {str(burglary.incident_id)}  # account
        assert await ids(f"q=粤B{tag[:5]}") == {str(car.incident_id)}  # plate, from the registry
        assert await ids(f"q=深南中路 {tag}") == {str(panic.incident_id)}  # site address
        assert await ids(f"q={tag}&kind=panic") == {str(panic.incident_id)}
        assert await ids(f"q={tag}&priority=2") == {str(burglary.incident_id)}
        assert await ids(f"q={tag}%25") == set()  # "%" is a character to find, not a wildcard
        site = (await c.get(f"/api/v1/incidents/{panic.incident_id}/site")).json()
        assert site["kind"] == "account" and site["contacts"][0]["name"] == "王店长"
        await c.post(f"/api/v1/incidents/{burglary.incident_id}/ack")
        body = (await c.get(f"/api/v1/incidents?q=L7%23{tag}&status=acknowledged")).json()
        assert [i["id"] for i in body["items"]] == [str(burglary.incident_id)]
        assert body["counts"] == {"acknowledged": 1, "routed": 1}  # every status under the same search


async def test_manual_handoff_reaches_the_medical_centre(
    dispatch: tuple[DispatchApp, str], stack: Any, topic_prefix: str
) -> None:
    app, token = dispatch
    t = triaged(kind="burglary", device=f"L7#{uuid.uuid4().hex[:6]}")
    await _publish(stack, topic_prefix, [t])
    async with _client(app, token) as c:
        await _wait_incident(c, str(t.incident_id))
        desk = await _mint(c, user="medical-desk", unit="medical-120", role="dispatcher", ttl_s=600)
        officer = await _mint(c, user="officer-sun", unit="city", role="dispatcher", ttl_s=600)
    async with _client(app, desk) as medical, _client(app, officer) as police:
        assert (await medical.get(f"/api/v1/incidents/{t.incident_id}")).status_code == 404  # not its kind
        r = await police.post(
            f"/api/v1/incidents/{t.incident_id}/handoff", json={"service": "120", "note": "伤者"}
        )
        assert r.status_code == 200, r.text
        assert r.json()["handed_to"] == ["medical-120"] and r.json()["status"] == "routed"
        again = await police.post(f"/api/v1/incidents/{t.incident_id}/handoff", json={"service": "120"})
        assert again.status_code == 409
        bad = await police.post(f"/api/v1/incidents/{t.incident_id}/handoff", json={"service": "110"})
        assert bad.status_code == 422
        seen = await medical.get(f"/api/v1/incidents/{t.incident_id}")
        assert seen.status_code == 200
        entry = [e for e in seen.json()["timeline"] if e["data"].get("handoff")]
        assert (
            entry[0]["actor"]["user"] == "officer-sun" and entry[0]["data"]["handoff"]["to"] == "medical-120"
        )
        listed = (await medical.get("/api/v1/incidents?limit=1000")).json()["items"]
        assert str(t.incident_id) in {i["id"] for i in listed}
