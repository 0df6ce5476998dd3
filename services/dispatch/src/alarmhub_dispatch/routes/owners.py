"""A vehicle owner's own view and arming: ``/owner/vehicles``, ``/vehicles/{id}/state``, ``/vehicles/{id}/arm|disarm``.

- ``GET /owner/vehicles`` — a ``vehicle_owner`` token's vehicles: plate, armed, the last fix, and the
  vehicle's open incident (decision, score, reasons, station; the owner's notices on its timeline) — where
  the owner learns at once that the car alarmed and what the police are doing about it.
  ``GET /vehicles/{id}/state`` is one of them, for its owner or for a dispatcher/supervisor.
- ``POST /vehicles/{id}/arm`` and ``/disarm`` — the owner of the vehicle (its token's ``scope.vehicles``)
  or a dispatcher/supervisor sets ``vehicles.armed``. Both are audited by the audit middleware (an
  ``action`` row with the path, so arm and disarm read apart, whoever called, whatever the outcome). The
  update and ``NOTIFY alarmhub_registry, 'vehicles:<id>'`` commit together: every GPS gateway re-reads
  that vehicle at once (ingest-gps ``registry.py``) instead of at its next periodic refresh. Arming is
  refused (409) for a vehicle whose terminal does not talk to ingest-gps itself (a JT/T 809 platform's
  vehicle): nothing would watch it, and the owner would believe it guarded.
"""

# no "from __future__ import annotations": FastAPI resolves the dependency aliases at definition time

from typing import Any

from alarmhub_runtime import get_logger
from fastapi import APIRouter, HTTPException

from ..auth import Principal
from ..registry import WATCHED_PROTOCOLS
from ..service import Dispatcher
from ..views import summary
from .deps import D, Who, manages

__all__ = ["router"]

log = get_logger("alarmhub.dispatch.owners")

router = APIRouter()


async def _may(who: Principal, d: Dispatcher, device_id: str) -> None:
    """The owner its own vehicles; dispatchers and supervisors the vehicles in their unit's care
    (``vehicles.unit`` in their subtree; the city all) or whose open incident they see; others nothing."""
    if who.role == "vehicle_owner":
        if device_id not in who.vehicles:
            raise HTTPException(403, "not one of your vehicles")
        return
    if not who.can_act:
        raise HTTPException(403, "the vehicle's owner, dispatchers and supervisors only")
    if who.unit is None:
        raise HTTPException(403, "units only")
    if d.tree.is_root(who.unit):
        return
    unit = (await d.store.registry.vehicle_owners([device_id])).get(device_id, (None, None))[1]
    if unit is not None and manages(d.tree, who.unit, unit):
        return
    st = await d.store.registry.vehicle_state(device_id)
    if st is None or st["incident"] is None or not who.sees(d.tree, st["incident"]):
        raise HTTPException(404, "no such vehicle in the registry")  # others' vehicles do not exist for them


async def _state(d: Dispatcher, device_id: str) -> dict[str, Any] | None:
    st = await d.store.registry.vehicle_state(device_id)
    if st is None:
        return None
    v, fix, incident = st["vehicle"], st["fix"], st["incident"]
    return {
        "device_id": v["device_id"],
        "protocol": v["protocol"],
        "plate": v["plate"],
        "plate_colour": v["plate_colour"],
        "armed": v["armed"],
        "updated_at": v["updated_at"].isoformat(),
        "last_fix": (
            {"at": fix["at"].isoformat(), "lat": fix["lat"], "lon": fix["lon"], "speed_kmh": fix["speed_kmh"]}
            if fix
            else None
        ),
        "incident": summary(incident, d.tree) if incident else None,
    }


@router.get("/owner/vehicles")
async def owner_vehicles(who: Who, d: D) -> list[dict[str, Any]]:
    """The caller's own vehicles (a ``vehicle_owner`` token): armed state, last fix, open incident."""
    if who.role != "vehicle_owner":
        raise HTTPException(403, "vehicle owners only (others: GET /vehicles/{device_id}/state)")
    out = []
    for device_id in sorted(set(who.vehicles)):
        st = await _state(d, device_id)
        if st is not None:
            out.append(st)
    return out


@router.get("/vehicles/{device_id}/state")
async def vehicle_state(who: Who, d: D, device_id: str) -> dict[str, Any]:
    """One vehicle's armed state, last fix and open incident (its owner, dispatchers, supervisors)."""
    await _may(who, d, device_id)
    st = await _state(d, device_id)
    if st is None:
        raise HTTPException(404, "no such vehicle in the registry")
    return st


async def _set_armed(who: Principal, d: Dispatcher, device_id: str, armed: bool) -> dict[str, Any]:
    await _may(who, d, device_id)
    if armed:
        st = await d.store.registry.vehicle_state(device_id)
        if st is None:
            raise HTTPException(404, "no such vehicle in the registry")
        if st["vehicle"]["protocol"] not in WATCHED_PROTOCOLS:
            # accepting it would tell the owner the car is guarded while nothing watches it
            raise HTTPException(
                409,
                f"a {st['vehicle']['protocol']} vehicle cannot be armed: only a tracker on the gateway "
                f"({', '.join(sorted(WATCHED_PROTOCOLS))}) is watched while armed",
            )
    if not await d.store.registry.set_armed(device_id, armed):
        raise HTTPException(404, "no such vehicle in the registry")
    d.metrics.actions.labels("arm" if armed else "disarm").inc()
    log.info(
        "vehicle_armed" if armed else "vehicle_disarmed", device_id=device_id, user=who.user, role=who.role
    )
    st = await _state(d, device_id)
    assert st is not None
    return st


@router.post("/vehicles/{device_id}/arm")
async def arm(who: Who, d: D, device_id: str) -> dict[str, Any]:
    """Arm the vehicle: its ignition or movement is then a theft alarm (the gateways apply it at once)."""
    return await _set_armed(who, d, device_id, True)


@router.post("/vehicles/{device_id}/disarm")
async def disarm(who: Who, d: D, device_id: str) -> dict[str, Any]:
    """Disarm the vehicle (the owner is about to drive it)."""
    return await _set_armed(who, d, device_id, False)
