"""The incident state machine (pure: rows and models in, new fields and transitions out; clock passed in).

States: opened → routed → acknowledged → on_scene → closed, with ``escalated`` reachable from any open
state. Each transition becomes one immutable audit row and one ``IncidentEvent`` on
``incidents.events``. Escalation: a routed incident not acknowledged within ``ack_timeout_s`` goes to
the district (level 1), then after ``district_timeout_s`` to the city (level 2); a major event goes
to district and city at once. The deadline is a column (``escalate_at``), so timers survive restarts.

Verification (decision ``verify``): the dispatcher's call-back outcome ``confirmed`` or
``unreachable`` turns the incident into a dispatch (timers start), ``false`` closes it as a false alarm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from alarmhub_events import Actor, Decision, IncidentEventType, IncidentStatus, TriagedAlarm, Verdict

from .routing import Route

__all__ = [
    "ActionError",
    "Policy",
    "Transition",
    "acceptance",
    "apply_action",
    "apply_escalation",
    "apply_triaged",
]

SYSTEM = Actor(user="system:dispatch", role="system")
#: what the GPS gateway reports on its own (a JT/T 809 platform's late answer to a vehicle command)
GPS_GATEWAY = Actor(user="system:ingest-gps", role="system")
OPEN = {
    IncidentStatus.OPENED,
    IncidentStatus.ROUTED,
    IncidentStatus.ESCALATED,
    IncidentStatus.ACKNOWLEDGED,
    IncidentStatus.ON_SCENE,
}
UNACKED = {IncidentStatus.OPENED, IncidentStatus.ROUTED, IncidentStatus.ESCALATED}

ESCALATING_DECISIONS = {Decision.DISPATCH}


@dataclass(frozen=True)
class Policy:
    ack_timeout_s: float = 120.0
    district_timeout_s: float = 300.0


@dataclass
class Transition:
    type: IncidentEventType
    status: IncidentStatus
    actor: Actor
    at: datetime
    verdict: Verdict | None = None
    data: dict[str, Any] = field(default_factory=dict)


class ActionError(Exception):
    """A dispatcher action that the incident's state does not allow (HTTP 409)."""


def _deadline(level: int, now: datetime, policy: Policy) -> datetime | None:
    if level == 0:
        return now + timedelta(seconds=policy.ack_timeout_s)
    if level == 1:
        return now + timedelta(seconds=policy.district_timeout_s)
    return None


def acceptance(t: TriagedAlarm, route: Route) -> dict[str, Any]:
    """Accepted or rejected, with a reason, as the alarm company is told (APCO/CSAA alarm-to-PSAP style)."""
    if t.decision == Decision.SUPPRESS:
        neg = [r for r in t.reasons if r.weight is not None and r.weight < 0]
        reason = min(neg, key=lambda r: r.weight or 0).code if neg else "low_score"
        return {"accepted": False, "reason": reason}
    if route.method.value == "outside":
        return {"accepted": False, "reason": "outside_city"}
    if route.method.value == "no_location":
        return {"accepted": True, "reason": "unknown_site"}
    return {"accepted": True}


def apply_triaged(
    row: dict[str, Any] | None, t: TriagedAlarm, route: Route, now: datetime, policy: Policy
) -> tuple[dict[str, Any], list[Transition]]:
    """Fold one triage decision into an incident: the new column values and the transitions it causes."""
    reasons = [r.model_dump(mode="json", exclude_none=True) for r in t.reasons]
    if row is None:
        return _open_incident(t, route, now, policy, reasons)
    fields, trans = _update_incident(row, t, now, policy, reasons)
    _follow_vehicle(row, t, route, now, fields, trans)
    return fields, trans


#: incidents that follow their vehicle: each alarm's fix moves them, and re-routes them (as tracks.py does
#: with telemetry)
VEHICLE_KINDS = frozenset({"vehicle_theft", "vehicle_sos"})


def _follow_vehicle(
    row: dict[str, Any],
    t: TriagedAlarm,
    route: Route,
    now: datetime,
    fields: dict[str, Any],
    trans: list[Transition],
) -> None:
    """A vehicle incident takes the position of a later alarm of its vehicle (the terminal's fix when it
    raised it) and, when that lies in another station's area, is routed there: the stolen car that drives
    off is dispatched to the station where it is now, not where it was parked — whether or not the
    telemetry follow-up (tracks.py) has caught up yet. An older fix than the incident's never moves it."""
    loc = t.event.location
    if row["kind"] not in VEHICLE_KINDS or loc is None or loc.source != "device":
        return
    if IncidentStatus(row["status"]) not in OPEN:
        return
    at = t.event.occurred_at
    known = (row.get("location") or {}).get("at")
    if known is not None and datetime.fromisoformat(known) > at:
        return
    fields.update(
        lat=loc.lat,
        lon=loc.lon,
        location={**loc.model_dump(mode="json", exclude_none=True), "at": at.isoformat()},
    )
    if route.station is None or route.station == row["station"]:
        return
    fields.update(station=route.station, district=route.district, route=route.as_dict())
    status = IncidentStatus(fields.get("status", row["status"]))
    if status == IncidentStatus.OPENED:
        status = IncidentStatus.ROUTED
        fields["status"] = status.value
    data = {
        "route": route.as_dict(),
        "reason": "vehicle_moved",
        "from_station": row["station"],
        "from_district": row["district"],
    }
    trans.append(Transition(IncidentEventType.ROUTED, status, SYSTEM, now, data=data))


