"""A vehicle owner's theft report: an alarm like any other, then tracking of the vehicle.

The report becomes a normalized :class:`AlarmEvent` (kind ``vehicle_theft``, ``source.device_id`` = the
vehicle's terminal, attribute ``owner_report``) published to ``alarms.raw``, so triage decides about it
and owns the incident's identity exactly as for the terminal's own alarms (a report about a vehicle
whose terminal already alarmed joins that incident). Tracking starts at once: a JT/T 808 0x8202
temporary-tracking command through ingest-gps (the existing vehicle-command forwarding), recorded on
the incident's timeline once dispatch has materialized it.

Who may report: a ``vehicle_owner`` token (minted by a supervisor after checking the owner's papers;
``scope.vehicles`` names the registered vehicles it speaks for), or a dispatcher/supervisor taking the
report by phone for any registered vehicle. Everything else is refused.
"""

# no "from __future__ import annotations": FastAPI resolves the dependency annotations at definition time

import asyncio
import json
import uuid
from datetime import datetime
from typing import Any, Literal

from alarmhub_events import (
    ALARMS_RAW,
    AlarmEvent,
    AlarmKind,
    IncidentEventType,
    IncidentStatus,
    Location,
    Protocol,
    Source,
)
from alarmhub_geo import gcj02_to_wgs84
from alarmhub_runtime import get_logger
from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from .auth import Principal
from .lifecycle import Transition
from .service import Dispatcher, summary
from .vehicle_commands import GatewayUnreachable

__all__ = ["TheftReport", "add_theft_routes", "report_event"]

log = get_logger("alarmhub.dispatch")

#: ``code`` of the alarm an owner's report becomes (there is no device code: the owner is the source)
OWNER_REPORT_CODE = "OWNER_REPORT"


class TrackParams(BaseModel):
    interval_s: int = Field(default=10, ge=1, le=3600, description="position report interval")
    validity_s: int = Field(
        default=3600, ge=0, le=86400, description="how long the terminal tracks (0x8202 validity)"
    )


class TheftReport(BaseModel):
    note: str | None = Field(default=None, max_length=2000, description="what the owner says happened")
    seen_at: datetime | None = Field(default=None, description="when the owner last saw the vehicle")
    lat: float | None = Field(
        default=None, ge=-90, le=90, description="where it was last seen (if no fix is known)"
    )
    lon: float | None = Field(default=None, ge=-180, le=180)
    crs: Literal["WGS84", "GCJ02"] = Field(default="WGS84", description="Chinese web maps give GCJ-02")
    track: TrackParams = Field(default_factory=TrackParams)
    wait_s: float = Field(default=10.0, ge=0, le=30, description="how long to wait for the incident to open")


def report_event(
    vehicle: dict[str, Any], who: Principal, body: TheftReport, now: datetime, last_fix: dict[str, Any] | None
) -> AlarmEvent:
    """The normalized alarm of a theft report (pure)."""
    loc = None
    if body.lat is not None and body.lon is not None:
        lon, lat = gcj02_to_wgs84(body.lon, body.lat) if body.crs == "GCJ02" else (body.lon, body.lat)
        loc = Location(lat=lat, lon=lon)
    elif last_fix is not None:
        loc = Location(lat=last_fix["lat"], lon=last_fix["lon"], source="device")
    try:
        protocol = Protocol(vehicle["protocol"])
    except ValueError:
        protocol = Protocol.JT808
    attrs: dict[str, Any] = {
        "owner_report": True,
        "authorized": False,
        "reported_by": who.user,
        "reporter_role": who.role,
        "plate": vehicle.get("plate"),
    }
    if body.note:
        attrs["note"] = body.note
    if last_fix is not None and loc is not None and loc.source == "device":
        attrs["last_fix_at"] = last_fix["at"].isoformat()
    return AlarmEvent(
        kind=AlarmKind.VEHICLE_THEFT,
        source=Source(protocol=protocol, device_id=vehicle["device_id"]),
        code=OWNER_REPORT_CODE,
        occurred_at=body.seen_at or now,
        received_at=now,
        location=loc,
        attributes=attrs,
        raw=json.dumps(body.model_dump(mode="json", exclude_none=True), ensure_ascii=False),
    )


