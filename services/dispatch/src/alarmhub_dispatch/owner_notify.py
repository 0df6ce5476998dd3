"""What a vehicle alarm sets off besides the station: the owner told at once, the terminal tracking.

After dispatch has applied a batch of triage decisions (so the incident exists), every decision of a
vehicle incident (a tracker or JT/T 809 source, not an SOS — the owner may be the one in danger) that
asks for ``dispatch`` or ``verify`` is handled **once per incident and decision**:

- ``verify`` — one ambiguous signal (ignition while armed, the car still parked): the owner is asked first.
- ``dispatch`` — the owner is told; when the decision's signal says the vehicle is moving (armed movement,
  displacement while parked, leaving a geofence, or a speed of 10 km/h or more: stolen and driving) the
  terminal is told to track too (JT/T 808 0x8202, ``track`` through ingest-gps: positions every
  ``interval_s``; the station is re-routed as it moves, tracks.py).

"Told" is twofold: the incident's timeline gets an ``updated`` transition with ``data.owner_notice`` (so
the owner's own view, ``GET /api/v1/owner/vehicles``, and the incident's history show it), and, when
``ALARMHUB_DISPATCH_OWNER_HOOK_URL`` is set, the notice is POSTed there as JSON (an SMS/app gateway
of the operator's choosing; a few bounded retries, then logged and counted as failed). "Once" is the
timeline itself: the claim takes the incident's row lock and looks for an earlier notice, so another
replica or a replayed batch finds it and does nothing.

The slow parts (the command, the hook) run as background tasks, bounded in number: the alarm path
never waits for an owner's phone.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import httpx
from alarmhub_events import (
    AlarmKind,
    Decision,
    IncidentEventType,
    IncidentStatus,
    Protocol,
    TriagedAlarm,
    VehicleAttr,
    VehicleSignal,
)
from alarmhub_runtime import get_logger

from .lifecycle import SYSTEM, Transition
from .vehicle_commands import GatewayUnreachable

__all__ = ["OwnerNotifier", "notice_of"]

log = get_logger("alarmhub.dispatch.owners")

_VEHICLE_PROTOCOLS = frozenset({Protocol.JT808, Protocol.JT809, Protocol.GT06, Protocol.H02})


#: signals of a vehicle on the move (alarmhub_events.VehicleSignal)
_MOVING = frozenset(
    {VehicleSignal.ARMED_MOVEMENT, VehicleSignal.PARKED_DISPLACEMENT, VehicleSignal.GEOFENCE_EXIT}
)
_MOVING_KMH = 10.0


def _moving(attrs: dict[str, Any]) -> bool:
    """The decision's signal says the vehicle is moving: its track is what the police need."""
    if attrs.get(VehicleAttr.SIGNAL) in _MOVING:
        return True
    speed = attrs.get(VehicleAttr.SPEED_KMH)
    return isinstance(speed, int | float) and speed >= _MOVING_KMH


def notice_of(t: TriagedAlarm) -> dict[str, Any] | None:
    """The owner notice a decision calls for, or None (pure)."""
    ev = t.event
    if ev.source.protocol not in _VEHICLE_PROTOCOLS or ev.kind is AlarmKind.VEHICLE_SOS:
        return None
    if t.decision not in (Decision.DISPATCH, Decision.VERIFY):
        return None
    reasons = [r.text for r in t.reasons if r.code != "decision"]
    reasons_zh = [r.text_zh or r.text for r in t.reasons if r.code != "decision"]
    notice: dict[str, Any] = {
        "decision": t.decision.value,
        "device_id": ev.source.device_id,
        "protocol": ev.source.protocol.value,
        "plate": ev.attributes.get("plate"),
        "kind": ev.kind.value,
        "score": t.score,
        "reasons": reasons,
        "reasons_zh": reasons_zh,
        "ask": "confirm" if t.decision is Decision.VERIFY else "informed",
        "track": t.decision is Decision.DISPATCH and _moving(ev.attributes),
    }
    if ev.location is not None:
        notice["location"] = {"lat": ev.location.lat, "lon": ev.location.lon}
    return notice


