"""Dedup, swinger throttling and correlation of a batch in ONE atomic call to the shared state.

The three stages read and write only Redis, and each needs the one before (a duplicate is not counted,
a throttled signal is not correlated, a swinger report goes to the device's trouble incident), so they
run together on the server, event by event in batch order (``_TRIAGE`` in :mod:`alarmhub_triage.state`):
one round trip per batch instead of one per stage, one request per event to pack, one answer to parse.
What each asks and why lives in :mod:`.dedup`, :mod:`.throttle` and :mod:`.correlate`; what the answer
means for the item is set here. Atomic on the server, so triage instances sharing a group agree.
"""

from __future__ import annotations

import dataclasses

from alarmhub_events import Qualifier

from ..model import Item
from ..state import StateAnswer, StateParams, StateRequest
from ._base import Context
from .correlate import RecordCache, area_cell, correlation_key, geo_mode, incident_id_for
from .dedup import dedup_window, fingerprint
from .throttle import swinger_key

__all__ = ["SharedStateStage"]


class SharedStateStage:
    name = "shared_state"

    def __init__(self, cache_size: int = 100_000) -> None:
        self._records = RecordCache(cache_size)

    async def exec(self, items: list[Item], ctx: Context) -> list[Item]:
        reqs, params = self.requests(items, ctx)
        return self.apply(items, await ctx.state.triage(reqs, params))

    def requests(self, items: list[Item], ctx: Context) -> tuple[list[StateRequest], StateParams]:
        """What each item asks of the shared state. It depends on the items and the rules only, never on
        an earlier answer, so the next chunk's requests can be built while Redis runs this one's."""
        r = ctx.rules
        c = r.correlation
        informational = r.informational
        new = Qualifier.NEW
        cell_deg = r.area.cell_deg
        start_codes, end_codes = r.test_mode.start_codes, r.test_mode.end_codes
        test_ms = int(r.test_mode.duration_s * 1000)
        reqs = []
        for it in items:
            ev = it.event
            rec = it.record
            key, win = correlation_key(it, r)
            it.corr_key = key
            loc = ev.location
            inform = ev.kind in informational or ev.qualifier is not new
            cell = ""
            if loc is not None and not inform and not key.startswith("t:"):
                cell = area_cell(loc.lat, loc.lon, cell_deg)
            code = ev.code
            op, until = "", 0
            if code:
                if code in start_codes:
                    op, until = "s", it.ts + test_ms
                elif code in end_codes:
                    op = "e"
            dedup_ms, dedup_ttl = dedup_window(ev, r)
            reqs.append(
                StateRequest(
                    fingerprint(ev),
                    rec.event_id,
                    it.ts,
                    dedup_ms,
                    dedup_ttl,
                    swinger_key(ev, r),
                    ev.qualifier is new,
                    ev.source.device_id,
                    key,
                    int(win * 1000),
                    not inform,
                    geo_mode(it, key),
                    (loc.lon, loc.lat) if loc is not None else None,
                    incident_id_for(rec.event_id),
                    rec.to_json(),
                    cell,
                    op,
                    until,
                )
            )
        params = StateParams(
            int(r.swinger.window_s * 1000),
            r.swinger.limit,
            int(c.site_window_s * 1000),
            c.max_events_per_incident,
            c.camera_radius_m,
            int(c.camera_window_s * 1000),
            int(r.area.window_s * 1000),
        )
        return reqs, params

    def apply(self, items: list[Item], answers: list[StateAnswer]) -> list[Item]:
        """Set each item's outcome from its answer; the survivors (not dropped), in order."""
        out: list[Item] = []
        history = self._records.history
        for it, ans in zip(items, answers, strict=True):
            if ans.dropped is not None:
                it.dropped = ans.dropped
                continue
            if ans.swinger_report:
                it.swinger_report = True
                it.corr_key = "t:" + it.event.source.device_id
            it.area_sites = ans.area_sites
            it.verdicts = ans.verdicts
            it.test_mode = ans.test_until > it.ts
            if it.test_mode:
                it.record = dataclasses.replace(it.record, test=True)
            it.incident_id = ans.incident_id
            it.opened = ans.opened
            it.history = history(ans.records, it.ts) if ans.records else [it.record]
            it.camera_hits = ans.camera_hits
            out.append(it)
        return out
