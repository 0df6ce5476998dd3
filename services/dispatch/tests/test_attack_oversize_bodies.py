"""Attack: oversize bodies (docs/security.md, "Abuse limits").

Before: dispatch read and parsed request bodies of any size before authenticating the caller (a login
with a 5 MB JSON body was parsed and answered 422; an anonymous registry POST was read whole before the
401; the CSV import buffered the whole body before its own check). Now every body is bounded before
anything reads it: 413 for a declared or streamed body over the limit, token or not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from alarmhub_dispatch.api import MAX_BODY_BYTES
from alarmhub_dispatch.app import DispatchApp


async def _stream(total: int, chunk: int = 64 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    yield b'{"user": "x", "password": "'
    while sent < total:
        yield b"a" * chunk
        sent += chunk
    yield b'"}'


async def test_oversize_bodies_are_refused_before_parsing_and_authentication(
    dispatch: tuple[DispatchApp, str],
) -> None:
    app, token = dispatch
    big = b'{"user": "x", "password": "' + b"a" * (5 * 1024 * 1024) + b'"}'
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.http_port}", timeout=30) as c:
        declared = await c.post("/api/v1/login", content=big, headers={"Content-Type": "application/json"})
        streamed = await c.post(
            "/api/v1/registry/accounts",
            content=_stream(2 * MAX_BODY_BYTES),  # chunked: no Content-Length to go by
            headers={"Content-Type": "application/json"},
        )
        authed_import = await c.post(
            "/api/v1/registry/accounts/import",
            content=b"x" * (51 * 1024 * 1024),
            headers={"Authorization": f"Bearer {token}"},
        )
        small = await c.post("/api/v1/login", json={"user": "nobody", "password": "wrong"})
    assert declared.status_code == 413 and streamed.status_code == 413
    assert authed_import.status_code == 413
    assert small.status_code == 401  # ordinary requests are untouched
