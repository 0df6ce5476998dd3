"""Vehicle tracks: ``telemetry.gps`` → daily partitions of ``tracks``; moving stolen vehicles re-routed.

- Partitions ``tracks_pYYYYMMDD`` are created for yesterday … tomorrow; a fix outside them lands in
  ``tracks_default``. Partitions whose whole day is older than the retention (24 h) are dropped after
  the fixes of vehicles with an open incident are copied into ``tracks_kept``.
- A fix of a vehicle with an open ``vehicle_theft`` / ``vehicle_sos`` incident is routed; when the
  station changes the incident is re-routed (``routed`` event, ``reason: vehicle_moved``, with the
  previous station), so the station the vehicle is heading into is informed through the same
  channels (stream, ``incidents.events``, webhooks).

These are the rules; their SQL is in ``store/tracks.py`` (``store.tracks``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from alarmhub_events import GpsFix, IncidentEventType, IncidentStatus
from alarmhub_runtime import get_logger

from .lifecycle import SYSTEM, Transition
from .service import Dispatcher
from .views import summary

__all__ = ["TrackStore"]

log = get_logger("alarmhub.dispatch.tracks")

VEHICLE_KINDS = ("vehicle_theft", "vehicle_sos")


class Fix(NamedTuple):
    """What following a vehicle reads of its latest fix."""

    lat: float
    lon: float
    occurred_at: datetime
    speed_kmh: float | None
    heading_deg: float | None


class RawRecord:
    """The tracks consumer's "model": a ``telemetry.gps`` record stays its bytes (``ConsumerPipeline`` calls
    ``model_validate_json``). At 5,000 fixes/s validating each as a :class:`GpsFix` was dispatch's largest
    per-fix cost; :meth:`TrackStore.handle_records` hands the bytes to PostgreSQL, which checks the fields
    it stores."""

    @staticmethod
    def model_validate_json(data: bytes) -> bytes:
        return data


class TrackStore:
    def __init__(self, dispatcher: Dispatcher, retention: timedelta = timedelta(hours=24)) -> None:
        self.d = dispatcher
        self.retention = retention

    async def ensure_partitions(self, now: datetime) -> None:
        today = now.astimezone(UTC).date()
        async with self.d.store.p.acquire() as conn:
            for offset in (-1, 0, 1, 2):
                await self.d.store.tracks.ensure_day_partition(conn, today + timedelta(days=offset))

    async def expire(self, now: datetime) -> int:
        """Drop day partitions older than the retention, keeping open incidents' vehicles' fixes."""
        cutoff = (now - self.retention).astimezone(UTC).date()
        dropped = 0
        async with self.d.store.p.acquire() as conn:
            for day in (await self.d.store.tracks.day_partitions(conn))[:60]:
                if day + timedelta(days=1) > cutoff:
                    continue
                if await self.d.store.tracks.drop_day_partition(conn, day):
                    dropped += 1
            # the default partition never grows old either
            await self.d.store.tracks.expire_default(conn, now - self.retention)
        return dropped

    async def handle(self, fixes: Sequence[GpsFix]) -> None:
        """:meth:`handle_records` of these fixes (tests, callers holding models)."""
        await self.handle_records([f.to_bytes() for f in fixes])

    async def handle_records(self, records: Sequence[bytes]) -> None:
        """Store a batch of ``telemetry.gps`` records as they came (one statement, ``TrackStore.insert_fixes``
        in ``store/tracks.py``, which also checks them) and follow the vehicles that have an open incident:
        no record is parsed here; the statement returns the followed vehicles' latest fixes."""
        if not records:
            return
        async with self.d.store.p.acquire() as conn:
            followed = await self.d.store.tracks.insert_fixes(conn, records, VEHICLE_KINDS)
        for r in followed:
            await self._follow(r["id"], Fix(r["lat"], r["lon"], r["at"], r["speed_kmh"], r["heading_deg"]))

    async def _follow(self, incident_id: Any, fix: Fix) -> None:
        route = self.d.router.route(fix.lon, fix.lat)
        async with self.d.store.p.acquire() as conn, conn.transaction():
            row = await self.d.store.get_incident(conn, incident_id, lock=True)
            if row is None or row["status"] == "closed":
                return
            loc = {
                "lat": fix.lat,
                "lon": fix.lon,
                "crs": "WGS84",
                "source": "device",
                "at": fix.occurred_at.isoformat(),
                # the console's live track shows them (the position rides on the stream with the incident)
                "speed_kmh": fix.speed_kmh,
                "heading_deg": fix.heading_deg,
            }
            fields: dict[str, Any] = {
                "lat": fix.lat,
                "lon": fix.lon,
                "location": loc,
                "updated_at": self.d.clock(),
            }
            trans = []
            if route.station is not None and route.station != row["station"]:
                fields.update(station=route.station, district=route.district, route=route.as_dict())
                status = IncidentStatus(row["status"])
                if status == IncidentStatus.OPENED:
                    status = IncidentStatus.ROUTED
                    fields["status"] = status.value
                trans.append(
                    Transition(
                        IncidentEventType.ROUTED,
                        status,
                        SYSTEM,
                        self.d.clock(),
                        data={
                            "route": route.as_dict(),
                            "reason": "vehicle_moved",
                            "from_station": row["station"],
                            "from_district": row["district"],
                            "speed_kmh": fix.speed_kmh,
                            "heading_deg": fix.heading_deg,
                        },
                    )
                )
            await self.d.store.update_incident(conn, incident_id, fields)
            row = {**row, **fields}
            if trans:
                events = await self.d.store.append_transitions(conn, row, trans)
                await self.d.deliveries.enqueue(conn, row, events)
        if trans:
            log.info("vehicle_rerouted", incident_id=str(incident_id), station=route.station)
            await self.d.publish_outbox()
        self.d.hub.publish(summary(row, self.d.tree), "rerouted" if trans else "moved")

    async def track(self, device_id: str, since: datetime, limit: int = 5000) -> list[dict[str, Any]]:
        rows = await self.d.store.tracks.track(device_id, since, limit)
        return [{**r, "at": r["at"].isoformat()} for r in rows]
