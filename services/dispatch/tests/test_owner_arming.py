"""A vehicle owner arms and disarms their own vehicles and sees their state; every call audited; the
gateways are told in the same transaction (NOTIFY alarmhub_registry 'vehicles:<id>')."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from alarmhub_dispatch.app import DispatchApp


async def test_owner_arms_and_disarms_own_vehicle_only(
    dispatch: tuple[DispatchApp, str], registry_notices: asyncio.Queue[str]
) -> None:
    app, token = dispatch
    heard = registry_notices
    mine, other = (f"0131{uuid.uuid4().int % 10**8:08d}" for _ in range(2))
    user = f"owner-{uuid.uuid4().hex[:6]}"
    base = f"http://127.0.0.1:{app.http_port}/api/v1"
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}) as c:
        for dev in (mine, other):
            r = await c.post(
                "/registry/vehicles",
                json={"device_id": dev, "protocol": "jt808", "plate": "粤B1", "owner": user},
            )
            assert r.status_code == 201, r.text
        r = await c.post(
            "/tokens", json={"user": user, "role": "vehicle_owner", "scope": {"vehicles": [mine]}}
        )
        owner = {"Authorization": f"Bearer {r.json()['token']}"}
        while not heard.empty():
            heard.get_nowait()

        r = await c.post(f"/vehicles/{mine}/arm", headers=owner)
        assert r.status_code == 200 and r.json()["armed"] is True and r.json()["incident"] is None
        assert await asyncio.wait_for(heard.get(), 5) == f"vehicles:{mine}"
        view = (await c.get("/owner/vehicles", headers=owner)).json()
        assert [(v["device_id"], v["armed"]) for v in view] == [(mine, True)]
        assert (await c.post(f"/vehicles/{other}/arm", headers=owner)).status_code == 403
        assert (await c.get(f"/vehicles/{other}/state", headers=owner)).status_code == 403
        assert (await c.post(f"/vehicles/{mine}/disarm", headers=owner)).json()["armed"] is False
        assert await asyncio.wait_for(heard.get(), 5) == f"vehicles:{mine}"
        # the city sees any vehicle's state; the owner route is the owner's own
        assert (await c.get(f"/vehicles/{other}/state")).json()["armed"] is False
        assert (await c.get("/owner/vehicles")).status_code == 403
        assert (await c.post("/vehicles/nope/arm")).status_code == 404

    assert app.dispatcher is not None
    rows = await app.dispatcher.store.p.fetch(
        "SELECT kind, method, path, status FROM audit_log WHERE user_name=$1 ORDER BY id", user
    )
    got = [(r["kind"], r["path"], r["status"]) for r in rows if "/vehicles" in r["path"]]
    assert got == [
        ("action", f"/api/v1/vehicles/{mine}/arm", 200),
        ("read", "/api/v1/owner/vehicles", 200),
        ("action", f"/api/v1/vehicles/{other}/arm", 403),  # refused attempts are recorded too
        ("read", f"/api/v1/vehicles/{other}/state", 403),
        ("action", f"/api/v1/vehicles/{mine}/disarm", 200),
    ]


async def test_a_vehicle_no_gateway_watches_cannot_be_armed(dispatch: tuple[DispatchApp, str]) -> None:
    # a vehicle its transport company's platform reports over JT/T 809: ingest-gps's armed watch never sees
    # its ignition or fixes, so "armed" would be a promise nobody keeps
    app, token = dispatch
    dev = f"粤B{uuid.uuid4().int % 10**5:05d}:2"
    user = f"owner-{uuid.uuid4().hex[:6]}"
    base = f"http://127.0.0.1:{app.http_port}/api/v1"
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}) as c:
        body = {"device_id": dev, "protocol": "jt809", "owner": user}
        r = await c.post("/registry/vehicles", json={**body, "armed": True})  # nor through the registry
        assert r.status_code == 422 and "cannot be armed" in r.text, r.text
        r = await c.post("/registry/vehicles", json=body)
        assert r.status_code == 201, r.text
        r = await c.post(
            "/tokens", json={"user": user, "role": "vehicle_owner", "scope": {"vehicles": [dev]}}
        )
        owner = {"Authorization": f"Bearer {r.json()['token']}"}
        r = await c.post(f"/vehicles/{dev}/arm", headers=owner)
        assert r.status_code == 409 and "jt809" in r.json()["detail"], r.text
        assert (await c.get(f"/vehicles/{dev}/state", headers=owner)).json()["armed"] is False
        assert (await c.post(f"/vehicles/{dev}/disarm", headers=owner)).status_code == 200
