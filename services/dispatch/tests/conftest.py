"""Dispatch test helpers: triage decisions as triage would publish them, a running dispatch service, and
what it notifies on the registry channel."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest_asyncio
from alarmhub_devstack.testing import settle_stale_escalations
from alarmhub_dispatch.app import DispatchApp
from alarmhub_dispatch.config import DispatchSettings
from alarmhub_dispatch.store import REGISTRY_CHANNEL
from alarmhub_events import AlarmEvent, AlarmKind, Decision, Location, Protocol, Reason, Source, TriagedAlarm
from prometheus_client import CollectorRegistry

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def triaged(
    *,
    lat: float | None = 22.5410,
    lon: float | None = 114.0550,
    kind: str = "panic",
    decision: str = "dispatch",
    device: str = "L7#4321",
    incident_id: uuid.UUID | None = None,
    score: int = 90,
    priority: int = 1,
    major: bool = False,
) -> TriagedAlarm:
    account = device.split("#", 1)[1] if "#" in device else None
    ev = AlarmEvent(
        kind=AlarmKind(kind),
        source=Source(
            protocol=Protocol.DC09_CID, device_id=device, account=account, line=device.split("#")[0]
        ),
        code="E120",
        zone="001",
        occurred_at=T0,
        received_at=T0,
        location=Location(lat=lat, lon=lon) if lat is not None and lon is not None else None,
    )
    return TriagedAlarm(
        incident_id=incident_id or uuid.uuid4(),
        event=ev,
        decision=Decision(decision),
        score=score,
        priority=priority,
        major_event=major,
        rule_version="test-1",
        reasons=[
            Reason(
                code="panic_code",
                text="Panic code from a supervised account",
                text_zh="受监控账户的紧急求助代码",
                weight=40,
            )
        ],
        decided_at=T0,
    )


@pytest_asyncio.fixture
async def dispatch(stack: Any, topic_prefix: str) -> AsyncIterator[tuple[DispatchApp, str]]:
    """A dispatch service in this process on ephemeral ports; yields (app, dev token)."""
    token = f"dev-{uuid.uuid4().hex}"
    settings = DispatchSettings(
        KAFKA_BOOTSTRAP=stack.kafka_bootstrap,
        DATABASE_URL=stack.database_url,
        REDIS_URL=stack.redis_url,
        ALARMHUB_TOPIC_PREFIX=topic_prefix,
        ALARMHUB_HTTP_PORT=0,
        ALARMHUB_HTTP_HOST="127.0.0.1",
        ALARMHUB_HEALTH_PORT=0,
        ALARMHUB_DEV_TOKEN=token,
        ALARMHUB_DEV_MODE=True,
        ALARMHUB_WEBHOOK_ALLOW_NETWORKS="127.0.0.1/32",  # the tests' receivers listen on loopback
        ALARMHUB_DISPATCH_TIMER_INTERVAL_S=0.2,
    )
    await settle_stale_escalations(stack.database_url)
    app = DispatchApp(settings, CollectorRegistry())
    await app.start()
    try:
        yield app, token
    finally:
        await app.stop()


@pytest_asyncio.fixture
async def registry_notices(stack: Any) -> AsyncIterator[asyncio.Queue[str]]:
    """The payloads dispatch notifies on the registry channel from now on, in order of arrival."""
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(stack.database_url)
    await listener.add_listener(REGISTRY_CHANNEL, lambda *a: heard.put_nowait(a[3]))
    try:
        yield heard
    finally:
        await listener.close()
