"""The jurisdiction tree in memory: who is below whom, and the router built from the areas.

Loaded from the ``units`` table at start (filled from the demo geography when empty). Visibility is a
subtree question — a token sees its own unit and everything below — answered from this tree, so the
API never walks the table per request.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import shapely
from shapely import STRtree
from shapely.geometry import shape

from .routing import Area, Router

__all__ = ["HANDOVER_KINDS", "UnitNode", "UnitTree"]

# unit kind of an external command centre → the alarm kinds it is handed, when the unit does not say
# (``properties.handover``, set by ``alarmhub-admin import external-units``)
HANDOVER_KINDS: dict[str, tuple[str, ...]] = {"fire": ("fire",), "medical": ("medical",)}
#: an external command centre's kind → the emergency number a dispatcher hands an incident to
SERVICE_NUMBERS = {"fire": "119", "medical": "120"}


@dataclass
class UnitNode:
    id: str
    name: str
    name_en: str | None
    tier: int
    parent_id: str | None
    kind: str
    synthetic: bool
    geometry: dict[str, Any] | None
    properties: dict[str, Any] = field(default_factory=dict)
    children: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "name_en": self.name_en,
            "tier": self.tier,
            "parent": self.parent_id,
            "kind": self.kind,
            "synthetic": self.synthetic,
        }


class UnitTree:
    def __init__(self, nodes: Iterable[UnitNode]) -> None:
        self.nodes: dict[str, UnitNode] = {n.id: n for n in nodes}
        for n in self.nodes.values():
            n.children = []
        for n in sorted(self.nodes.values(), key=lambda n: n.id):
            if n.parent_id and n.parent_id in self.nodes:
                self.nodes[n.parent_id].children.append(n.id)
        self._below: dict[str, frozenset[str]] = {}
        self._sites: tuple[list[str], STRtree] | None = None

    def __contains__(self, unit_id: object) -> bool:
        return unit_id in self.nodes

    def subtree(self, unit_id: str) -> frozenset[str]:
        """The unit and every unit below it."""
        hit = self._below.get(unit_id)
        if hit is None:
            out: set[str] = set()
            stack = [unit_id]
            while stack:
                u = stack.pop()
                if u in out or u not in self.nodes:
                    continue
                out.add(u)
                stack.extend(self.nodes[u].children)
            hit = self._below[unit_id] = frozenset(out)
        return hit

    def is_root(self, unit_id: str) -> bool:
        """The police tree's root (the city): external services (119/120) are roots of nothing."""
        n = self.nodes.get(unit_id)
        return n is not None and n.parent_id is None and n.kind == "police"

    def service_kinds(self, unit_id: str) -> tuple[str, ...] | None:
        """For an external emergency service (fire 119, medical 120): the alarm kinds handed to it."""
        n = self.nodes.get(unit_id)
        if n is None or n.kind == "police" or n.parent_id is not None:
            return None
        kinds = n.properties.get("handover") or HANDOVER_KINDS.get(n.kind)
        return tuple(str(k) for k in kinds) if kinds else None

    def emergency_services(self) -> dict[str, str]:
        """The number a dispatcher hands an incident to → the external unit taking it: ``119`` the fire
        centre (kind ``fire``), ``120`` the medical one (kind ``medical``); the first by id when several."""
        out: dict[str, str] = {}
        for uid in sorted(self.nodes):
            number = SERVICE_NUMBERS.get(self.nodes[uid].kind or "")
            if number and number not in out and self.service_kinds(uid) is not None:
                out[number] = uid
        return out

    def covers(self, unit_id: str, other: str | None) -> bool:
        return other is not None and other in self.subtree(unit_id)

    def tier(self, unit_id: str | None) -> int | None:
        n = self.nodes.get(unit_id) if unit_id else None
        return n.tier if n else None

    def site_at(self, lon: float | None, lat: float | None, station: str | None) -> str | None:
        """The grassroots site (tier 4 police unit with an area) holding the point: the site is told of the
        alarm at once, the station stays responsible. A site of the routed station is preferred; among
        several, the lowest id (deterministic, as for station borders)."""
        if lon is None or lat is None:
            return None
        if self._sites is None:
            ids = sorted(
                n.id for n in self.nodes.values() if n.tier == 4 and n.kind == "police" and n.geometry
            )
            self._sites = (ids, STRtree([shape(self.nodes[i].geometry) for i in ids]))
        ids, tree = self._sites
        if not ids:
            return None
        hits = sorted(ids[i] for i in tree.query(shapely.Point(lon, lat), predicate="intersects"))
        if not hits:
            return None
        own = [h for h in hits if self.nodes[h].parent_id == station]
        return (own or hits)[0]

    def incident_site(self, incident: dict[str, Any]) -> str | None:
        route = incident.get("route")
        return route.get("site") if isinstance(route, dict) else None

    def name(self, unit_id: str | None) -> str | None:
        n = self.nodes.get(unit_id) if unit_id else None
        return n.name if n else None

    def router(self, **kwargs: Any) -> Router:
        """Stations (tier 3 police units with an area) and districts (tier 2) as routing areas."""
        stations = [
            Area(n.id, n.parent_id, shape(n.geometry))
            for n in self.nodes.values()
            if n.tier == 3 and n.kind == "police" and n.geometry
        ]
        districts = [
            Area(n.id, n.id, shape(n.geometry))
            for n in self.nodes.values()
            if n.tier == 2 and n.kind == "police" and n.geometry
        ]
        return Router(stations, districts, **kwargs)
