"""Dedup: the same signal arriving twice becomes one event.

Dual-path communicators, transmitter retries, two receivers and camera re-sends repeat a signal with
a new ``event_id``. A signal is identified by its fingerprint (source device, kind, qualifier, code,
zone); the first copy within the kind's window (``rules.dedup``) owns it, atomically in Redis, so
several triage instances agree. A replay of the owning copy itself (after a crash) is not a duplicate.
"""

from __future__ import annotations

from alarmhub_events import AlarmEvent

from ..model import Item
from ._base import Context

__all__ = ["DedupStage", "fingerprint"]


def fingerprint(ev: AlarmEvent) -> str:
    return "|".join((ev.source.device_id, ev.kind.value, ev.qualifier.value, ev.code or "", ev.zone or ""))


class DedupStage:
    name = "dedup"

    async def exec(self, items: list[Item], ctx: Context) -> list[Item]:
        reqs = []
        for it in items:
            win = ctx.rules.dedup.window_s(it.event.kind)
            reqs.append((fingerprint(it.event), it.record.event_id, it.ts, int(win * 1000), int(win) + 1))
        owners = await ctx.state.claim(reqs)
        out = []
        for it, owner in zip(items, owners, strict=True):
            if owner:
                out.append(it)
            else:
                it.dropped = "duplicate"
        return out
