"""The gateway's registry view takes a change made elsewhere at once (NOTIFY), not at its next refresh."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
from alarmhub_ingest_gps.registry import VehicleRegistry
from alarmhub_store import REGISTRY_CHANNEL, RegistryListener


async def test_an_armed_flag_set_elsewhere_is_taken_at_once(stack: Any) -> None:
    device = f"0137{uuid.uuid4().int % 10**8:08d}"
    conn = await asyncpg.connect(stack.database_url)
    reloaded = asyncio.Event()
    scopes: list[str] = []

    def on_reload(scope: str) -> None:
        scopes.append(scope)
        reloaded.set()

    # the periodic refresh never comes within the test: only the notification can bring the change
    reg = VehicleRegistry(stack.database_url, refresh_s=3600, on_reload=on_reload)
    listener = RegistryListener(stack.database_url, reg.on_notify)  # as the gateway's app.py wires it
    try:
        await conn.execute(
            "INSERT INTO vehicles (device_id, protocol, plate) VALUES ($1, 'jt808', '粤B12345')", device
        )
        await reg.start()
        await listener.start()
        info = reg.get(device)
        assert info is not None and not info.armed
        async with conn.transaction():  # what dispatch's arm route commits
            await conn.execute("UPDATE vehicles SET armed = true WHERE device_id = $1", device)
            await conn.execute("SELECT pg_notify($1, $2)", REGISTRY_CHANNEL, f"vehicles:{device}")
        await asyncio.wait_for(reloaded.wait(), 5)
        assert (reg.get(device) or info).armed
        reloaded.clear()
        async with conn.transaction():  # what a registry edit commits: the whole table is re-read
            await conn.execute("DELETE FROM vehicles WHERE device_id = $1", device)
            await conn.execute(
                "SELECT pg_notify($1, $2)", REGISTRY_CHANNEL, "accounts"
            )  # not the gateway's table
            await conn.execute("SELECT pg_notify($1, $2)", REGISTRY_CHANNEL, "vehicles")
        await asyncio.wait_for(reloaded.wait(), 5)
        assert reg.get(device) is None
        assert scopes == ["vehicle", "table"]
    finally:
        await listener.stop()
        await reg.stop()
        await conn.close()


async def test_a_write_postgresql_refused_lasts_until_the_next_refresh(stack: Any) -> None:
    """The view takes a terminal's registration before its database write; when PostgreSQL refuses the
    write, the next refresh puts the stored row back (or drops a vehicle never stored), as the full
    rebuild every refresh did before it read only the changed rows."""
    from alarmhub_ingest_gps.sessions import RegistryWrite

    stored, new = (f"0138{uuid.uuid4().int % 10**8:08d}" for _ in range(2))
    conn = await asyncpg.connect(stack.database_url)
    reg = VehicleRegistry(stack.database_url, refresh_s=3600)
    try:
        await conn.execute("INSERT INTO vehicles (device_id, protocol) VALUES ($1, 'jt808')", stored)
        await reg.start()
        assert reg.get(stored) is not None and reg.get(stored).auth_code is None  # type: ignore[union-attr]
        # protocol NULL: PostgreSQL refuses both upserts (NOT NULL), a real database error
        await reg.write(RegistryWrite(stored, None, False, auth_code="A1B2"))  # type: ignore[arg-type]
        await reg.write(RegistryWrite(new, None, True, auth_code="C3D4"))  # type: ignore[arg-type]
        assert reg.get(stored).auth_code == "A1B2" and reg.get(new) is not None  # type: ignore[union-attr]
        await reg.refresh()
        assert reg.get(stored).auth_code is None and reg.get(new) is None  # type: ignore[union-attr]
    finally:
        await reg.stop()
        await conn.execute("DELETE FROM vehicles WHERE device_id = ANY($1::text[])", [stored, new])
        await conn.close()
