"""Attack: tokens nobody could see or take back (docs/security.md, "Tokens").

Before: a token minted with ``POST /tokens`` (up to 90 days) could not be listed or revoked by anyone; a
leaked one worked until it expired. Now the supervisors of the minting unit and above list them
(``GET /tokens``, never the token or its full hash) and revoke them (``DELETE /tokens/{id}``); another
unit's tokens are invisible (404) to them, and each call is in the audit log.
"""

from __future__ import annotations

import hashlib
import uuid

import httpx
from alarmhub_dispatch.app import DispatchApp

from .test_attack_registry import _client, _mint, _two_stations_in_two_districts


def _id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


async def test_tokens_listed_and_revoked_by_the_minting_unit_only(dispatch: tuple[DispatchApp, str]) -> None:
    app, admin = dispatch
    assert app.dispatcher is not None
    mine, theirs = _two_stations_in_two_districts(app)
    district = app.dispatcher.tree.nodes[mine].parent_id
    tag = uuid.uuid4().hex[:8]
    async with _client(app, admin) as city:
        sup_a = await _mint(city, user=f"sup-a-{tag}", role="supervisor", unit=mine)
        sup_b = await _mint(city, user=f"sup-b-{tag}", role="supervisor", unit=theirs)
        dist_a = await _mint(city, user=f"dist-a-{tag}", role="supervisor", unit=district)
    async with _client(app, sup_a) as a, _client(app, sup_b) as b:
        desk_a = await _mint(a, user=f"desk-a-{tag}", role="dispatcher", unit=mine, ttl_s=90 * 86400)
        desk_b = await _mint(b, user=f"desk-b-{tag}", role="dispatcher", unit=theirs, ttl_s=90 * 86400)

        listed = await a.get("/api/v1/tokens")
        assert listed.status_code == 200
        ids = {t["id"] for t in listed.json()["items"]}
        assert _id(desk_a) in ids and _id(desk_b) not in ids  # the other station's tokens do not exist for it
        assert desk_a not in listed.text and hashlib.sha256(desk_a.encode()).hexdigest() not in listed.text
        row = next(t for t in listed.json()["items"] if t["id"] == _id(desk_a))
        assert (row["user"], row["minted_unit"], row["created_by"]) == (f"desk-a-{tag}", mine, f"sup-a-{tag}")

        # station A's supervisor cannot revoke station B's token: 404, and the token still works
        assert (await a.delete(f"/api/v1/tokens/{_id(desk_b)}")).status_code == 404
    async with _client(app, desk_b) as still:
        assert (await still.get("/api/v1/me")).status_code == 200
    async with _client(app, desk_a) as desk:
        assert (await desk.get("/api/v1/tokens")).status_code == 403  # dispatchers neither list
        assert (await desk.delete(f"/api/v1/tokens/{_id(desk_b)}")).status_code == 403  # nor revoke
    # the district above station A revokes its token; the token stops working at once
    async with _client(app, dist_a) as d:
        assert _id(desk_a) in {t["id"] for t in (await d.get("/api/v1/tokens")).json()["items"]}
        assert (await d.delete(f"/api/v1/tokens/{_id(desk_a)}")).status_code == 204
        active = (await d.get("/api/v1/tokens", params={"active": "true"})).json()["items"]
        assert _id(desk_a) not in {t["id"] for t in active}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.http_port}") as anon:
        r = await anon.get("/api/v1/me", headers={"Authorization": f"Bearer {desk_a}"})
        assert r.status_code == 401
    # both attempts are in the audit log, with who made them and the answer
    async with _client(app, admin) as city:
        rows = (await city.get("/api/v1/audit", params={"kind": "action", "limit": 5000})).json()["items"]
    seen = {(r["user_name"], r["path"], r["status"]) for r in rows}
    assert (f"sup-a-{tag}", f"/api/v1/tokens/{_id(desk_b)}", 404) in seen
    assert (f"dist-a-{tag}", f"/api/v1/tokens/{_id(desk_a)}", 204) in seen
