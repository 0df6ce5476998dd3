"""drop_redis_keys: a bench's keys go on its way out, nobody else's do."""

from __future__ import annotations

from typing import Any

import pytest
from alarmhub_devstack.testing import drop_redis_keys, new_prefix
from redis.asyncio import Redis


async def test_only_the_runs_keys_are_dropped(stack: Any) -> None:
    prefix, other = new_prefix(), new_prefix()
    r = Redis.from_url(stack.redis_url)
    try:
        async with r.pipeline(transaction=False) as p:
            for k in range(2_500):  # more than one chunk of UNLINK
                p.set(f"{prefix}triage:ev:{k}", b"x", px=600_000)
            p.set(f"{other}triage:ev:0", b"x", px=600_000)
            p.set(prefix.rstrip("."), b"x", px=600_000)  # not under the prefix: the dot is part of it
            await p.execute()
        assert await drop_redis_keys(stack.redis_url, prefix) == 2_500
        assert [k async for k in r.scan_iter(match=prefix + "*", count=5000)] == []
        assert await r.exists(f"{other}triage:ev:0", prefix.rstrip(".")) == 2
        assert await drop_redis_keys(stack.redis_url, prefix) == 0
        with pytest.raises(ValueError):
            await drop_redis_keys(stack.redis_url, "")
    finally:
        await r.delete(f"{other}triage:ev:0", prefix.rstrip("."))
        await r.aclose()
