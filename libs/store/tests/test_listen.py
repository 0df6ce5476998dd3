"""RegistryListener on the real PostgreSQL: a NOTIFY reloads at once, a lost connection is re-established and
followed by a reload of everything (what was notified meanwhile is lost)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from alarmhub_store import REGISTRY_CHANNEL, RegistryListener


async def _wait(pred: Any, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if pred():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def test_notify_reloads_and_a_lost_connection_reloads_everything(stack: Any) -> None:
    seen: list[str | None] = []

    async def on_change(table: str | None) -> None:
        seen.append(table)

    listener = RegistryListener(stack.database_url, on_change, tables={"accounts", "vehicles"}, ping_s=0.5)
    await listener.start()
    conn = await asyncpg.connect(stack.database_url)
    try:
        assert listener.listening()
        async with conn.transaction():  # as dispatch writes: delivered at commit
            await conn.execute("SELECT pg_notify($1, 'accounts')", REGISTRY_CHANNEL)
            await conn.execute("SELECT pg_notify($1, 'accounts')", REGISTRY_CHANNEL)
            await conn.execute("SELECT pg_notify($1, 'cameras')", REGISTRY_CHANNEL)  # not ours
        await _wait(lambda: seen == ["accounts"])
        await conn.execute("SELECT pg_notify($1, 'vehicles')", REGISTRY_CHANNEL)
        await _wait(lambda: seen == ["accounts", "vehicles"])

        # the server ends the listener's session (as a PostgreSQL restart would)
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = 'alarmhub-registry-listener' AND datname = current_database()"
        )
        assert killed >= 1
        await _wait(lambda: seen[-1:] == [None] and listener.listening())
        await conn.execute("SELECT pg_notify($1, 'accounts')", REGISTRY_CHANNEL)
        await _wait(lambda: seen[-1:] == ["accounts"])
    finally:
        await conn.close()
        await listener.stop()


async def test_a_failing_reload_is_logged_and_the_listener_goes_on(stack: Any) -> None:
    calls: list[str | None] = []

    async def on_change(table: str | None) -> None:
        calls.append(table)
        if len(calls) == 1:
            raise OSError("database away")

    listener = RegistryListener(stack.database_url, on_change)
    await listener.start()
    conn = await asyncpg.connect(stack.database_url)
    try:
        for _ in range(2):
            await conn.execute("SELECT pg_notify($1, 'platforms')", REGISTRY_CHANNEL)
            await asyncio.sleep(0.2)
        await _wait(lambda: calls == ["platforms", "platforms"])
        assert listener.reloads == 1
    finally:
        await conn.close()
        await listener.stop()