async def _incident_of(d: Dispatcher, device_id: str, event_id: uuid.UUID) -> uuid.UUID | None:
    # the vehicle's open incidents (partial index), then the one holding the report's alarm
    return await d.store.p.fetchval(
        "SELECT a.incident_id FROM incidents i JOIN incident_alarms a ON a.incident_id = i.id"
        " WHERE i.source_device_id = $1 AND i.status <> 'closed' AND a.triaged->'event'->>'event_id' = $2 LIMIT 1",
        device_id,
        str(event_id),
    )


async def _record_command(
    d: Dispatcher,
    who: Principal,
    incident_id: uuid.UUID,
    device_id: str,
    params: dict[str, Any],
    reply: dict[str, Any],
) -> None:
    async with d.store.p.acquire() as conn, conn.transaction():
        row = await d.store.get_incident(conn, incident_id, lock=True)
        if row is None:
            return
        trans = Transition(
            IncidentEventType.UPDATED,
            IncidentStatus(row["status"]),
            who.actor(),
            d.clock(),
            data={
                "vehicle_command": {
                    "command": "track",
                    "params": params,
                    "device_id": device_id,
                    "reply": reply,
                    "reason": "theft_report",
                }
            },
        )
        await d.store.append_transitions(conn, row, [trans])
    try:
        await d.publish_outbox()
    except Exception as exc:  # the sweeper retries; the record itself is committed
        log.warning("outbox_publish_deferred", error=repr(exc))


def add_theft_routes(api: APIRouter, d: Dispatcher, who_type: Any) -> None:
    """``POST /vehicles/{device_id}/theft-report`` on ``api`` (``who_type``: the authenticated-caller dependency)."""

    @api.post(
        "/vehicles/{device_id}/theft-report",
        status_code=201,
        responses={202: {"description": "reported and tracking asked; the incident has not opened yet"}},
    )
    async def theft_report(who: who_type, device_id: str, body: TheftReport) -> Any:
        """A vehicle owner (or a dispatcher taking the call) reports a registered vehicle stolen: the report
        goes to triage as a ``vehicle_theft`` alarm and the terminal is asked to track (JT/T 808 0x8202)."""
        from fastapi.responses import JSONResponse

        caller: Principal = who
        if caller.role == "vehicle_owner":
            if device_id not in caller.vehicles:
                raise HTTPException(403, "not one of your vehicles")
        elif not caller.can_act:
            raise HTTPException(403, "vehicle owners, dispatchers and supervisors only")
        vehicle = await d.store.p.fetchrow(
            "SELECT device_id, protocol, plate FROM vehicles WHERE device_id=$1", device_id
        )
        if vehicle is None:
            raise HTTPException(404, "no such vehicle in the registry")
        last_fix = await d.store.p.fetchrow(
            "SELECT at, lat, lon FROM tracks WHERE device_id=$1 AND at >= now() - interval '24 hours'"
            " ORDER BY at DESC LIMIT 1",
            device_id,
        )
        now = d.clock()
        ev = report_event(dict(vehicle), caller, body, now, dict(last_fix) if last_fix else None)
        await d.producer.send_many([(ALARMS_RAW, ev, ev.key)])
        d.metrics.actions.labels("theft_report").inc()
        log.info(
            "theft_report", device_id=device_id, event_id=str(ev.event_id), user=caller.user, role=caller.role
        )

        params = body.track.model_dump()
        tracking: dict[str, Any]
        if d.commands is None:
            tracking = {"status": "unavailable"}
        else:
            try:
                tracking = await d.commands.send(
                    device_id, "track", params, 10.0, protocol=vehicle["protocol"]
                )
            except GatewayUnreachable as exc:
                tracking = {"status": "gateway_unreachable", "error": str(exc)[:300]}

        incident_id = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + body.wait_s
        while True:
            incident_id = await _incident_of(d, device_id, ev.event_id)
            if incident_id is not None or loop.time() >= deadline:
                break
            await asyncio.sleep(0.2)
        out: dict[str, Any] = {
            "event_id": str(ev.event_id),
            "device_id": device_id,
            "tracking": tracking,
            "incident_id": str(incident_id) if incident_id else None,
            "incident": None,
        }
        if incident_id is None:
            return JSONResponse(out, status_code=202)
        await _record_command(d, caller, incident_id, device_id, params, tracking)
        row = await d.store.get_incident(None, incident_id)
        if row is not None and caller.sees(d.tree, row):
            out["incident"] = summary(row, d.tree)
        return out
