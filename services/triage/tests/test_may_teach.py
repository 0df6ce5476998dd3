"""The verdict consumer's byte test lets through every incident event that teaches a device's history."""

from __future__ import annotations

import itertools
import uuid

from alarmhub_events import Actor, IncidentEvent, IncidentEventType, IncidentStatus, Verdict, utcnow
from alarmhub_triage.app import may_teach, verdict_of


def test_every_event_that_teaches_passes_and_most_that_do_not_are_skipped() -> None:
    taught = skipped = 0
    for kind, status, verdict, outcome in itertools.product(
        IncidentEventType, IncidentStatus, [None, *Verdict], [None, "confirmed", "false", "unreachable"]
    ):
        ev = IncidentEvent(
            event_id=uuid.uuid4(),
            incident_id=uuid.uuid4(),
            type=kind,
            status=status,
            verdict=verdict,
            actor=Actor(user="u1"),
            at=utcnow(),
            source_device_id="L3#1000",
            data={} if outcome is None else {"outcome": outcome},
        )
        raw = ev.to_bytes()
        if verdict_of(ev) is not None:
            taught += 1
            assert may_teach(raw), raw
        elif not may_teach(raw):
            skipped += 1
    assert taught > 0
    # an opened, routed, updated … event of an open incident is not decoded at all
    assert skipped > 0
    opened = IncidentEvent(
        event_id=uuid.uuid4(),
        incident_id=uuid.uuid4(),
        type=IncidentEventType.OPENED,
        status=IncidentStatus.OPENED,
        actor=Actor(user="system"),
        at=utcnow(),
        source_device_id="L3#1000",
    )
    assert not may_teach(opened.to_bytes())
