"""Commands to an incident's vehicle and the vehicle's late answers, recorded on the incident's timeline.

A JT/T 808 terminal takes its commands through ingest-gps's command endpoint, a GT06 or H02 tracker its
cut-off and restore (the reply's ``answer`` is the tracker's own text or V4 word); a vehicle forwarded by
a JT/T 809 platform takes them down the platform's link (``vehicle_commands.py`` speaks to ingest-gps).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from alarmhub_events import (
    SUPERVISION_ANSWER,
    DeviceStatus,
    IncidentEventType,
    IncidentStatus,
)
from alarmhub_runtime import get_logger

from .auth import Principal
from .cutoff import CUTOFF_COMMANDS, audit_cutoff, check_cutoff
from .errors import Forbidden, NotFound
from .lifecycle import GPS_GATEWAY, ActionError, Transition
from .vehicle_commands import COMMANDS_BY_PROTOCOL

if TYPE_CHECKING:
    from .service import Dispatcher

__all__ = ["record_command", "vehicle_answers", "vehicle_command"]

log = get_logger("alarmhub.dispatch")

#: namespace of the timeline event ids derived from those statuses' event ids (replays collide)
_ANSWER_NS = uuid.UUID("2e35bce1-204d-48f7-8a83-7178711bfac5")


async def vehicle_command(
    d: Dispatcher,
    who: Principal,
    incident_id: uuid.UUID,
    command: str,
    params: dict[str, Any],
    timeout_s: float,
) -> dict[str, Any]:
    """Forward a command to the incident's vehicle and record it, with the terminal's answer, on the timeline."""
    row = await d.store.get_incident(None, incident_id)
    if row is None or not who.sees(d.tree, row):
        raise NotFound()
    if not who.can_act:
        raise Forbidden(f"role {who.role} is read-only")
    device = row.get("source_device_id")
    if not device or d.commands is None:
        raise ActionError("this incident has no vehicle to command")
    protocol = row.get("protocol") or "jt808"
    allowed = COMMANDS_BY_PROTOCOL.get(protocol)
    if allowed is None:
        raise ActionError(f"a {protocol} device takes no vehicle commands")
    if command not in allowed:
        raise ActionError(f"a {protocol} vehicle takes {', '.join(allowed)}, not {command}")
    platform = None
    if protocol == "jt809":
        platform, params = await _platform_request(d, incident_id, who, command, params)
    if command in CUTOFF_COMMANDS:
        reply = await _cutoff(d, who, device, command, params, timeout_s)
        params = {}  # the typed confirmation is not kept on the timeline
        await audit_cutoff(d, who, device, command, reply, str(incident_id))
    else:
        reply = await d.commands.send(
            device,
            command,
            params,
            timeout_s,
            protocol=protocol if protocol == "jt809" else None,
            platform=platform,
        )
    entry = {"command": command, "params": params, "device_id": device, "reply": reply}
    recorded = await record_command(d, who, incident_id, entry)
    assert recorded  # the incident was there before the command; incidents are never deleted
    d.metrics.actions.labels(f"vehicle_{command}").inc()
    log.info(
        "vehicle_command",
        incident_id=str(incident_id),
        command=command,
        user=who.user,
        status=reply.get("status"),
    )
    await d.outbox.publish_soon()
    return {"incident_id": str(incident_id), "device_id": device, "command": command, "reply": reply}


async def _cutoff(
    d: Dispatcher, who: Principal, device: str, command: str, params: dict[str, Any], timeout_s: float
) -> dict[str, Any]:
    """The cut-off's answer: refused here (cutoff.py's rules) or sent with the registry's model."""
    assert d.commands is not None
    sent, refusal = await check_cutoff(d, who, device, command, params, d.clock())
    if refusal is not None:
        return refusal
    return await d.commands.send(device, command, sent, timeout_s)


