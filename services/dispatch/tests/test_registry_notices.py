"""The registry's change notices: a write of a few accounts or vehicles names each row (each gateway then
reads those rows, not its whole table), a larger one names the table; a delete names its row."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import asyncpg
import httpx
from alarmhub_dispatch.app import DispatchApp
from alarmhub_dispatch.store.registry import ROW_NOTICES_MAX
from alarmhub_store import notice_row


async def _heard(queue: asyncio.Queue[str]) -> list[str]:
    """What was notified since the last call (each write's notices arrive at its commit)."""
    out = [await asyncio.wait_for(queue.get(), 5)]
    await asyncio.sleep(0.2)
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


async def test_few_rows_are_named_and_a_bulk_write_names_the_table(
    stack: Any, dispatch: tuple[DispatchApp, str], registry_notices: asyncio.Queue[str]
) -> None:
    app, token = dispatch
    tag = uuid.uuid4().hex[:6].upper()
    heard = registry_notices
    base = f"http://127.0.0.1:{app.http_port}/api/v1"
    try:
        async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}) as c:
            r = await c.post(
                "/registry/accounts", json={"line": "L7", "account": f"A{tag}", "company": "acme"}
            )
            assert r.status_code == 201, r.text
            assert await _heard(heard) == [f"accounts:{json.dumps(['7', f'A{tag}'])}"]
            assert notice_row(f'accounts:["7", "A{tag}"]') == ("accounts", ("7", f"A{tag}"))

            many = ROW_NOTICES_MAX + 5
            csv = "line,account,company\n" + "".join(f"L7,B{tag}{i:02d},acme\n" for i in range(many))
            r = await c.post("/registry/accounts/import", content=csv.encode())
            assert r.status_code in (200, 201), r.text
            assert await _heard(heard) == ["accounts"]

            r = await c.post("/registry/vehicles", json={"device_id": f"0139{tag}", "protocol": "jt808"})
            assert r.status_code == 201, r.text
            assert await _heard(heard) == [f"vehicles:0139{tag}"]

            assert (await c.delete(f"/registry/accounts/L7:A{tag}")).status_code == 204
            assert await _heard(heard) == [f'accounts:["7", "A{tag}"]']
            assert (await c.delete(f"/registry/vehicles/0139{tag}")).status_code == 204
            assert await _heard(heard) == [f"vehicles:0139{tag}"]
    finally:
        conn = await asyncpg.connect(stack.database_url)
        try:
            await conn.execute("DELETE FROM accounts WHERE account LIKE $1", f"%{tag}%")
        finally:
            await conn.close()
