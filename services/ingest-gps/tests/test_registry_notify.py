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
