"""The JT/T 809 platform registry through the authenticated API, on the real PostgreSQL.

Supervisors only; the password is stored hashed and the cipher keys are never returned; the link status
is read-only; ingest-gps's loader reads what the API wrote (hash, keys, region, disabled).
"""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
from alarmhub_dispatch.app import DispatchApp
from alarmhub_store import verify_password

UID, CENTRE = 810001, 810001


async def test_platform_registry_crud_hashing_and_roles(
    dispatch: tuple[DispatchApp, str], stack: Any
) -> None:
    app, token = dispatch
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{app.http_port}", headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as client:
        body = {
            "user_id": UID,
            "password": "pw810001",
            "gnss_center_id": CENTRE,
            "name": "粤运通",
            "encrypt": {"m1": 30000000, "ia1": 20000000, "ic1": 20000000},
            "allowed": {"plate_prefixes": ["粤B"], "ips": ["10.1.2.0/24"]},
        }
        r = await client.post("/api/v1/registry/platforms", json=body)
        assert r.status_code == 201, r.text
        out = r.json()
        assert "password" not in out and "encrypt" not in out
        assert out["encrypt_configured"] and out["password_hashed"] and out["link_status"] == "down"
        assert out["allowed"] == {"plates": None, "plate_prefixes": ["粤B"], "ips": ["10.1.2.0/24"]}
        assert "pw810001" not in r.text and "30000000" not in r.text

        conn = await asyncpg.connect(stack.database_url)
        try:
            stored = await conn.fetchval("SELECT password FROM platforms WHERE user_id=$1", UID)
            assert stored.startswith("pbkdf2_sha256$") and verify_password(stored, "pw810001")
        finally:
            await conn.close()

        assert (await client.post("/api/v1/registry/platforms", json=body)).status_code == 409
        clash = {**body, "user_id": UID + 1}
        assert (await client.post("/api/v1/registry/platforms", json=clash)).status_code == 409  # same centre
        for bad in (
            {**body, "user_id": UID + 2, "gnss_center_id": CENTRE + 2, "password": "123456789"},
            {**body, "user_id": UID + 2, "gnss_center_id": CENTRE + 2, "link_status": "up"},
            {**body, "user_id": UID + 2, "gnss_center_id": CENTRE + 2, "allowed": {"ips": ["nonsense"]}},
        ):
            assert (await client.post("/api/v1/registry/platforms", json=bad)).status_code == 422
        assert (
            await client.put(f"/api/v1/registry/platforms/{UID}", json={"link_status": "up"})
        ).status_code == 422

        # partial update: the password and keys stay unless given
        r = await client.put(
            f"/api/v1/registry/platforms/{UID}",
            json={"name": "粤运通-2", "allowed": {"plates": ["粤B12345:2"]}},
        )
        assert r.status_code == 200, r.text
        assert r.json()["name"] == "粤运通-2" and r.json()["encrypt_configured"]
        assert r.json()["allowed"]["plates"] == ["粤B12345:2"]
        r = await client.post(f"/api/v1/registry/platforms/{UID}/disable")
        assert r.status_code == 200 and r.json()["disabled"] is True
        assert (await client.get(f"/api/v1/registry/platforms/{UID}")).json()["disabled"] is True
        r = await client.put(
            f"/api/v1/registry/platforms/{UID}", json={"password": "new-pw", "encrypt": None}
        )
        assert r.status_code == 200 and not r.json()["encrypt_configured"]
        assert (await client.post("/api/v1/registry/platforms/999999/disable")).status_code == 404

        # ingest-gps reads what the API wrote
        from alarmhub_ingest_gps.jt809 import load_platforms

        rec = {p.user_id: p for p in await load_platforms(stack.database_url)}[UID]
        assert rec.disabled and rec.cipher is None and rec.allowed_plates == frozenset({"粤B12345:2"})
        assert verify_password(rec.password, "new-pw") and rec.label == "粤运通-2"
        assert (await client.post(f"/api/v1/registry/platforms/{UID}/enable")).json()["disabled"] is False

        # CSV import hashes too
        csv = "user_id,password,gnss_center_id,name,m1,ia1,ic1\n810003,csvpw,810003,csv-op,1,2,3\n"
        r = await client.post("/api/v1/registry/platforms/import", content=csv.encode())
        assert r.status_code == 200 and r.json()["imported"] == 1, r.text
        listed = {p["user_id"]: p for p in (await client.get("/api/v1/registry/platforms")).json()["items"]}
        assert listed[810003]["password_hashed"] and listed[810003]["encrypt_configured"]

        # supervisors only, for reading too (the registry holds credentials)
        r = await client.post(
            "/api/v1/tokens", json={"user": "duty-1", "unit": "440304", "role": "dispatcher"}
        )
        dispatcher = {"Authorization": f"Bearer {r.json()['token']}"}
        assert (await client.get("/api/v1/registry/platforms", headers=dispatcher)).status_code == 403
        assert (
            await client.post(f"/api/v1/registry/platforms/{UID}/disable", headers=dispatcher)
        ).status_code == 403
        assert (
            await client.delete(f"/api/v1/registry/platforms/{UID}", headers=dispatcher)
        ).status_code == 403

        paths = (await client.get("/openapi.json")).json()["paths"]
        assert {
            "/api/v1/registry/platforms",
            "/api/v1/registry/platforms/{user_id}",
            "/api/v1/registry/platforms/{user_id}/disable",
        } <= set(paths)
        assert "PlatformCreate" in str(paths["/api/v1/registry/platforms"]["post"])

        assert (await client.delete(f"/api/v1/registry/platforms/{UID}")).status_code == 204
        assert (await client.get(f"/api/v1/registry/platforms/{UID}")).status_code == 404
