"""The incident state machine, pure: transitions, escalation deadlines, verification outcomes."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from alarmhub_dispatch.lifecycle import ActionError, Policy, apply_action, apply_escalation, apply_triaged
from alarmhub_dispatch.routing import Route, RouteMethod
from alarmhub_events import Actor, Decision, Location, Protocol, TriagedAlarm

from .conftest import T0, triaged

POLICY = Policy(ack_timeout_s=60, district_timeout_s=120)
ROUTE = Route("440304-S06", "440304", RouteMethod.INSIDE)
WANG = Actor(user="officer-wang", unit="440304-S06", role="dispatcher", address="10.0.0.5")


def _open(**kw):  # type: ignore[no-untyped-def]
    t = triaged(**kw)
    fields, trans = apply_triaged(None, t, ROUTE, T0, POLICY)
    return t, fields, trans


def test_new_dispatch_is_opened_routed_and_timed() -> None:
    _, f, trans = _open()
    assert f["status"] == "routed" and f["station"] == "440304-S06"
    assert [t.type.value for t in trans] == ["opened", "routed"]
    assert f["escalate_at"] == T0 + timedelta(seconds=60)


def test_unrouted_incident_stays_opened() -> None:
    t = triaged(lat=None, lon=None)
    f, trans = apply_triaged(None, t, Route(None, None, RouteMethod.NO_LOCATION), T0, POLICY)
    assert f["status"] == "opened" and [x.type.value for x in trans] == ["opened"]


def test_verify_decision_has_no_timer_until_confirmed() -> None:
    _, f, _ = _open(decision="verify")
    assert f["escalate_at"] is None
    row = {**f, "acknowledged_at": None}
    f2, trans = apply_action(row, "verify", {"outcome": "unreachable"}, WANG, T0, POLICY)
    assert f2["decision"] == "dispatch" and f2["escalate_at"] == T0 + timedelta(seconds=60)
    assert [t.type.value for t in trans] == ["verified"] and trans[0].data["outcome"] == "unreachable"
    f3, trans = apply_action(row, "verify", {"outcome": "false"}, WANG, T0, POLICY)
    assert f3["status"] == "closed" and f3["verdict"] == "false_alarm"
    assert [t.type.value for t in trans] == ["verified", "closed"]


def test_major_event_goes_to_district_and_city_at_once() -> None:
    _, f, trans = _open(major=True)
    assert f["status"] == "escalated" and f["escalation_level"] == 2 and f["escalate_at"] is None
    assert trans[-1].data["to"] == ["district", "city"]


def test_timer_escalation_station_to_district_to_city() -> None:
    _, f, _ = _open()
    f1, t1 = apply_escalation(f, T0 + timedelta(seconds=61), POLICY)
    assert f1["escalation_level"] == 1 and f1["status"] == "escalated"
    assert t1[0].data["to"] == ["district"]
    f2, t2 = apply_escalation({**f, **f1}, T0 + timedelta(seconds=200), POLICY)
    assert f2["escalation_level"] == 2 and f2["escalate_at"] is None and t2[0].data["to"] == ["city"]
    with pytest.raises(ActionError):
        apply_escalation({**f, **f1, **f2}, T0, POLICY)


def test_actions_follow_the_lifecycle() -> None:
    _, f, _ = _open()
    row = {**f, "acknowledged_at": None}
    a, trans = apply_action(row, "ack", {"note": "on my way"}, WANG, T0, POLICY)
    assert a["status"] == "acknowledged" and a["escalate_at"] is None and trans[0].actor == WANG
    row = {**row, **a}
    with pytest.raises(ActionError):
        apply_action(row, "ack", {}, WANG, T0, POLICY)
    s, _ = apply_action(row, "on-scene", {}, WANG, T0, POLICY)
    row = {**row, **s}
    with pytest.raises(ValueError):
        apply_action(row, "close", {"verdict": "maybe"}, WANG, T0, POLICY)
    c, trans = apply_action(row, "close", {"verdict": "test"}, WANG, T0, POLICY)
    assert c["status"] == "closed" and trans[0].verdict is not None and trans[0].verdict.value == "test"
    with pytest.raises(ActionError):
        apply_action({**row, **c}, "escalate", {}, WANG, T0, POLICY)


def test_later_decision_updates_without_reopening() -> None:
    t, f, _ = _open(decision="verify", priority=3, score=55)
    row = {**f, "acknowledged_at": None}
    later = triaged(incident_id=t.incident_id, decision="dispatch", priority=1, score=92)
    u, trans = apply_triaged(row, later, ROUTE, T0 + timedelta(seconds=5), POLICY)
    assert u["decision"] == "dispatch" and u["priority"] == 1 and u["score"] == 92 and u["alarm_count"] == 2
    assert u["escalate_at"] == T0 + timedelta(seconds=65)
    assert [x.type.value for x in trans] == ["updated"]


def test_company_is_told_accepted_or_rejected_with_a_reason() -> None:
    _, _, trans = _open()
    assert trans[0].data["accepted"] is True
    t = triaged(lat=22.3193, lon=114.1694)
    _, trans = apply_triaged(None, t, Route(None, None, RouteMethod.OUTSIDE), T0, POLICY)
    assert (trans[0].data["accepted"], trans[0].data["reason"]) == (False, "outside_city")
    _, trans = apply_triaged(None, triaged(decision="suppress"), ROUTE, T0, POLICY)
    assert trans[0].data["accepted"] is False


def test_handoff_to_119_or_120_keeps_the_incident_with_the_police() -> None:
    _, f, _ = _open()
    row = {**f, "acknowledged_at": None, "handed_to": []}
    services = {"119": "fire-119", "120": "medical-120"}
    with pytest.raises(ActionError):  # a city without a 120 centre among its units
        apply_action(row, "handoff", {"service": "120"}, WANG, T0, POLICY, {"119": "fire-119"})
    h, trans = apply_action(
        row, "handoff", {"service": "120", "note": "伤者两人"}, WANG, T0, POLICY, services
    )
    assert h == {"handed_to": ["medical-120"], "updated_at": T0}  # status unchanged: police keep it
    assert trans[0].type.value == "updated" and trans[0].actor == WANG
    assert trans[0].data == {"handoff": {"service": "120", "to": "medical-120"}, "note": "伤者两人"}
    row = {**row, **h}
    with pytest.raises(ActionError):
        apply_action(row, "handoff", {"service": "120"}, WANG, T0, POLICY, services)
    with pytest.raises(ValueError):
        apply_action(row, "handoff", {"service": "110"}, WANG, T0, POLICY, services)
    h2, _ = apply_action(row, "handoff", {"service": "119"}, WANG, T0, POLICY, services)
    assert h2["handed_to"] == ["fire-119", "medical-120"]


def _moved(t: TriagedAlarm, lat: float, lon: float, at_s: float, **kw: Any) -> TriagedAlarm:
    """A later alarm of the same vehicle, raised at a device fix ``at_s`` seconds after T0."""
    ev = t.event.model_copy(
        update={
            "source": t.event.source.model_copy(update={"protocol": Protocol.JT808}),
            "location": Location(lat=lat, lon=lon, source="device"),
            "occurred_at": T0 + timedelta(seconds=at_s),
        }
    )
    return t.model_copy(update={"event": ev, "event_id": uuid.uuid4(), **kw})


def test_a_vehicle_incident_follows_its_vehicles_alarms_to_the_station_where_it_is() -> None:
    # the stolen car: a verify at ignition where it was parked (Futian's station), then the drive-off's
    # dispatch raised at a fix in Luohu — routed there at once, whether or not the telemetry caught up
    t, f, _ = _open(kind="vehicle_theft", decision="verify", score=55, priority=2)
    row = {**f, "acknowledged_at": None}
    luohu = Route("440303-S01", "440303", RouteMethod.INSIDE)
    drive = _moved(t, 22.556, 114.125, 60, decision=Decision.DISPATCH, score=85)
    u, trans = apply_triaged(row, drive, luohu, T0 + timedelta(seconds=61), POLICY)
    assert u["decision"] == "dispatch" and (u["lat"], u["lon"]) == (22.556, 114.125)
    assert u["station"] == "440303-S01" and u["district"] == "440303"
    assert u["location"]["at"] == (T0 + timedelta(seconds=60)).isoformat()
    assert [x.type.value for x in trans] == ["updated", "routed"]
    assert trans[1].data["reason"] == "vehicle_moved" and trans[1].data["from_station"] == "440304-S06"
    # a fix older than the one the incident holds (a late alarm) does not move it back
    row2 = {**row, **u}
    late = _moved(t, 22.5410, 114.0550, 30)
    u2, trans2 = apply_triaged(row2, late, ROUTE, T0 + timedelta(seconds=62), POLICY)
    assert "station" not in u2 and "lat" not in u2 and [x.type.value for x in trans2] == ["updated"]
    # a panel's incident never moves with a later alarm's position
    p, pf, _ = _open()
    u3, _ = apply_triaged({**pf, "acknowledged_at": None}, _moved(p, 22.556, 114.125, 60), luohu, T0, POLICY)
    assert "station" not in u3 and "lat" not in u3
