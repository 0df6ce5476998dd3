"""``/stream``: the live stream of incident changes (Server-Sent Events) the caller may see."""

# no "from __future__ import annotations": FastAPI resolves the dependency aliases at definition time

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from ..auth import Principal, hash_token
from ..service import Dispatcher
from .deps import D, Who, bearer_token

__all__ = ["KEEPALIVE_S", "TOKEN_RECHECK_S", "router"]

KEEPALIVE_S = 15.0
#: how often an open stream checks that its token is still valid: a revoked or expired token's stream
#: ends within this (docs/security.md)
TOKEN_RECHECK_S = 5.0

router = APIRouter()


def _chunk(d: Dispatcher, msgs: list[dict[str, Any] | None]) -> list[str]:
    """The SSE events of queued changes, up to the first None (the stream is cut)."""
    chunk, now = [], time.monotonic()
    for m in msgs:
        if m is None:
            break
        queued = m.pop("_queued", None)
        if queued is not None:
            d.metrics.stream_queue_seconds.observe(now - queued)
        chunk.append(
            f"event: incident\nid: {m['incident']['id']}\ndata: {json.dumps(m, ensure_ascii=False)}\n\n"
        )
    return chunk


async def _events(d: Dispatcher, who: Principal, request: Request) -> AsyncIterator[str]:
    d.metrics.stream_clients.inc()
    token_sha = hash_token(bearer_token(request) or "")
    recheck_at = time.monotonic() + TOKEN_RECHECK_S
    keepalive_at = time.monotonic() + KEEPALIVE_S
    try:
        async with d.hub.subscribe(who) as q:
            yield f"event: hello\ndata: {json.dumps({'user': who.user, 'unit': who.unit})}\n\n"
            while True:
                now = time.monotonic()
                if now >= recheck_at:
                    recheck_at = now + TOKEN_RECHECK_S
                    if await d.store.get_token(token_sha) is None:  # revoked or expired since
                        yield 'event: closed\ndata: {"reason": "token revoked or expired"}\n\n'
                        return
                try:
                    msg = await asyncio.wait_for(q.get(), max(0.01, min(recheck_at, keepalive_at) - now))
                except TimeoutError:
                    if time.monotonic() < keepalive_at:
                        continue
                    keepalive_at = time.monotonic() + KEEPALIVE_S
                    if await request.is_disconnected():
                        return
                    yield ": keepalive\n\n"
                    continue
                # everything queued goes out as one chunk: one write per wake-up, not per change
                # (one change per loop pass drained ~180/s on the busy box and the queue grew)
                msgs = [msg]
                while not q.empty() and len(msgs) < 500:
                    msgs.append(q.get_nowait())
                chunk = _chunk(d, msgs)
                if chunk:
                    yield "".join(chunk)
                if len(chunk) < len(msgs):  # None: this stream was cut (too slow) or the service stops
                    return
    finally:
        d.metrics.stream_clients.dec()


@router.get("/stream")
async def stream(who: Who, d: D, request: Request) -> StreamingResponse:
    return StreamingResponse(
        _events(d, who, request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
