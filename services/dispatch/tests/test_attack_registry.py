"""Attack: registry secrets and other units' records (docs/security.md, "Registries").

Before: ``GET /api/v1/registry/{kind}`` had no unit scoping and returned every company's DC-09 ``key_hex``
and every terminal's JT/T 808 auth code to any dispatcher or department token; registry writes and the
JT/T 809 platform routes checked only "supervisor", so a station supervisor could re-site another
district's accounts or switch off ``encryption_required``; an out-of-range value (``supervision_s: 0``)
reached PostgreSQL's CHECK and came back as 500. Now: secrets are write-only, reads and writes are scoped
to the caller's subtree, platforms are the city tier's, and every constraint is a 422 naming the field.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from alarmhub_dispatch.app import DispatchApp

KEY = "00112233445566778899AABBCCDDEEFF"


def _client(app: DispatchApp, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{app.http_port}", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


async def _mint(c: httpx.AsyncClient, **body: Any) -> str:
    r = await c.post("/api/v1/tokens", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def _two_stations_in_two_districts(app: DispatchApp) -> tuple[str, str]:
    tree = app.dispatcher.tree
    by_district: dict[str, str] = {}
    for n in sorted(tree.nodes.values(), key=lambda n: n.id):
        if n.tier == 3 and n.kind == "police" and n.parent_id:
            by_district.setdefault(n.parent_id, n.id)
    a, b = list(by_district.values())[:2]
    return a, b


async def test_secrets_are_write_only_and_records_scoped_to_the_unit(
    dispatch: tuple[DispatchApp, str],
) -> None:
    app, token = dispatch
    mine, theirs = _two_stations_in_two_districts(app)
    acct = uuid.uuid4().hex[:6].upper()
    other = uuid.uuid4().hex[:6].upper()
    async with _client(app, token) as city:
        sup = await _mint(city, user="sup-a", role="supervisor", unit=mine)
        disp = await _mint(city, user="disp-a", role="dispatcher", unit=mine)
        for account, unit in ((acct, mine), (other, theirs)):
            r = await city.post(
                "/api/v1/registry/accounts",
                json={
                    "line": "L7",
                    "account": account,
                    "company": "acme",
                    "key_hex": KEY,
                    "encryption_required": True,
                    "unit": unit,
                },
            )
            assert r.status_code == 201, r.text
            assert "key_hex" not in r.json() and r.json()["key_set"] is True
        r = await city.post(
            "/api/v1/registry/vehicles",
            json={"device_id": f"0139{acct}", "protocol": "jt808", "auth_code": "secret-ac", "unit": theirs},
        )
        assert r.status_code == 201 and "auth_code" not in r.json()
        everything = (await city.get("/api/v1/registry/accounts")).text + (
            await city.get("/api/v1/registry/vehicles")
        ).text
        assert KEY not in everything and "secret-ac" not in everything  # not even the city reads them

    async with _client(app, disp) as c:
        listed = (await c.get("/api/v1/registry/accounts", params={"limit": 100000})).json()["items"]
        ids = {i["id"] for i in listed}
        assert f"L7#{acct}" in ids and f"L7#{other}" not in ids  # the neighbour's account does not exist
        assert KEY not in str(listed)
        vehicles = (await c.get("/api/v1/registry/vehicles", params={"limit": 100000})).text
        assert f"0139{acct}" not in vehicles and "secret-ac" not in vehicles
        # a dispatcher writes nothing
        assert (
            await c.put(f"/api/v1/registry/accounts/L7%23{acct}", json={"company": "x"})
        ).status_code == 403

    async with _client(app, sup) as s:
        # the station supervisor cannot switch off encryption on, re-site, or delete the other district's account
        off = await s.put(
            f"/api/v1/registry/accounts/L7%23{other}",
            json={"company": "acme", "encryption_required": False, "unit": mine},
        )
        assert off.status_code == 404
        resite = await s.put(
            f"/api/v1/registry/accounts/L7%23{acct}", json={"company": "acme", "unit": theirs}
        )
        assert resite.status_code == 403
        assert (await s.delete(f"/api/v1/registry/accounts/L7%23{other}")).status_code == 404
        imported = await s.post(
            "/api/v1/registry/accounts/import", content=f"line,account,company\nL7,{other},acme\n".encode()
        )
        assert imported.status_code == 404
        # nor reset the other district's terminal registration (a JT/T 808 takeover by the back door)
        assert (await s.post(f"/api/v1/registry/vehicles/0139{acct}/reset-registration")).status_code == 404
        # nor touch the city's JT/T 809 platforms
        assert (await s.get("/api/v1/registry/platforms")).status_code == 403
        # its own account: updated, and the key it did not send again is kept
        ok = await s.put(
            f"/api/v1/registry/accounts/L7%23{acct}", json={"company": "acme", "supervision_s": 90}
        )
        assert ok.status_code == 200 and ok.json()["key_set"] is True and ok.json()["unit"] == mine

    async with _client(app, token) as city:
        reset = await city.post(f"/api/v1/registry/vehicles/0139{acct}/reset-registration")
        assert reset.status_code == 200
        vehicles = (await city.get("/api/v1/registry/vehicles", params={"limit": 100000})).json()["items"]
        assert [v["auth_code_set"] for v in vehicles if v["device_id"] == f"0139{acct}"] == [False]
        stored = [
            i
            for i in (await city.get("/api/v1/registry/accounts")).json()["items"]
            if i["id"] == f"L7#{other}"
        ]
        assert stored[0]["encryption_required"] is True and stored[0]["unit"] == theirs


async def test_constraint_violations_are_422_naming_the_field(dispatch: tuple[DispatchApp, str]) -> None:
    app, token = dispatch
    async with _client(app, token) as c:
        for body, field in (
            ({"line": "L7", "account": "AB12", "company": "acme", "supervision_s": 0}, "supervision_s"),
            ({"line": "L7", "account": "AB12", "company": "acme", "key_hex": "xyz"}, "key_hex"),
            ({"line": "L7", "account": "AB12", "company": "acme", "site": {"lat": 91, "lon": 0}}, "lat"),
        ):
            r = await c.post("/api/v1/registry/accounts", json=body)
            assert r.status_code == 422, (body, r.status_code, r.text)
            assert field in str(r.json()["detail"][0]["loc"]), r.text
        r = await c.put("/api/v1/registry/accounts/L7%23AB12", json={"company": "acme", "supervision_s": -5})
        assert r.status_code == 422 and "supervision_s" in str(r.json()["detail"]), r.text
        r = await c.post(
            "/api/v1/registry/vehicles", json={"device_id": "x", "protocol": "jt808", "plate_colour": 300}
        )
        assert r.status_code == 422 and "plate_colour" in r.text
        r = await c.post("/api/v1/registry/cameras", json={"id": "c1", "ip": "not-an-ip"})
        assert r.status_code == 422 and "ip" in str(r.json()["detail"][0]["loc"])
        r = await c.post(
            "/api/v1/registry/accounts/import",
            content=b"line,account,company,supervision_s\nL7,AB13,acme,0\n",
        )
        assert r.status_code == 422 and "supervision_s" in r.json()["errors"][0]["error"]
