"""The events dispatch publishes, filled without validation (store/outbox.py), equal the validated model's."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from alarmhub_dispatch.lifecycle import SYSTEM, Transition
from alarmhub_dispatch.store.outbox import _validated_event, event_of, with_seq
from alarmhub_events import Actor, IncidentEventType, IncidentStatus, Verdict
from pydantic import ValidationError

NOW = datetime(2026, 12, 7, 15, 0, 54, 372_123, tzinfo=UTC)
PERSON = Actor(user="duty-1", unit="440304-S06", role="dispatcher", address="10.0.0.7")


def _row(**kw: Any) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "station": "440304-S06",
        "district": "440304",
        "source_device_id": "L3#0901",
    } | kw


@pytest.mark.parametrize(
    ("row", "t"),
    [
        (_row(), Transition(IncidentEventType.OPENED, IncidentStatus.OPENED, SYSTEM, NOW, data={"score": 90})),
        (
            _row(),
            Transition(
                IncidentEventType.ROUTED,
                IncidentStatus.ROUTED,
                SYSTEM,
                NOW,
                data={"route": {"station": "440304-S06", "method": "inside", "distance_m": 0.0}, "handover": ["119"]},
            ),
        ),
        (_row(station=None, district=None, source_device_id=None), Transition(IncidentEventType.OPENED, IncidentStatus.OPENED, SYSTEM, NOW)),
        (
            _row(),
            Transition(IncidentEventType.CLOSED, IncidentStatus.CLOSED, PERSON, NOW.astimezone(timezone(timedelta(hours=8))), Verdict.FALSE_ALARM, {"note": "说明"}),
        ),
        # text the model cleans: control characters in an id and inside data (keys, values, nested)
        (
            _row(source_device_id="L3#09\x0001", station="S\x7f"),
            Transition(IncidentEventType.UPDATED, IncidentStatus.ROUTED, SYSTEM, NOW, data={"zone\x01": ["a\x02", {"b": "c\x9f"}]}),
        ),
        # not of the model's types: validated as before (str enums, a str id)
        (_row(id=str(uuid.uuid4())), Transition("opened", "opened", SYSTEM, NOW, data={}))  # type: ignore[arg-type]
    ],
)  # fmt: skip
def test_filled_event_equals_the_validated_one(row: dict[str, Any], t: Transition) -> None:
    eid = uuid.uuid4()
    fast, slow = event_of(eid, row, t), _validated_event(eid, row, t)
    assert fast == slow
    assert fast.to_bytes() == slow.to_bytes()
    assert fast.model_dump() == slow.model_dump() and fast.model_fields_set == slow.model_fields_set
    assert fast.data is not t.data  # a copy, as validation makes
    seq = with_seq(fast, 42)
    assert (
        seq == slow.model_copy(update={"seq": 42})
        and seq.to_bytes() == slow.model_copy(update={"seq": 42}).to_bytes()
    )
    assert fast.seq is None
    assert fast.model_copy(update={"seq": 7}).seq == 7 and seq.model_copy(update={"seq": 8}).seq == 8


def test_a_naive_time_is_refused_as_before() -> None:
    t = Transition(IncidentEventType.OPENED, IncidentStatus.OPENED, SYSTEM, NOW.replace(tzinfo=None))
    with pytest.raises(ValidationError):
        event_of(uuid.uuid4(), _row(), t)
