"""The alarm kind a record carries, decoded or not: what the DLQ records and the life-safety page need."""

from __future__ import annotations

import json
from typing import Any

from alarmhub_events import LIFE_SAFETY_KINDS

__all__ = ["LIFE_SAFETY", "alarm_kind", "alarm_kind_of_raw"]

#: the life-safety kinds' values: a dead-lettered alarm of one of these pages at once
LIFE_SAFETY = frozenset(k.value for k in LIFE_SAFETY_KINDS)


def alarm_kind(value: Any) -> str | None:
    """The alarm kind a decoded record carries (``AlarmEvent.kind``, ``TriagedAlarm.event.kind``), if any."""
    kind = getattr(value, "kind", None)
    if kind is None:
        kind = getattr(getattr(value, "event", None), "kind", None)
    return str(getattr(kind, "value", kind)) if kind is not None else None


def alarm_kind_of_raw(raw: bytes) -> str | None:
    """The alarm kind in a record that did not decode, if its JSON still says (``kind`` or ``event.kind``)."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    kind = doc.get("kind")
    if not isinstance(kind, str) and isinstance(doc.get("event"), dict):
        kind = doc["event"].get("kind")
    return kind if isinstance(kind, str) else None
