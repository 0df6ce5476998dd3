"""Bearer tokens: who is calling, for which unit and role, and what that lets them see and do.

Tokens belong to named people or systems and are scoped to a unit and a role. Only their SHA-256 is
stored. Roles:

- ``supervisor``: reads and acts on its unit's subtree, mints tokens for its unit or below, edits registries;
- ``dispatcher``: reads and acts on its unit's subtree;
- ``department``: read-only, optionally narrowed by ``scope`` (``districts``, ``kinds``);
- ``alarm_company``: names a ``company`` instead of a unit and sees only its own accounts' incidents;
- ``vehicle_owner``: no unit; ``scope.vehicles`` lists the registered vehicles (device ids) it owns. It may
  report them stolen and sees only the incidents of those vehicles.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any

from alarmhub_events import Actor

from .units import UnitTree

__all__ = ["ACTING_ROLES", "CUTOFF_ROLES", "ROLES", "Principal", "hash_token", "new_token"]

ROLES = ("dispatcher", "supervisor", "department", "alarm_company", "vehicle_owner")
ACTING_ROLES = frozenset({"dispatcher", "supervisor"})
#: who may cut a vehicle's fuel or power (cutoff.py): an explicit rule, never wider than ACTING_ROLES
CUTOFF_ROLES = frozenset({"dispatcher", "supervisor"})
assert CUTOFF_ROLES <= ACTING_ROLES


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "ah_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Principal:
    user: str
    role: str
    unit: str | None
    company: str | None = None
    scope: dict[str, Any] = field(default_factory=dict)
    address: str | None = None

    @property
    def vehicles(self) -> list[str]:
        """The vehicles a ``vehicle_owner`` token speaks for (empty for every other role)."""
        return [str(v) for v in self.scope.get("vehicles") or ()] if self.role == "vehicle_owner" else []

    def actor(self) -> Actor:
        return Actor(
            user=self.user,
            unit=self.unit or (f"company:{self.company}" if self.company else None),
            role=self.role,
            address=self.address,
        )

    @property
    def can_act(self) -> bool:
        return self.role in ACTING_ROLES

    def sees(self, tree: UnitTree, incident: dict[str, Any]) -> bool:
        """Whether this caller may see ``incident`` (a row or summary with station/district/company/kind)."""
        if self.role == "alarm_company":
            return self.company is not None and incident.get("company") == self.company
        if self.role == "vehicle_owner":
            return incident.get("source_device_id") in self.vehicles
        if self.unit is None:
            return False
        if self.role == "department" and self.scope:
            kinds = self.scope.get("kinds")
            if kinds and incident.get("kind") not in kinds:
                return False
            districts = self.scope.get("districts")
            if districts and incident.get("district") not in districts:
                return False
        kinds = tree.service_kinds(self.unit)
        if kinds is not None:  # fire (119) / medical (120) command centres: the alarms handed to them
            return incident.get("kind") in kinds or self.unit in (incident.get("handed_to") or ())
        if tree.is_root(self.unit):
            return True  # the city sees everything, including what could not be routed
        return (
            tree.covers(self.unit, incident.get("station"))
            or tree.covers(self.unit, incident.get("district"))
            or tree.covers(
                self.unit, tree.incident_site(incident)
            )  # a grassroots site: the alarms in its area
        )

    def sql_filter(self, tree: UnitTree, start: int) -> tuple[str, list[Any]]:
        """A WHERE fragment (with ``$start``… placeholders) equivalent to :meth:`sees`."""
        clauses: list[str] = []
        args: list[Any] = []

        def arg(v: Any) -> str:
            args.append(v)
            return f"${start + len(args) - 1}"

        if self.role == "alarm_company":
            return f"company = {arg(self.company)}", args
        if self.role == "vehicle_owner":
            return f"source_device_id = ANY({arg(self.vehicles)}::text[])", args
        if self.unit is None:
            return "false", args
        if self.role == "department" and self.scope:
            if self.scope.get("kinds"):
                clauses.append(f"kind = ANY({arg(list(self.scope['kinds']))}::text[])")
            if self.scope.get("districts"):
                clauses.append(f"district = ANY({arg(list(self.scope['districts']))}::text[])")
        kinds = tree.service_kinds(self.unit)
        if kinds is not None:  # its kinds, and what a dispatcher handed to it
            clauses.append(f"(kind = ANY({arg(list(kinds))}::text[]) OR {arg(self.unit)} = ANY(handed_to))")
        elif not tree.is_root(self.unit):
            below = sorted(tree.subtree(self.unit))
            a = arg(below)
            if tree.tier(self.unit) == 4:  # a grassroots site: the alarms routed through its area
                clauses.append(f"(route->>'site') = ANY({a}::text[])")
            else:
                clauses.append(f"(station = ANY({a}::text[]) OR district = ANY({a}::text[]))")
        return (" AND ".join(clauses) or "true"), args
