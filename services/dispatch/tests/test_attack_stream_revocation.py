"""Attack: a live stream that outlives its token (docs/security.md, "SSE").

Before: ``/api/v1/stream`` checked the token once, at connect; a revoked (signed-out, disabled) or
expired token's stream kept delivering incidents for as long as the connection stayed open. Now the
stream re-checks its token every ``TOKEN_RECHECK_S`` and ends with an ``event: closed``.
"""

from __future__ import annotations

import asyncio
import time

import httpx
from alarmhub_dispatch.app import DispatchApp
from alarmhub_dispatch.routes.stream import TOKEN_RECHECK_S


async def test_a_revoked_tokens_stream_closes(dispatch: tuple[DispatchApp, str]) -> None:
    app, admin = dispatch
    d = app.dispatcher
    assert d is not None
    station = d.router.route(114.0550, 22.5410).station
    base = f"http://127.0.0.1:{app.http_port}"
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {admin}"}, timeout=10
    ) as c:
        r = await c.post("/api/v1/tokens", json={"user": "desk-7", "role": "dispatcher", "unit": station})
        assert r.status_code == 201
        token = r.json()["token"]
    lines: list[str] = []
    hello = asyncio.Event()

    async def listen() -> None:
        async with (
            httpx.AsyncClient(base_url=base, timeout=None) as c,
            c.stream("GET", f"/api/v1/stream?access_token={token}") as s,
        ):
            async for line in s.aiter_lines():
                lines.append(line)
                if line.startswith("event: hello"):
                    hello.set()

    task = asyncio.create_task(listen())
    try:
        await asyncio.wait_for(hello.wait(), 10)
        async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}) as c:
            assert (await c.post("/api/v1/logout")).status_code == 204  # the token is revoked
        t0 = time.monotonic()
        await asyncio.wait_for(task, TOKEN_RECHECK_S + 10)  # the server ended the stream
        waited = time.monotonic() - t0
    finally:
        task.cancel()
    assert "event: closed" in lines and waited <= TOKEN_RECHECK_S + 10