class OwnerNotifier:
    def __init__(
        self,
        dispatcher: Any,
        *,
        hook_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        track_interval_s: int = 10,
        track_validity_s: int = 3600,
        max_tasks: int = 200,
    ) -> None:
        self.d = dispatcher
        self.hook_url = hook_url
        self._client = httpx.AsyncClient(transport=transport, timeout=5.0) if hook_url else None
        self.track_params = {"interval_s": track_interval_s, "validity_s": track_validity_s}
        self._tasks: set[asyncio.Task[None]] = set()
        self._max_tasks = max_tasks
        self.sent = 0
        self.failed = 0

    async def handle(self, items: Sequence[TriagedAlarm]) -> None:
        for t in items:
            notice = notice_of(t)
            if notice is None:
                continue
            try:
                claimed = await self._claim(t.incident_id, notice)
            except Exception as exc:  # never hold the alarm path for the owner's notice
                log.warning("owner_notice_failed", incident_id=str(t.incident_id), error=repr(exc))
                continue
            if not claimed:
                continue
            if len(self._tasks) >= self._max_tasks:
                log.warning("owner_notice_shed", incident_id=str(t.incident_id))
                continue
            task = asyncio.create_task(self._deliver(t.incident_id, notice), name="owner-notice")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _claim(self, incident_id: uuid.UUID, notice: dict[str, Any]) -> bool:
        store = self.d.store
        async with store.p.acquire() as conn, conn.transaction():
            row = await store.get_incident(conn, incident_id, lock=True)
            if row is None:
                return False
            if await store.has_owner_notice(conn, incident_id, notice["decision"]):
                return False
            trans = Transition(
                IncidentEventType.UPDATED,
                IncidentStatus(row["status"]),
                SYSTEM,
                self.d.clock(),
                data={"owner_notice": notice},
            )
            await store.append_transitions(conn, row, [trans])
        await self._publish()
        return True

    async def _deliver(self, incident_id: uuid.UUID, notice: dict[str, Any]) -> None:
        payload = {"incident_id": str(incident_id), **notice}
        if notice["track"]:
            payload["tracking"] = await self._track(incident_id, notice["device_id"], notice["protocol"])
        if self._client is not None and self.hook_url:
            await self._post(payload)

    async def _track(self, incident_id: uuid.UUID, device_id: str, protocol: str) -> dict[str, Any]:
        commands = self.d.commands
        if commands is None:
            return {"status": "unavailable"}
        try:
            reply: dict[str, Any] = await commands.send(
                device_id, "track", dict(self.track_params), 10.0, protocol=protocol
            )
        except GatewayUnreachable as exc:
            reply = {"status": "gateway_unreachable", "error": str(exc)[:300]}
        except Exception as exc:
            reply = {"status": "error", "error": repr(exc)[:300]}
        log.info("vehicle_tracking_started", incident_id=str(incident_id), device_id=device_id, reply=reply)
        try:
            store = self.d.store
            async with store.p.acquire() as conn, conn.transaction():
                row = await store.get_incident(conn, incident_id, lock=True)
                if row is not None:
                    cmd = {
                        "command": "track",
                        "params": self.track_params,
                        "device_id": device_id,
                        "reply": reply,
                        "reason": "stolen_and_driving",
                    }
                    trans = Transition(
                        IncidentEventType.UPDATED,
                        IncidentStatus(row["status"]),
                        SYSTEM,
                        self.d.clock(),
                        data={"vehicle_command": cmd},
                    )
                    await store.append_transitions(conn, row, [trans])
            await self._publish()
        except Exception as exc:
            log.warning("vehicle_tracking_unrecorded", incident_id=str(incident_id), error=repr(exc))
        return reply

    async def _post(self, payload: dict[str, Any]) -> None:
        assert self._client is not None and self.hook_url
        for attempt in range(3):
            try:
                r = await self._client.post(self.hook_url, json=payload)
                if r.status_code < 500:
                    ok = r.status_code < 300
                    self.sent += ok
                    self.failed += not ok
                    log.info("owner_hook_posted", status=r.status_code, incident_id=payload["incident_id"])
                    return
            except httpx.HTTPError as exc:
                log.warning("owner_hook_error", attempt=attempt, error=repr(exc))
            await asyncio.sleep(0.5 * 2**attempt)
        self.failed += 1
        log.warning("owner_hook_failed", incident_id=payload["incident_id"])

    async def _publish(self) -> None:
        try:
            await self.d.publish_outbox()
        except Exception as exc:  # the sweeper retries; the record itself is committed
            log.warning("outbox_publish_deferred", error=repr(exc))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
