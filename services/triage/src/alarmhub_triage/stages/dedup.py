"""Dedup: the same signal arriving twice becomes one event.

Dual-path communicators, transmitter retries, two receivers and camera re-sends repeat a signal with
a new ``event_id``. A signal is identified by its fingerprint (source device, kind, qualifier, code,
zone); the first copy within the kind's window (``rules.dedup``) owns it, atomically in Redis, so
several triage instances agree. A replay of the owning copy itself (after a crash) is not a duplicate.
The check runs in the batch's one state call (:mod:`.shared`); this module says what it is asked.
"""

from __future__ import annotations

from alarmhub_events import AlarmEvent

from ..ruleset import RuleSet

__all__ = ["dedup_window", "fingerprint"]


def fingerprint(ev: AlarmEvent) -> str:
    return "|".join((ev.source.device_id, ev.kind.value, ev.qualifier.value, ev.code or "", ev.zone or ""))


def dedup_window(ev: AlarmEvent, rules: RuleSet) -> tuple[int, int]:
    """The kind's dedup window in ms, and the TTL (s) of its key (garbage collection only)."""
    win = rules.dedup.window_s(ev.kind)
    return int(win * 1000), int(win) + 1
