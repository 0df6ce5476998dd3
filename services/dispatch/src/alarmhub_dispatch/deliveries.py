"""Webhook deliveries to stations' systems and alarm companies: which hooks an incident's events go to,
queued in the transaction that wrote the events, and attempted later with backoff and dead letters.
(``webhooks.py`` signs and sends one request; ``store.webhooks`` holds the registrations.)
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from alarmhub_runtime import get_logger

from .lifecycle import Transition
from .metrics import DispatchMetrics
from .store import Store
from .units import UnitTree
from .webhooks import backoff

__all__ = ["Deliveries"]

log = get_logger("alarmhub.dispatch")


class Deliveries:
    def __init__(
        self,
        store: Store,
        tree_fn: Callable[[], UnitTree],
        metrics: DispatchMetrics,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self._tree_fn = tree_fn
        self.metrics = metrics
        self.clock = clock

    def matches(self, kind: str, target: str, row: dict[str, Any]) -> bool:
        if kind == "company":
            return row.get("company") == target
        kinds = self._tree_fn().service_kinds(target)
        if kinds is not None:  # 119/120: their kinds, and what a dispatcher handed to them
            return row.get("kind") in kinds or target in (row.get("handed_to") or ())
        return (
            self._tree_fn().is_root(target)
            or self._tree_fn().covers(target, row.get("station"))
            or self._tree_fn().covers(target, row.get("district"))
            or self._tree_fn().covers(
                target, self._tree_fn().incident_site(row)
            )  # grassroots site: told at once
        )

    async def enqueue(self, conn: Any, row: dict[str, Any], events: Sequence[Any]) -> None:
        """Queue one delivery per (matching webhook, audit event), in the transaction that wrote the event."""
        if not events:
            return
        await self.store.webhooks.enqueue_deliveries(
            conn, self._items(await self.store.webhooks.active_webhooks(conn), row, events)
        )

    async def enqueue_many(
        self,
        conn: Any,
        audit: Sequence[tuple[dict[str, Any], Sequence[Transition]]],
        events: Sequence[Any],
        hooks: Sequence[Any] | None = None,
    ) -> None:
        """:meth:`enqueue` for a batch: ``events`` are the audit rows of ``audit``, in its order; ``hooks``: the
        active webhooks when the caller read them in this transaction already (else they are read here)."""
        if not events:
            return
        if hooks is None:
            hooks = await self.store.webhooks.active_webhooks(conn)
        if not hooks:
            return
        items, i = [], 0
        for row, trans in audit:
            items += self._items(hooks, row, events[i : i + len(trans)])
            i += len(trans)
        await self.store.webhooks.enqueue_deliveries(conn, items)

    def _items(
        self, all_hooks: Sequence[Any], row: dict[str, Any], events: Sequence[Any]
    ) -> list[tuple[int, str, uuid.UUID, dict[str, Any]]]:
        hooks = [h for h in all_hooks if self.matches(h["target_kind"], h["target"], row)]
        if not hooks or not events:
            return []
        brief = {
            k: row.get(k)
            for k in (
                "station",
                "district",
                "status",
                "kind",
                "priority",
                "decision",
                "verdict",
                "account",
                "source_device_id",
                "company",
            )
        }
        brief["id"] = str(row["id"])
        brief["station_name"] = self._tree_fn().name(row.get("station"))
        items = []
        for ev in events:
            payload = {
                "event": ev.model_dump(mode="json", by_alias=True, exclude_none=True),
                "incident": brief,
            }
            for h in hooks:
                items.append((h["id"], f"{h['id']}:{ev.event_id}", row["id"], payload))
        return items

    async def deliver_due(self, sender: Any, max_attempts: int = 8, concurrency: int = 8) -> int:
        """Attempt every due delivery once (bounded batch); record the outcome, backoff or dead letter."""
        due = await self.store.webhooks.due_deliveries(50)
        sem = asyncio.Semaphore(concurrency)

        async def one(d: dict[str, Any]) -> None:
            async with sem:
                now = self.clock()
                a = await sender.send(d["url"], d["secret"], d["idempotency_key"], d["payload"], now)
                attempts = d["attempts"] + 1
                if a.delivered:
                    status, next_at = "delivered", None
                elif a.retry and attempts < max_attempts:
                    status, next_at = "pending", now + backoff(attempts)
                else:
                    status, next_at = "dead", None
                    log.warning("webhook_dead_lettered", delivery=d["id"], status=a.status, error=a.error)
                self.metrics.webhook_attempts.labels(status).inc()
                await self.store.webhooks.record_attempt(
                    d["id"], status, attempts, next_at, a.status, a.error
                )

        await asyncio.gather(*(one(d) for d in due))
        return len(due)
