"""Correlation: put each event in an incident, and gather what the score needs to know about it.

Triage owns incident identity. Signals of one site (DC-09 account) or one vehicle within an idle
window join its open incident; camera motion near an alarm site within the camera window joins the
site's incident; troubles get incidents of their own so a fault never changes an alarm's decision.

The incident id is derived from the event that opened it (uuid5), and each event's incident is
memoized in Redis: a batch replayed after a crash lands every event in the SAME incident.

Events that only inform (a cancel, an opening, a restore, a test report) join an open incident but
open none (``dropped = "informational"``).
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from typing import Any

from alarmhub_events import Qualifier

from ..model import Item, Record, is_camera, is_vehicle, uuid5_str
from ..ruleset import RuleSet
from ..state import ContextRequest, CorrelationRequest
from ._base import Context

__all__ = ["CorrelateStage", "correlation_key", "incident_id_for"]


def incident_id_for(event_id: str) -> str:
    """The id of an incident opened by ``event_id``: uuid5, so a replay opens the same incident."""
    return uuid5_str(f"incident:{event_id}")


def correlation_key(it: Item, rules: RuleSet) -> tuple[str, float]:
    """The key an event's incident is found under, and the idle window of that key (seconds)."""
    ev = it.event
    dev = ev.source.device_id
    c = rules.correlation
    if it.swinger_report or ev.kind in rules.trouble:
        return "t:" + dev, c.site_window_s
    if is_vehicle(ev):
        return "v:" + dev, c.vehicle_window_s
    if is_camera(ev):
        return "c:" + dev, c.camera_window_s
    return "s:" + dev, c.site_window_s


def area_cell(lat: float, lon: float, cell_deg: float) -> str:
    return f"{math.floor(lat / cell_deg)}:{math.floor(lon / cell_deg)}"


class CorrelateStage:
    name = "correlate"

    def __init__(self, cache_size: int = 100_000) -> None:
        # Records are immutable: each is decoded into a Record once, however many incident updates show it.
        self._cache: dict[str, Record] = {}
        self._cache_size = cache_size

    def _record(self, d: dict[str, Any]) -> Record:
        rec = self._cache.get(d["e"])
        if rec is None:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            rec = self._cache[d["e"]] = Record.from_dict(d)
        return rec

    async def exec(self, items: list[Item], ctx: Context) -> list[Item]:
        r = ctx.rules
        c = r.correlation
        for it in items:
            it.corr_key = correlation_key(it, r)[0]
        # Context first: whether the device is in test mode is part of what the incident remembers.
        await self._context(items, ctx)
        reqs = []
        for it in items:
            ev = it.event
            key, win = correlation_key(it, r)
            if it.test_mode:
                it.record = dataclasses.replace(it.record, test=True)
            informational = ev.kind in r.informational or ev.qualifier != Qualifier.NEW
            trouble = key.startswith("t:")
            geo_mode = 0
            # Redis geo indexes stop at ±85.05° latitude; nothing we serve lies beyond.
            if ev.location is not None and not trouble and abs(ev.location.lat) <= 85.0:
                geo_mode = 1 if is_camera(ev) else (0 if is_vehicle(ev) else 2)
            reqs.append(CorrelationRequest(
                key=key, candidate_id=incident_id_for(it.record.event_id), ts=it.ts,
                window_ms=int(win * 1000), may_open=it.swinger_report or not informational,
                event_id=it.record.event_id, record_json=it.record.to_json(),
                max_records=c.max_events_per_incident,
                lonlat=(ev.location.lon, ev.location.lat) if ev.location else None, geo_mode=geo_mode,
                radius_m=c.camera_radius_m, camera_window_ms=int(c.camera_window_s * 1000)))
        results = await ctx.state.correlate(reqs)
        out: list[Item] = []
        for it, res in zip(items, results, strict=True):
            if res.incident_id is None:
                it.dropped = "informational"
                continue
            it.incident_id = uuid.UUID(res.incident_id)
            it.opened = res.opened
            recs = [self._record(x) for x in res.records] if res.records else [it.record]
            # On a replay the incident may already hold later events of the batch: look only backwards.
            it.history = sorted((x for x in recs if x.t <= it.ts), key=lambda x: (x.t, x.event_id))
            it.camera_hits = res.camera_hits
            out.append(it)
        return out

    async def _context(self, items: list[Item], ctx: Context) -> None:
        r = ctx.rules
        reqs = []
        for it in items:
            ev = it.event
            counted = (ev.location is not None and ev.qualifier == Qualifier.NEW
                       and not it.corr_key.startswith("t:") and ev.kind not in r.informational)
            cell = area_cell(ev.location.lat, ev.location.lon, r.area.cell_deg) if counted and ev.location else None
            code = ev.code or ""
            op, until = "", 0
            if code and code in r.test_mode.start_codes:
                op, until = "s", it.ts + int(r.test_mode.duration_s * 1000)
            elif code and code in r.test_mode.end_codes:
                op = "e"
            reqs.append(ContextRequest(area_cell=cell, site_key=it.corr_key, ts=it.ts,
                                       area_window_ms=int(r.area.window_s * 1000), device=ev.source.device_id,
                                       test_op=op, test_until=until))
        for it, ans in zip(items, await ctx.state.context(reqs), strict=True):
            it.area_sites = ans.area_sites
            it.verdicts = ans.verdicts
            it.test_mode = ans.test_until > it.ts
