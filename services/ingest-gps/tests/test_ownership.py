"""Session ownership in Redis (real Redis): claim, refresh of active sessions only, compare-and-delete."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import redis.asyncio as aioredis
from alarmhub_ingest_gps.ownership import SessionOwnership
from prometheus_client import CollectorRegistry, Counter


async def _until(check: Any) -> None:
    for _ in range(100):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


async def test_claim_refresh_release(stack: Any) -> None:
    prefix = f"t-{uuid.uuid4().hex[:8]}:gps:"
    reg = CollectorRegistry()
    errors = Counter("ownership_errors_total", "", registry=reg)
    a = SessionOwnership(
        stack.redis_url, prefix=prefix, gateway_id="gw-a", ttl_s=30, refresh_s=0.1, errors=errors
    )
    r = aioredis.from_url(stack.redis_url, decode_responses=True)
    activity: dict[str, float] = {}
    await a.start(
        "http://10.0.0.1:9112/commands", lambda since: [s for s, t in activity.items() if t >= since]
    )
    try:
        assert await r.get(f"{prefix}gateway:gw-a") == "http://10.0.0.1:9112/commands"
        assert 0 < await r.ttl(f"{prefix}gateway:gw-a") <= 1  # 3 × refresh, rounded up

        # login: claimed (the newest login wins, even over another gateway's key)
        await r.set(f"{prefix}owner:dev-1", "gw-b", ex=30)
        a.claim("dev-1")
        a.claim("jt809:42")

        async def claimed() -> bool:
            return (
                await r.get(f"{prefix}owner:dev-1") == "gw-a"
                and await r.get(f"{prefix}owner:jt809:42") == "gw-a"
            )

        await _until(claimed)
        assert 25 < await r.ttl(f"{prefix}owner:dev-1") <= 30

        # refresh: only sessions with traffic since the last tick, never over another gateway's claim
        await r.set(f"{prefix}owner:dev-1", "gw-b", ex=30)  # the terminal moved to gw-b
        await r.delete(f"{prefix}owner:dev-2")  # dev-2's key expired while its session is alive here
        await r.set(f"{prefix}owner:dev-3", "gw-a", ex=5)  # dev-3 is silent
        now = time.monotonic() + 60  # "active" at every tick of this test
        activity.update({"dev-1": now, "dev-2": now})

        async def refreshed() -> bool:
            return await r.get(f"{prefix}owner:dev-2") == "gw-a"

        await _until(refreshed)
        assert await r.get(f"{prefix}owner:dev-1") == "gw-b"
        assert await r.ttl(f"{prefix}owner:dev-3") <= 5  # not refreshed: no traffic

        # close: deleted only while ours
        a.release("dev-1")  # gw-b's now
        a.release("dev-2")
        activity.clear()

        async def released() -> bool:
            return await r.get(f"{prefix}owner:dev-2") is None

        await _until(released)
        assert await r.get(f"{prefix}owner:dev-1") == "gw-b"
    finally:
        await a.stop()
    assert await r.get(f"{prefix}gateway:gw-a") is None  # a stopping gateway withdraws its URL
    assert reg.get_sample_value("ownership_errors_total") == 0
    left = [k async for k in r.scan_iter(f"{prefix}*")]
    if left:  # keys with a TTL may all have expired by now on a slow run: DEL with no key is an error
        await r.delete(*left)
    await r.aclose()


async def test_redis_down_never_blocks_sessions() -> None:
    reg = CollectorRegistry()
    errors = Counter("ownership_errors_total", "", registry=reg)
    a = SessionOwnership(
        "redis://127.0.0.1:1/0", prefix="x:", gateway_id="gw", ttl_s=30, refresh_s=0.05, errors=errors
    )
    t0 = time.monotonic()
    await a.start("http://h:1/commands", lambda since: ["dev-1"])
    for i in range(1000):
        a.claim(f"dev-{i}")  # queued, never awaited by the caller
    await asyncio.sleep(0.2)
    await a.stop()
    assert time.monotonic() - t0 < 3
    assert (reg.get_sample_value("ownership_errors_total") or 0) >= 2  # counted, not raised
