"""The queue's filters and text search as SQL conditions on ``incidents`` (pure: values in, clauses out).

The search finds an incident by its alarm account or device id (registry accounts are upper-case), by the plate of its vehicle (the
vehicles registry), or by its site's name or address (the incident's own location, or the alarm
account's registered site). Matching is a case-insensitive "contains"; ``%`` and ``_`` typed by the user
are taken literally.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Filters", "incident_filters"]


@dataclass
class Filters:
    clauses: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def incident_filters(
    start: int,
    *,
    station: str | None = None,
    district: str | None = None,
    decision: str | None = None,
    kind: str | None = None,
    priority: int | None = None,
    q: str | None = None,
) -> Filters:
    """Clauses numbered from ``$start`` on."""
    f = Filters()

    def arg(v: Any) -> str:
        f.args.append(v)
        return f"${start + len(f.args) - 1}"

    for col, val in (("station", station), ("district", district), ("decision", decision), ("kind", kind)):
        if val:
            f.clauses.append(f"{col} = {arg(val)}")
    if priority is not None:
        f.clauses.append(f"priority = {arg(priority)}")
    text = (q or "").strip()
    if text:
        p = arg(_like(text))
        f.clauses.append(
            "("
            f"account ILIKE {p} OR source_device_id ILIKE {p}"
            f" OR location->'site'->>'name' ILIKE {p} OR location->'site'->>'address' ILIKE {p}"
            f" OR source_device_id IN (SELECT device_id FROM vehicles WHERE plate ILIKE {p})"
            " OR EXISTS (SELECT 1 FROM accounts a WHERE a.account = upper(incidents.account)"
            f" AND (a.site_name ILIKE {p} OR a.site_address ILIKE {p}))"
            ")"
        )
    return f