def _open_incident(
    t: TriagedAlarm, route: Route, now: datetime, policy: Policy, reasons: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[Transition]]:
    """A first decision: the incident's columns, opened (and routed, escalated for a major event)."""
    ev = t.event
    loc = ev.location
    fields: dict[str, Any] = {
        "id": t.incident_id,
        "decision": t.decision.value,
        "priority": t.priority,
        "score": t.score,
        "reasons": reasons,
        "kind": ev.kind.value,
        "station": route.station,
        "district": route.district,
        "lat": loc.lat if loc else None,
        "lon": loc.lon if loc else None,
        "location": loc.model_dump(mode="json", exclude_none=True) if loc else None,
        "route": route.as_dict(),
        "source_device_id": ev.source.device_id,
        "protocol": ev.source.protocol.value,
        "account": ev.source.account,
        "major_event": t.major_event,
        "rule_version": t.rule_version,
        "opened_at": now,
        "updated_at": now,
        "escalation_level": 0,
        "escalate_at": None,
        "alarm_count": 1,
    }
    trans = [
        Transition(
            IncidentEventType.OPENED,
            IncidentStatus.OPENED,
            SYSTEM,
            now,
            data={
                "decision": t.decision.value,
                "score": t.score,
                "priority": t.priority,
                "triaged_event_id": str(t.event_id),
                **acceptance(t, route),
            },
        )
    ]
    status = IncidentStatus.OPENED
    if route.station is not None or route.district is not None:
        status = IncidentStatus.ROUTED
        trans.append(
            Transition(IncidentEventType.ROUTED, status, SYSTEM, now, data={"route": route.as_dict()})
        )
    if t.decision in ESCALATING_DECISIONS:
        if t.major_event:
            fields["escalation_level"] = 2
            status = IncidentStatus.ESCALATED
            trans.append(
                Transition(
                    IncidentEventType.ESCALATED,
                    status,
                    SYSTEM,
                    now,
                    data={"to": ["district", "city"], "reason": "major_event", "level": 2},
                )
            )
        else:
            fields["escalate_at"] = _deadline(0, now, policy)
    fields["status"] = status.value
    return fields, trans


def _update_incident(
    row: dict[str, Any], t: TriagedAlarm, now: datetime, policy: Policy, reasons: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[Transition]]:
    """A further decision about an existing incident: what it changes, and an escalation it causes."""
    fields: dict[str, Any] = {"updated_at": now, "alarm_count": row["alarm_count"] + 1}
    trans: list[Transition] = []
    status = IncidentStatus(row["status"])
    changed: dict[str, Any] = {}
    if t.priority < row["priority"]:
        fields["priority"] = t.priority
        changed["priority"] = t.priority
    if t.score != row["score"]:
        fields["score"] = t.score
        fields["reasons"] = reasons
        changed["score"] = t.score
    if t.decision.value != row["decision"] and status in OPEN:
        fields["decision"] = t.decision.value
        changed["decision"] = t.decision.value
        if (
            t.decision in ESCALATING_DECISIONS
            and status in UNACKED
            and row["escalate_at"] is None
            and row["escalation_level"] < 2
        ):
            fields["escalate_at"] = _deadline(row["escalation_level"], now, policy)
    if t.major_event and not row["major_event"] and status in OPEN:
        fields["major_event"] = True
        if row["escalation_level"] < 2:
            fields["escalation_level"] = 2
            fields["escalate_at"] = None
            if status in UNACKED:
                status = IncidentStatus.ESCALATED
                fields["status"] = status.value
            trans.append(
                Transition(
                    IncidentEventType.ESCALATED,
                    status,
                    SYSTEM,
                    now,
                    data={"to": ["district", "city"], "reason": "major_event", "level": 2},
                )
            )
    trans.insert(
        0,
        Transition(
            IncidentEventType.UPDATED,
            status,
            SYSTEM,
            now,
            data={
                "triaged_event_id": str(t.event_id),
                "decision": t.decision.value,
                "score": t.score,
                **({"changed": changed} if changed else {}),
            },
        ),
    )
    return fields, trans


