"""Attack: probing the API without leaving a trace (docs/security.md, "Audit").

Before: only authenticated calls reached the audit log, so a stranger trying tokens, or a token trying
routes it has no right to, left no row. Now every 401 and 403 is an ``audit_log`` row (``kind =
'denied'``) with the path, status, address and, for a 403, the caller.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
from alarmhub_dispatch.app import DispatchApp


async def test_401_and_403_are_audited(dispatch: tuple[DispatchApp, str], stack: Any) -> None:
    app, _ = dispatch
    marker = uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.http_port}", timeout=10) as c:
        anonymous = await c.get(f"/api/v1/units?probe={marker}")
        forged = await c.get(f"/api/v1/units?probe={marker}", headers={"Authorization": "Bearer ah_guess"})
    assert anonymous.status_code == 401 and forged.status_code == 401
    conn = await asyncpg.connect(stack.database_url)
    try:
        rows = await conn.fetch(
            "SELECT kind, status, path, address, user_name FROM audit_log WHERE detail->>'query' LIKE $1",
            f"%{marker}%",
        )
    finally:
        await conn.close()
    assert [(r["kind"], r["status"], r["path"]) for r in rows] == [("denied", 401, "/api/v1/units")] * 2
    assert all(r["address"] == "127.0.0.1" and r["user_name"] is None for r in rows)
