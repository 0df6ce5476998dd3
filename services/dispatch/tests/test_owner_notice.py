"""Which triage decisions tell a vehicle's owner, and what the notice says (pure)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from alarmhub_dispatch.owner_notify import notice_of
from alarmhub_events import AlarmEvent, AlarmKind, Decision, Location, Protocol, Reason, Source, TriagedAlarm

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def decided(kind: str, decision: Decision, protocol: Protocol = Protocol.JT808) -> TriagedAlarm:
    ev = AlarmEvent(
        kind=AlarmKind(kind),
        source=Source(protocol=protocol, device_id="013900000001"),
        code="armed_movement",
        occurred_at=NOW,
        received_at=NOW,
        location=Location(lat=22.54, lon=114.05, source="device"),
        attributes={"signal": "armed_movement", "plate": "粤B12345"},
    )
    return TriagedAlarm(
        incident_id=uuid.uuid4(),
        event=ev,
        decision=decision,
        score=85,
        priority=2,
        rule_version="t",
        decided_at=NOW,
        reasons=[
            Reason(code="vehicle_ignition_then_movement", text="drove off", text_zh="驶离"),
            Reason(code="decision", text="Dispatch (score 85)."),
        ],
    )


def test_stolen_and_driving_tells_the_owner_and_tracks() -> None:
    n = notice_of(decided("vehicle_theft", Decision.DISPATCH))
    assert n is not None and n["track"] is True and n["ask"] == "informed"
    assert n["plate"] == "粤B12345" and n["reasons"] == ["drove off"] and n["reasons_zh"] == ["驶离"]
    assert n["location"] == {"lat": 22.54, "lon": 114.05}


def test_one_ambiguous_signal_asks_the_owner_without_tracking() -> None:
    n = notice_of(decided("vehicle_theft", Decision.VERIFY))
    assert n is not None and n["ask"] == "confirm" and n["track"] is False


def test_no_notice_for_suppressed_sos_or_non_vehicles() -> None:
    assert notice_of(decided("vehicle_theft", Decision.SUPPRESS)) is None
    assert notice_of(decided("vehicle_sos", Decision.DISPATCH)) is None  # the owner may be the one in danger
    assert notice_of(decided("burglary", Decision.DISPATCH, Protocol.DC09_CID)) is None


def test_tracking_only_when_the_signal_says_it_moves() -> None:
    parked = decided("vehicle_theft", Decision.DISPATCH)
    parked = parked.model_copy(
        update={"event": parked.event.model_copy(update={"attributes": {"signal": "armed_ignition"}})}
    )
    assert notice_of(parked)["track"] is False  # type: ignore[index]
