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
        informational = r.informational
        new = Qualifier.NEW
        keys = [correlation_key(it, r) for it in items]
        for it, (key, _) in zip(items, keys, strict=True):
            it.corr_key = key
        # Context first: whether the device is in test mode is part of what the incident remembers.
        await self._context(items, ctx)
        radius, cam_ms, max_recs = c.camera_radius_m, int(c.camera_window_s * 1000), c.max_events_per_incident
        reqs = []
        for it, (key, win) in zip(items, keys, strict=True):
            ev = it.event
            rec = it.record
            if it.test_mode:
                rec = it.record = dataclasses.replace(rec, test=True)
            loc = ev.location
            geo_mode = 0
            # Redis geo indexes stop at ±85.05° latitude; nothing we serve lies beyond.
            if loc is not None and not key.startswith("t:") and abs(loc.lat) <= 85.0:
                geo_mode = 1 if key.startswith("c:") else (0 if key.startswith("v:") else 2)
            reqs.append(CorrelationRequest(
                key, incident_id_for(rec.event_id), it.ts, int(win * 1000),
                it.swinger_report or not (ev.kind in informational or ev.qualifier != new),
                rec.event_id, rec.to_json(), max_recs, (loc.lon, loc.lat) if loc is not None else None,
                geo_mode, radius, cam_ms))
        results = await ctx.state.correlate(reqs)
        out: list[Item] = []
        record = self._record
        for it, res in zip(items, results, strict=True):
            if res.incident_id is None:
                it.dropped = "informational"
                continue
            it.incident_id = res.incident_id
            it.opened = res.opened
            if res.records:
                # On a replay the incident may already hold later events of the batch: look only backwards.
                ts = it.ts
                hist = [x for x in map(record, res.records) if x.t <= ts]
                hist.sort(key=_order)
                it.history = hist
            else:
                it.history = [it.record]
            it.camera_hits = res.camera_hits
            out.append(it)
        return out

    async def _context(self, items: list[Item], ctx: Context) -> None:
        r = ctx.rules
        informational = r.informational
        new = Qualifier.NEW
        cell_deg = r.area.cell_deg
        area_ms = int(r.area.window_s * 1000)
        start_codes, end_codes = r.test_mode.start_codes, r.test_mode.end_codes
        test_ms = int(r.test_mode.duration_s * 1000)
        reqs = []
        for it in items:
            ev = it.event
            loc = ev.location
            cell = None
            if (loc is not None and ev.qualifier == new and not it.corr_key.startswith("t:")
                    and ev.kind not in informational):
                cell = area_cell(loc.lat, loc.lon, cell_deg)
            code = ev.code
            op, until = "", 0
            if code:
                if code in start_codes:
                    op, until = "s", it.ts + test_ms
                elif code in end_codes:
                    op = "e"
            reqs.append(ContextRequest(cell, it.corr_key, it.ts, area_ms, ev.source.device_id, op, until))
        for it, ans in zip(items, await ctx.state.context(reqs), strict=True):
            it.area_sites = ans.area_sites
            it.verdicts = ans.verdicts
            it.test_mode = ans.test_until > it.ts


def _order(x: Record) -> tuple[int, str]:
    return x.t, x.event_id
