"""Swinger throttling: a runaway device sending the same signal again and again.

Counts new signals per device, zone and kind within ``rules.swinger.window_s`` (event time, in Redis).
The first signal over ``limit`` is reported once as a ``trouble`` for the alarm company
(``swinger_report``); later ones, and the restores that follow them, are dropped as ``swinger_throttled``
until the rate falls. Kinds dispatched at once (panic, duress, fire…) are never throttled.
The count and the verdict run in the batch's one state call (:mod:`.shared`, ``_TRIAGE`` in
:mod:`alarmhub_triage.state`); this module says which signals are watched and under which key.
"""

from __future__ import annotations

from alarmhub_events import AlarmEvent, Qualifier

from ..ruleset import RuleSet

__all__ = ["swinger_key"]

_WATCHED = frozenset({Qualifier.NEW, Qualifier.RESTORE})


def swinger_key(ev: AlarmEvent, rules: RuleSet) -> str:
    """The key a signal is counted (new) or looked up (restore) under; '' when it is not watched."""
    if ev.qualifier not in _WATCHED or ev.kind in rules.immediate or ev.kind in rules.informational:
        return ""
    return f"{ev.source.device_id}:{ev.zone or ''}:{ev.kind.value}"
