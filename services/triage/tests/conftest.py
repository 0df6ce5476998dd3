"""Triage test helpers: an alarm-event factory and a pipeline on the real Redis under a unique key prefix."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from alarmhub_events import AlarmEvent, AlarmKind, Location, Protocol, Qualifier, Source
from alarmhub_triage import Pipeline, RuleSet, TriageState, load_rules
from redis.asyncio import Redis

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)

MakeEvent = Callable[..., AlarmEvent]


def make_event(
    kind: str = "burglary",
    *,
    device: str = "L1#1234",
    zone: str | None = "001",
    code: str | None = None,
    qualifier: str = "new",
    at_s: float = 0.0,
    path: str | None = None,
    protocol: str = "dc09-cid",
    lat: float | None = None,
    lon: float | None = None,
    attributes: dict[str, Any] | None = None,
    t0: datetime = T0,
) -> AlarmEvent:
    """An AlarmEvent as ingest would publish it; ``at_s`` seconds after ``t0``."""
    at = t0 + timedelta(seconds=at_s)
    account = device.split("#", 1)[1] if "#" in device else None
    return AlarmEvent(
        kind=AlarmKind(kind),
        qualifier=Qualifier(qualifier),
        source=Source(protocol=Protocol(protocol), device_id=device, account=account, path=path),
        code=code,
        zone=zone,
        occurred_at=at,
        received_at=at + timedelta(milliseconds=120),
        location=Location(lat=lat, lon=lon) if lat is not None and lon is not None else None,
        attributes=attributes or {},
    )


@pytest.fixture
def ev() -> MakeEvent:
    return make_event


@pytest.fixture
def rules() -> RuleSet:
    return load_rules()


@pytest_asyncio.fixture
async def redis(stack: Any) -> AsyncIterator[Redis]:
    r = Redis.from_url(stack.redis_url)
    yield r
    await r.aclose()


@pytest_asyncio.fixture
async def triage(redis: Redis, rules: RuleSet) -> AsyncIterator[Pipeline]:
    """A pipeline on the real Redis with a key prefix of its own; keys are removed afterwards."""
    prefix = f"t{uuid.uuid4().hex[:10]}.triage:"
    state = TriageState(redis, prefix, ttl_s=int(rules.longest_window_s) + 600)
    holder = {"rules": rules}
    pipe = Pipeline(state, lambda: holder["rules"])
    pipe.holder = holder  # type: ignore[attr-defined]  # lets a test swap the rules
    yield pipe
    keys = [k async for k in redis.scan_iter(match=prefix + "*", count=1000)]
    for i in range(0, len(keys), 500):
        await redis.delete(*keys[i : i + 500])
