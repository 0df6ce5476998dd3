"""drop_redis_keys and drop_topics: a run's keys and topics go on its way out, nobody else's do."""

from __future__ import annotations

from typing import Any

import pytest
from alarmhub_devstack.testing import drop_redis_keys, drop_topics, new_prefix
from alarmhub_events import TOPICS
from alarmhub_kafka import ensure_topics
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


async def test_only_the_runs_topics_are_dropped(stack: Any) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    mine, other = new_prefix(), new_prefix()
    await ensure_topics(stack.kafka_bootstrap, prefix=mine)
    await ensure_topics(stack.kafka_bootstrap, prefix=other)
    assert await drop_topics(stack.kafka_bootstrap, mine) == len(TOPICS)
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    try:
        names = set(await admin.list_topics())
    finally:
        await admin.close()
    assert not any(t.startswith(mine) for t in names)
    assert {other + t.name for t in TOPICS} <= names
    assert await drop_topics(stack.kafka_bootstrap, other) == len(TOPICS)
    assert await drop_topics("127.0.0.1:1", other, timeout_s=2) == 0  # no broker: best effort, no error
    with pytest.raises(ValueError):
        await drop_topics(stack.kafka_bootstrap, "")
