"""Swinger throttling: a runaway device sending the same signal again and again.

Counts new signals per device, zone and kind within ``rules.swinger.window_s`` (event time, in Redis).
The first signal over ``limit`` is reported once as a ``trouble`` for the alarm company
(``swinger_report``); later ones, and the restores that follow them, are dropped as ``swinger_throttled`` until the
rate falls. Kinds
dispatched at once (panic, duress, fire…) are never throttled.
"""

from __future__ import annotations

from alarmhub_events import Qualifier

from ..model import Item
from ._base import Context

__all__ = ["ThrottleStage"]


class ThrottleStage:
    name = "throttle"

    async def exec(self, items: list[Item], ctx: Context) -> list[Item]:
        r = ctx.rules
        watched = [it for it in items
                   if it.event.qualifier in (Qualifier.NEW, Qualifier.RESTORE)
                   and it.event.kind not in r.immediate and it.event.kind not in r.informational]
        if not watched:
            return items
        win = int(r.swinger.window_s * 1000)
        counts = await ctx.state.swing([
            (f"{it.event.source.device_id}:{it.event.zone or ''}:{it.event.kind.value}", it.record.event_id,
             it.ts, win, it.event.qualifier == Qualifier.NEW) for it in watched])
        for it, n in zip(watched, counts, strict=True):
            if it.event.qualifier == Qualifier.RESTORE:
                if n > r.swinger.limit:        # restores of a throttled signal go with it
                    it.dropped = "swinger_throttled"
            elif n == r.swinger.limit + 1:
                it.swinger_report = True
            elif n > r.swinger.limit + 1:
                it.dropped = "swinger_throttled"
        return [it for it in items if it.dropped is None]