def apply_escalation(
    row: dict[str, Any],
    now: datetime,
    policy: Policy,
    actor: Actor = SYSTEM,
    reason: str = "not_acknowledged",
) -> tuple[dict[str, Any], list[Transition]]:
    status = IncidentStatus(row["status"])
    if status not in OPEN:
        raise ActionError(f"incident is {status.value}")
    level = min(2, int(row["escalation_level"]) + 1)
    if level == row["escalation_level"]:
        raise ActionError("already escalated to the city")
    new_status = IncidentStatus.ESCALATED if status in UNACKED else status
    fields = {
        "escalation_level": level,
        "status": new_status.value,
        "updated_at": now,
        "escalate_at": _deadline(level, now, policy) if status in UNACKED else None,
    }
    to = "district" if level == 1 else "city"
    return fields, [
        Transition(
            IncidentEventType.ESCALATED,
            new_status,
            actor,
            now,
            data={"to": [to], "level": level, "reason": reason},
        )
    ]


def _handoff(
    row: dict[str, Any],
    status: IncidentStatus,
    body: dict[str, Any],
    data: dict[str, Any],
    actor: Actor,
    now: datetime,
    services: dict[str, str] | None,
) -> tuple[dict[str, Any], list[Transition]]:
    """A hand-off to 119/120 adds the service's unit (``services``: number → unit, from the unit tree) to
    ``handed_to`` (its tokens and webhooks then see the incident whatever its kind) and records an
    ``updated`` transition with ``data.handoff``; the police keep the incident and its status."""
    service = str(body.get("service") or "")
    if service not in ("119", "120"):
        raise ValueError("service must be 119 or 120")
    unit = (services or {}).get(service)
    if unit is None:
        raise ActionError(f"no {service} centre is configured (alarmhub-admin import external-units)")
    handed = list(row.get("handed_to") or [])
    if unit in handed:
        raise ActionError(f"already handed off to {service}")
    data["handoff"] = {"service": service, "to": unit}
    return (
        {"handed_to": sorted({*handed, unit}), "updated_at": now},
        [Transition(IncidentEventType.UPDATED, status, actor, now, data=data)],
    )


def apply_action(
    row: dict[str, Any],
    action: str,
    body: dict[str, Any],
    actor: Actor,
    now: datetime,
    policy: Policy,
    services: dict[str, str] | None = None,
) -> tuple[dict[str, Any], list[Transition]]:
    """A dispatcher's action (ack, on-scene, escalate, verify, handoff, close) on the incident in ``row``."""
    status = IncidentStatus(row["status"])
    note = body.get("note")
    data: dict[str, Any] = {"note": note} if note else {}
    if status not in OPEN:
        raise ActionError(f"incident is {status.value}")
    if action == "ack":
        if status not in UNACKED:
            raise ActionError(f"incident is already {status.value}")
        return (
            {"status": "acknowledged", "acknowledged_at": now, "escalate_at": None, "updated_at": now},
            [Transition(IncidentEventType.ACKNOWLEDGED, IncidentStatus.ACKNOWLEDGED, actor, now, data=data)],
        )
    if action == "on-scene":
        if status == IncidentStatus.ON_SCENE:
            raise ActionError("already on scene")
        f: dict[str, Any] = {"status": "on_scene", "on_scene_at": now, "escalate_at": None, "updated_at": now}
        if row.get("acknowledged_at") is None:
            f["acknowledged_at"] = now
        return f, [Transition(IncidentEventType.ON_SCENE, IncidentStatus.ON_SCENE, actor, now, data=data)]
    if action == "escalate":
        fields, trans = apply_escalation(row, now, policy, actor, reason="manual")
        trans[0].data.update(data)
        return fields, trans
    if action == "verify":
        outcome = body.get("outcome")
        if outcome not in ("confirmed", "false", "unreachable"):
            raise ValueError("outcome must be confirmed, false or unreachable")
        data["outcome"] = outcome
        trans = [Transition(IncidentEventType.VERIFIED, status, actor, now, data=data)]
        fields = {"verification": outcome, "updated_at": now}
        if outcome == "false":
            fields.update(status="closed", verdict="false_alarm", closed_at=now, escalate_at=None)
            trans.append(
                Transition(
                    IncidentEventType.CLOSED,
                    IncidentStatus.CLOSED,
                    actor,
                    now,
                    verdict=Verdict.FALSE_ALARM,
                    data={"reason": "verification_false"},
                )
            )
        else:
            fields["decision"] = Decision.DISPATCH.value
            if status in UNACKED and row["escalation_level"] < 2:
                fields["escalate_at"] = _deadline(row["escalation_level"], now, policy)
        return fields, trans
    if action == "handoff":
        return _handoff(row, status, body, data, actor, now, services)
    if action == "close":
        verdict = body.get("verdict")
        try:
            v = Verdict(cast(str, verdict))  # None or a wrong value: ValueError
        except ValueError:
            raise ValueError("verdict must be genuine, false_alarm or test") from None
        data["verdict"] = v.value
        return (
            {
                "status": "closed",
                "verdict": v.value,
                "closed_at": now,
                "escalate_at": None,
                "updated_at": now,
            },
            [Transition(IncidentEventType.CLOSED, IncidentStatus.CLOSED, actor, now, verdict=v, data=data)],
        )
    raise ValueError(f"unknown action {action}")
