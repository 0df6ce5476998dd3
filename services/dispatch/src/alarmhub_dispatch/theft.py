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

The route is ``routes/theft.py``.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, Literal

from alarmhub_events import (
    AlarmEvent,
    AlarmKind,
    Location,
    Protocol,
    Source,
)
from alarmhub_geo import gcj02_to_wgs84
from alarmhub_runtime import get_logger
from pydantic import BaseModel, Field

from . import vehicles
from .auth import Principal
from .service import Dispatcher

__all__ = ["TheftReport", "TrackParams", "record_command", "report_event"]

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


async def record_command(
    d: Dispatcher,
    who: Principal,
    incident_id: uuid.UUID,
    device_id: str,
    params: dict[str, Any],
    reply: dict[str, Any],
) -> None:
    entry = {
        "command": "track",
        "params": params,
        "device_id": device_id,
        "reply": reply,
        "reason": "theft_report",
    }
    if not await vehicles.record_command(d, who, incident_id, entry):
        return
    await d.outbox.publish_soon()  # the sweeper retries a failure; the record itself is committed
