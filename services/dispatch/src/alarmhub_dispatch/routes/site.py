"""The registry's record behind an incident: an alarm account's site and contacts, a vehicle's plate and
owner, or a camera's name and place (the incident view's "site and contacts")."""

# no "from __future__ import annotations": FastAPI resolves the dependency aliases at definition time

import uuid
from typing import Any

from fastapi import APIRouter

from .deps import D, Who, visible_incident

__all__ = ["router"]

router = APIRouter()

_VEHICLES = ("jt808", "jt809", "gt06", "h02")
_CAMERAS = ("gb28181", "isapi", "onvif", "webhook")


@router.get("/incidents/{incident_id}/site")
async def incident_site(who: Who, d: D, incident_id: uuid.UUID) -> dict[str, Any]:
    """The registry's record behind the incident's source: an alarm account's site and contacts, a
    vehicle's plate and owner, or a camera's name and place (None where the registry has nothing)."""
    row = await visible_incident(d, who, incident_id)
    device, protocol = row["source_device_id"] or "", row["protocol"] or ""
    out: dict[str, Any] = {"kind": None, "site": None, "contacts": [], "vehicle": None, "camera": None}
    if protocol.startswith("dc09"):
        line, _, account = device.rpartition("#")
        r = await d.store.registry.account_site(
            (row["account"] or account).upper(),  # the registry keeps accounts upper-case
            line.removeprefix("L"),
        )
        if r:
            out.update(
                kind="account",
                site={"name": r["site_name"], "address": r["site_address"], "company": r["company"]},
                contacts=list(r["contacts"] or []),
            )
    elif protocol in _VEHICLES:
        vehicle = await d.store.registry.vehicle_card(device)
        if vehicle:
            out.update(kind="vehicle", vehicle=vehicle)
    elif protocol in _CAMERAS:
        camera = await d.store.registry.camera_card(device)
        if camera:
            out.update(kind="camera", camera=camera, site={"name": camera["name"], "address": None})
    return out