async def record_command(
    d: Dispatcher, who: Principal, incident_id: uuid.UUID, entry: dict[str, Any]
) -> bool:
    """A vehicle command and its answer as an ``updated`` transition on the incident's timeline (False: no
    such incident). The outbox is the caller's to publish."""
    async with d.store.p.acquire() as conn, conn.transaction():
        row = await d.store.get_incident(conn, incident_id, lock=True)
        if row is None:
            return False
        trans = Transition(
            IncidentEventType.UPDATED,
            IncidentStatus(row["status"]),
            who.actor(),
            d.clock(),
            data={"vehicle_command": entry},
        )
        await d.store.append_transitions(conn, row, [trans])
    return True


async def vehicle_answers(d: Dispatcher, items: Sequence[DeviceStatus]) -> int:
    """Late answers to vehicle commands (``devices.status`` with ``attributes.jt809_supervision_answer``)
    → an ``updated`` transition on the vehicle's most recent open incident; returns how many were added.

    A 0x9401 supervision runs for an hour and platforms answer "processing" first and "handled" later,
    after the HTTP reply of ``vehicle_command`` is long gone. The transition's event id is derived from
    the status event's id, so a replayed status (redelivery, a second consumer) adds nothing — neither
    a timeline entry, nor an ``incidents.events`` record, nor a webhook delivery."""
    added = 0
    for s in items:
        answer = s.attributes.get(SUPERVISION_ANSWER)
        if not isinstance(answer, dict):
            continue
        async with d.store.p.acquire() as conn, conn.transaction():
            incident_id = await d.store.open_incident_of(conn, s.device_id)
            row = await d.store.get_incident(conn, incident_id, lock=True) if incident_id else None
            if row is None or row["status"] == IncidentStatus.CLOSED.value:
                log.info("vehicle_answer_without_incident", device_id=s.device_id, event_id=str(s.event_id))
                continue
            trans = Transition(
                IncidentEventType.UPDATED,
                IncidentStatus(row["status"]),
                GPS_GATEWAY,
                s.occurred_at,
                data={
                    "vehicle_command_answer": {
                        **answer,
                        "command": "supervise",
                        "device_id": s.device_id,
                        "protocol": s.protocol.value,
                        "status_event_id": str(s.event_id),
                    }
                },
            )
            ev = await d.store.append_transition_once(
                conn, row, trans, uuid.uuid5(_ANSWER_NS, str(s.event_id))
            )
            if ev is not None:  # the station's system hears of it as of every other transition
                await d.deliveries.enqueue(conn, row, [ev])
        if ev is not None:
            added += 1
            d.metrics.actions.labels("vehicle_answer").inc()
            log.info(
                "vehicle_answer",
                incident_id=str(row["id"]),
                device_id=s.device_id,
                result=answer.get("result_text"),
            )
    if added:
        await d.outbox.publish_soon()
    return added


async def _platform_request(
    d: Dispatcher, incident_id: uuid.UUID, who: Principal, command: str, params: dict[str, Any]
) -> tuple[str | None, dict[str, Any]]:
    """The JT/T 809 platform that forwarded the incident's latest alarm, and the request's defaults.

    A supervision (0x9401) names the alarm it supervises: its type (the alarm's ``code``, e.g.
    ``theft``, or ``attributes.warn_type``), its time and the dispatcher asking.
    """
    alarms = await d.store.incident_alarms(incident_id)
    event: dict[str, Any] = {}
    for a in reversed(alarms):
        ev = (a.get("triaged") or {}).get("event") or {}
        if (ev.get("source") or {}).get("protocol") == "jt809":
            event = ev
            break
    platform = (event.get("source") or {}).get("platform")
    if command == "supervise":
        attrs = event.get("attributes") or {}
        defaults = {
            "warn_type": attrs.get("warn_type", event.get("code")),
            "warn_time": event.get("occurred_at"),
            "supervisor": who.user,
        }
        params = {**{k: v for k, v in defaults.items() if v is not None}, **params}
    return platform, params
