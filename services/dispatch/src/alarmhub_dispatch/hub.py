"""The live stream's fan-out: incident changes to this replica's SSE subscribers.

Every change the dispatcher commits is pushed here at once; changes other replicas made arrive through
``incidents.events`` (``app.py`` tails it). The hub filters by what each subscriber may see.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from alarmhub_events import IncidentEventType

from .auth import Principal
from .units import UnitTree

__all__ = ["EventHead", "Hub", "event_head"]


def _ts(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


class EventHead(NamedTuple):
    """What the stream feed reads of an ``incidents.events`` record: which incident, what change, when."""

    incident_id: uuid.UUID
    type: str
    at: datetime


def event_head(raw: bytes) -> EventHead:
    """An ``IncidentEvent``'s head from its JSON, without validating the whole event (every replica reads
    every event, most of them its own writes, and needs only these three fields). Raises ValueError,
    KeyError or TypeError on a record that is not an incident event (the tail skips it)."""
    doc = json.loads(raw)
    at = _ts(doc["at"])
    if at.tzinfo is None:
        raise ValueError("at without a time zone")
    return EventHead(uuid.UUID(doc["incident_id"]), IncidentEventType(doc["type"]).value, at)


@dataclass(eq=False)  # identity semantics: subscribers live in a set
class _Sub:
    principal: Principal
    queue: asyncio.Queue[dict[str, Any] | None]


class Hub:
    """Fan-out of incident changes to this replica's SSE subscribers (bounded queues; slow readers are cut).

    Changes arrive twice: at once from this replica's own writes, and from ``incidents.events`` (every
    replica tails it, so a change made by another replica reaches this one's subscribers too). The hub
    remembers the last ``updated_at`` it pushed per incident and drops a change that is not newer.
    """

    def __init__(
        self, tree_fn: Callable[[], UnitTree], queue_size: int = 1000, remember: int = 20_000
    ) -> None:
        self._subs: set[_Sub] = set()
        self._tree_fn = tree_fn
        self._size = queue_size
        self._pushed: OrderedDict[str, str] = OrderedDict()
        self._remember = remember

    def _is_new(self, incident: dict[str, Any]) -> bool:
        iid, version = str(incident.get("id")), str(incident.get("updated_at") or "")
        last = self._pushed.get(iid)
        if last is not None and version and _ts(version) <= _ts(last):
            return False
        self._pushed[iid] = version
        self._pushed.move_to_end(iid)
        while len(self._pushed) > self._remember:
            self._pushed.popitem(last=False)
        return True

    def pushed_since(self, incident_id: str, at: datetime) -> bool:
        """Whether this hub already pushed a version of the incident at least as new as ``at`` (a change learnt
        from ``incidents.events`` that this replica made itself needs no read-back from PostgreSQL)."""
        last = self._pushed.get(incident_id)
        return last is not None and last != "" and _ts(last) >= at

    def publish_if_new(self, incident: dict[str, Any], change: str) -> bool:
        """Push a change learnt from ``incidents.events`` unless this replica already pushed that version."""
        if not self._is_new(incident):
            return False
        self._fan_out(incident, change)
        return True

    def __len__(self) -> int:
        return len(self._subs)

    @contextlib.asynccontextmanager
    async def subscribe(self, principal: Principal) -> AsyncIterator[asyncio.Queue[dict[str, Any] | None]]:
        sub = _Sub(principal, asyncio.Queue(self._size))
        self._subs.add(sub)
        try:
            yield sub.queue
        finally:
            self._subs.discard(sub)

    def publish(self, incident: dict[str, Any], change: str) -> None:
        """Push a change made by this replica (always: an action's answer must show at once)."""
        self._is_new(incident)
        self._fan_out(incident, change)

    def _fan_out(self, incident: dict[str, Any], change: str) -> None:
        tree = self._tree_fn()
        queued = time.monotonic()  # "_queued": for the queue-wait metric, removed before the change is sent
        for sub in list(self._subs):
            if not sub.principal.sees(tree, incident):
                continue
            try:
                sub.queue.put_nowait({"type": change, "incident": incident, "_queued": queued})
            except asyncio.QueueFull:
                self._subs.discard(sub)
                with contextlib.suppress(asyncio.QueueFull):
                    sub.queue.get_nowait()
                    sub.queue.put_nowait(None)  # tells the stream to end; the client reconnects

    def close(self) -> None:
        for sub in list(self._subs):
            with contextlib.suppress(asyncio.QueueFull):
                sub.queue.put_nowait(None)
        self._subs.clear()
