"""Attack: the dev token as a back door (docs/security.md, "Dev token").

Before: any ``ALARMHUB_DEV_TOKEN`` made a city supervisor token that never expired and outlived the
variable's removal. Now it is refused without the dev stack's ``ALARMHUB_DEV_MODE``, expires, and the next
start without it revokes it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from alarmhub_devstack.testing import settle_stale_escalations
from alarmhub_dispatch.app import DispatchApp
from alarmhub_dispatch.config import DispatchSettings
from prometheus_client import CollectorRegistry
from pydantic import ValidationError


def _settings(stack: Any, topic_prefix: str, **extra: Any) -> DispatchSettings:
    return DispatchSettings(
        KAFKA_BOOTSTRAP=stack.kafka_bootstrap,
        DATABASE_URL=stack.database_url,
        REDIS_URL=stack.redis_url,
        ALARMHUB_TOPIC_PREFIX=topic_prefix,
        ALARMHUB_HTTP_PORT=0,
        ALARMHUB_HTTP_HOST="127.0.0.1",
        ALARMHUB_HEALTH_PORT=0,
        **extra,
    )


def test_dev_token_refused_outside_the_dev_stack() -> None:
    with pytest.raises(ValidationError, match="ALARMHUB_DEV_MODE"):
        DispatchSettings(ALARMHUB_DEV_TOKEN="anything")


async def _units_status(app: DispatchApp, token: str) -> int:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.http_port}", timeout=10) as c:
        r = await c.get("/api/v1/units", headers={"Authorization": f"Bearer {token}"})
        return r.status_code


async def test_dev_token_expires_and_dies_with_its_variable(stack: Any, topic_prefix: str) -> None:
    token = f"dev-{uuid.uuid4().hex}"
    await settle_stale_escalations(stack.database_url)
    app = DispatchApp(
        _settings(
            stack,
            topic_prefix,
            ALARMHUB_DEV_TOKEN=token,
            ALARMHUB_DEV_MODE=True,
            ALARMHUB_DEV_TOKEN_TTL_S=600,
        ),
        CollectorRegistry(),
    )
    await app.start()
    try:
        assert await _units_status(app, token) == 200
    finally:
        await app.stop()
    conn = await asyncpg.connect(stack.database_url)
    try:
        expires = await conn.fetchval(
            "SELECT expires_at FROM api_tokens WHERE created_by = 'ALARMHUB_DEV_TOKEN' AND revoked_at IS NULL"
        )
    finally:
        await conn.close()
    assert expires is not None
    assert timedelta(0) < expires - datetime.now(UTC) <= timedelta(seconds=600)

    # the same database, the variable removed: the old value no longer opens anything
    app = DispatchApp(_settings(stack, topic_prefix), CollectorRegistry())
    await app.start()
    try:
        assert await _units_status(app, token) == 401
    finally:
        await app.stop()
