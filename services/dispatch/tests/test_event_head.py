"""The stream feed's light read of ``incidents.events``: the same three fields as the full model."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from alarmhub_dispatch.hub import EventHead, event_head
from alarmhub_events import Actor, IncidentEvent, IncidentEventType, IncidentStatus


def _event(at: datetime, **extra: object) -> IncidentEvent:
    return IncidentEvent(
        event_id=uuid.uuid4(),
        incident_id=uuid.uuid4(),
        type=IncidentEventType.ROUTED,
        status=IncidentStatus.ROUTED,
        station="s1",
        actor=Actor(user="system"),
        at=at,
        source_device_id="L3#1000",
        data={"note": '轉派 "x"', "at": "not this one"},
        **extra,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 12, 7, 8, 27, 29, 123456, tzinfo=UTC),  # written to the millisecond
        datetime(2026, 12, 7, 8, 27, 29, tzinfo=UTC),  # whole seconds: no fraction written
    ],
)
def test_head_matches_the_model(at: datetime) -> None:
    ev = _event(at, seq=7)
    raw = ev.to_bytes()
    full = IncidentEvent.model_validate_json(raw)
    assert event_head(raw) == EventHead(full.incident_id, full.type.value, full.at)
    assert event_head(raw).at.tzinfo is not None


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",  # not an object: TypeError
        b'{"incident_id": "x", "type": "routed", "at": "2026-12-07T08:27:29Z"}',  # not a uuid
        b'{"incident_id": "%s", "type": "nonsense", "at": "2026-12-07T08:27:29Z"}'
        % str(uuid.uuid4()).encode(),
        b'{"incident_id": "%s", "type": "routed", "at": "2026-12-07T08:27:29"}' % str(uuid.uuid4()).encode(),
        b'{"incident_id": "%s", "type": "routed"}' % str(uuid.uuid4()).encode(),  # no time: KeyError
    ],
)
def test_what_is_not_an_incident_event_raises_what_the_tail_skips(raw: bytes) -> None:
    with pytest.raises((ValueError, KeyError, TypeError)):
        event_head(raw)
