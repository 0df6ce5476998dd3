"""The client factory on the real Redis: new pooled connections do not look redis-py's version up again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.utils
from alarmhub_redis import RedisAddress, connect_redis


async def test_growing_pool_reads_no_package_metadata(stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # redis-py resolves its version (importlib.metadata, a walk of sys.path: ~0.8 ms of CPU) for every
    # connection it makes unless it is told; a burst that grows the pool paid that per connection
    looked_up: list[str] = []
    real = redis.utils.get_lib_version

    def counting() -> str:
        looked_up.append("x")
        return real()

    monkeypatch.setattr(redis.utils, "get_lib_version", counting)
    client = connect_redis(RedisAddress(url=stack.redis_url), timeout_s=5.0)
    try:
        # 20 commands at once take 20 connections from an empty pool: each one made and connected
        replies = await asyncio.gather(*(client.ping() for _ in range(20)))
        assert replies == [True] * 20
        pool = client.connection_pool
        made = len(pool._available_connections) + len(pool._in_use_connections)
        assert made >= 2  # the burst did grow the pool (the event loop ran the pings concurrently)
        assert looked_up == []
        # what the server is told (CLIENT SETINFO) is redis-py's own name and version, as before
        info = pool.connection_kwargs["driver_info"]
        assert (info.formatted_name, info.lib_version) == ("redis-py", real())
    finally:
        await client.aclose()
