"""Webhook registrations (``webhooks``) and their deliveries (``webhook_deliveries``): queued in the
transaction that wrote the incident's events, attempted later, dead letters managed on the API."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from ._base import TableStore

__all__ = ["WebhookStore"]


class WebhookStore(TableStore):
    async def create(self, kind: str, target: str | None, url: str, secret: str, created_by: str) -> int:
        return int(
            await self.p.fetchval(
                "INSERT INTO webhooks (target_kind, target, url, secret, created_by) VALUES ($1,$2,$3,$4,$5) RETURNING id",
                kind,
                target,
                url,
                secret,
                created_by,
            )
        )

    async def all(self) -> list[dict[str, Any]]:
        rows = await self.p.fetch(
            "SELECT id, target_kind, target, url, active, created_by, created_at FROM webhooks ORDER BY id"
        )
        return [dict(r) for r in rows]

    async def target(self, hook_id: int) -> asyncpg.Record | None:
        return await self.p.fetchrow("SELECT target_kind, target FROM webhooks WHERE id=$1", hook_id)

    async def deactivate(self, hook_id: int) -> None:
        await self.p.execute("UPDATE webhooks SET active=false WHERE id=$1", hook_id)

    async def dead_letters(self, limit: int) -> list[dict[str, Any]]:
        rows = await self.p.fetch(
            "SELECT d.id, d.webhook_id, w.target_kind, w.target, w.url, d.idempotency_key, d.incident_id, d.attempts,"
            " d.last_status, d.last_error, d.created_at, d.payload FROM webhook_deliveries d"
            f" JOIN webhooks w ON w.id = d.webhook_id WHERE d.status = 'dead' ORDER BY d.id DESC LIMIT {int(limit)}"
        )
        return [dict(r) for r in rows]

    async def dead_letter_target(self, delivery_id: int) -> asyncpg.Record | None:
        return await self.p.fetchrow(
            "SELECT w.target_kind, w.target FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id"
            " WHERE d.id=$1 AND d.status='dead'",
            delivery_id,
        )

    async def retry(self, delivery_id: int) -> None:
        await self.p.execute(
            "UPDATE webhook_deliveries SET status='pending', attempts=0, next_attempt_at=now() WHERE id=$1",
            delivery_id,
        )

    # -- deliveries (queued in the incident's transaction, attempted by deliveries.py) --------------
    async def active_webhooks(self, conn: asyncpg.Connection) -> list[asyncpg.Record]:
        return await conn.fetch("SELECT id, target_kind, target FROM webhooks WHERE active")

    async def enqueue_deliveries(
        self, conn: asyncpg.Connection, items: Sequence[tuple[int, str, uuid.UUID, dict[str, Any]]]
    ) -> None:
        if items:
            await conn.executemany(
                "INSERT INTO webhook_deliveries (webhook_id, idempotency_key, incident_id, payload)"
                " VALUES ($1,$2,$3,$4) ON CONFLICT (idempotency_key) DO NOTHING",
                items,
            )

    async def due_deliveries(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = await self.p.fetch(
            "SELECT d.id, d.idempotency_key, d.payload, d.attempts, w.url, w.secret FROM webhook_deliveries d"
            " JOIN webhooks w ON w.id = d.webhook_id WHERE d.status = 'pending' AND d.next_attempt_at <= now()"
            " AND w.active ORDER BY d.id LIMIT $1",
            limit,
        )
        return [dict(r) for r in rows]

    async def record_attempt(
        self,
        delivery_id: int,
        status: str,
        attempts: int,
        next_at: datetime | None,
        http_status: int | None,
        error: str | None,
    ) -> None:
        await self.p.execute(
            "UPDATE webhook_deliveries SET status=$2, attempts=$3, next_attempt_at=coalesce($4, next_attempt_at),"
            " last_status=$5, last_error=$6, delivered_at = CASE WHEN $2 = 'delivered' THEN now() END WHERE id=$1",
            delivery_id,
            status,
            attempts,
            next_at,
            http_status,
            error,
        )
