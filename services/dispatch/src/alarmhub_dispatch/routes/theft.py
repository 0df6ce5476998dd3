"""``/vehicles/{device_id}/theft-report``: a vehicle owner's (or a dispatcher's) theft report (``..theft``)."""

# no "from __future__ import annotations": FastAPI resolves the dependency aliases at definition time

import asyncio
import uuid
from typing import Any

from alarmhub_events import ALARMS_RAW
from alarmhub_runtime import get_logger
from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse

from ..auth import Principal
from ..service import Dispatcher
from ..theft import TheftReport, record_command, report_event
from ..vehicle_commands import GatewayUnreachable
from ..views import summary
from .deps import D, Who

__all__ = ["router"]

log = get_logger("alarmhub.dispatch")

router = APIRouter()


def _check_caller(caller: Principal, device_id: str) -> None:
    if caller.role == "vehicle_owner":
        if device_id not in caller.vehicles:
            raise HTTPException(403, "not one of your vehicles")
    elif not caller.can_act:
        raise HTTPException(403, "vehicle owners, dispatchers and supervisors only")


async def _start_tracking(
    d: Dispatcher, device_id: str, protocol: Any, params: dict[str, Any]
) -> dict[str, Any]:
    if d.commands is None:
        return {"status": "unavailable"}
    try:
        return await d.commands.send(device_id, "track", params, 10.0, protocol=protocol)
    except GatewayUnreachable as exc:
        return {"status": "gateway_unreachable", "error": str(exc)[:300]}


async def _wait_for_incident(
    d: Dispatcher, device_id: str, event_id: uuid.UUID, wait_s: float
) -> uuid.UUID | None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        incident_id = await d.store.incident_of_report(device_id, event_id)
        if incident_id is not None or loop.time() >= deadline:
            return incident_id
        await asyncio.sleep(0.2)


@router.post(
    "/vehicles/{device_id}/theft-report",
    status_code=201,
    responses={202: {"description": "reported and tracking asked; the incident has not opened yet"}},
)
async def theft_report(who: Who, d: D, device_id: str, body: TheftReport) -> Any:
    """A vehicle owner (or a dispatcher taking the call) reports a registered vehicle stolen: the report
    goes to triage as a ``vehicle_theft`` alarm and the terminal is asked to track (JT/T 808 0x8202)."""
    _check_caller(who, device_id)
    vehicle = await d.store.registry.vehicle(device_id)
    if vehicle is None:
        raise HTTPException(404, "no such vehicle in the registry")
    last_fix = await d.store.registry.last_fix(device_id)
    now = d.clock()
    ev = report_event(dict(vehicle), who, body, now, dict(last_fix) if last_fix else None)
    await d.producer.send_many([(ALARMS_RAW, ev, ev.key)])
    d.metrics.actions.labels("theft_report").inc()
    log.info("theft_report", device_id=device_id, event_id=str(ev.event_id), user=who.user, role=who.role)

    params = body.track.model_dump()
    tracking = await _start_tracking(d, device_id, vehicle["protocol"], params)
    incident_id = await _wait_for_incident(d, device_id, ev.event_id, body.wait_s)
    out: dict[str, Any] = {
        "event_id": str(ev.event_id),
        "device_id": device_id,
        "tracking": tracking,
        "incident_id": str(incident_id) if incident_id else None,
        "incident": None,
    }
    if incident_id is None:
        return JSONResponse(out, status_code=202)
    await record_command(d, who, incident_id, device_id, params, tracking)
    row = await d.store.get_incident(None, incident_id)
    if row is not None and who.sees(d.tree, row):
        out["incident"] = summary(row, d.tree)
    return out
