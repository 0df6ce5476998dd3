"""How an incident is shown: the one summary the API, the live stream, the console and webhooks share."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .units import UnitTree

__all__ = ["summary"]


def _iso(v: Any) -> Any:
    return v.isoformat().replace("+00:00", "Z") if isinstance(v, datetime) else v


def summary(row: dict[str, Any], tree: UnitTree | None = None) -> dict[str, Any]:
    """An incident as the API, the stream and the console show it."""
    out = {
        "id": str(row["id"]),
        "status": row["status"],
        "decision": row["decision"],
        "priority": row["priority"],
        "score": row["score"],
        "reasons": row["reasons"],
        "kind": row["kind"],
        "station": row["station"],
        "district": row["district"],
        "location": row["location"],
        "route": row["route"],
        "opened_at": _iso(row["opened_at"]),
        "updated_at": _iso(row["updated_at"]),
        "acknowledged_at": _iso(row["acknowledged_at"]),
        "on_scene_at": _iso(row["on_scene_at"]),
        "closed_at": _iso(row["closed_at"]),
        "verdict": row["verdict"],
        "verification": row["verification"],
        "source_device_id": row["source_device_id"],
        "protocol": row["protocol"],
        "account": row["account"],
        "company": row["company"],
        "major_event": row["major_event"],
        "escalation_level": row["escalation_level"],
        "escalate_at": _iso(row["escalate_at"]),
        "alarm_count": row["alarm_count"],
        "rule_version": row["rule_version"],
        "handed_to": list(row.get("handed_to") or []),
    }
    if tree is not None:
        out["station_name"] = tree.name(row["station"])
        out["district_name"] = tree.name(row["district"])
        node = tree.nodes.get(row["station"] or "")
        out["station_synthetic"] = bool(node and node.synthetic)
    return out
