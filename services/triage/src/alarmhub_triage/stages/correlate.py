"""Correlation: put each event in an incident, and gather what the score needs to know about it.

Triage owns incident identity. Signals of one site (DC-09 account) or one vehicle within an idle
window join its open incident; camera motion near an alarm site within the camera window joins the
site's incident; troubles get incidents of their own so a fault never changes an alarm's decision.

The incident id is derived from the event that opened it (uuid5), and each event's incident is
memoized in Redis: a batch replayed after a crash lands every event in the SAME incident.

Events that only inform (a cancel, an opening, a restore, a test report) join an open incident but
open none (``dropped = "informational"``).

The lookup runs in the batch's one state call (:mod:`.shared`); this module holds what decides the
request (the key, its window, the area cell, the geo mode) and reads the stored records back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..model import Item, Record, is_camera, is_vehicle, uuid5_str
from ..ruleset import RuleSet

__all__ = ["RecordCache", "area_cell", "correlation_key", "geo_mode", "incident_id_for"]


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


def geo_mode(it: Item, key: str) -> int:
    """How an event takes part in the camera ↔ site search: 0 not at all, 1 camera event, 2 alarm site."""
    loc = it.event.location
    # Redis geo indexes stop at ±85.05° latitude; nothing we serve lies beyond.
    if loc is None or key.startswith(("t:", "v:")) or abs(loc.lat) > 85.0:
        return 0
    return 1 if key.startswith("c:") else 2


class RecordCache:
    """Records are immutable: each stored record is decoded into a :class:`Record` once, however many
    incident updates show it."""

    def __init__(self, size: int = 100_000) -> None:
        self._cache: dict[str, Record] = {}
        self._size = size

    def get(self, d: dict[str, Any]) -> Record:
        rec = self._cache.get(d["e"])
        if rec is None:
            if len(self._cache) >= self._size:
                self._cache.clear()
            rec = self._cache[d["e"]] = Record.from_dict(d)
        return rec

    def history(self, records: Sequence[dict[str, Any]], ts: int) -> list[Record]:
        """The incident's records up to ``ts``, in event-time order. On a replay the incident may already
        hold later events of the batch: look only backwards."""
        hist = [x for x in map(self.get, records) if x.t <= ts]
        hist.sort(key=_order)
        return hist


def _order(x: Record) -> tuple[int, str]:
    return x.t, x.event_id
