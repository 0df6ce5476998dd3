"""Vehicle tracks: ``telemetry.gps`` → daily partitions of ``tracks``; moving stolen vehicles re-routed.

- Partitions ``tracks_pYYYYMMDD`` are created for yesterday … tomorrow; a fix outside them lands in
  ``tracks_default``. Partitions whose whole day is older than the retention (24 h) are dropped after
  the fixes of vehicles with an open incident are copied into ``tracks_kept``.
- A fix of a vehicle with an open ``vehicle_theft`` / ``vehicle_sos`` incident is routed; when the
  station changes the incident is re-routed (``routed`` event, ``reason: vehicle_moved``, with the
  previous station), so the station the vehicle is heading into is informed through the same
  channels (stream, ``incidents.events``, webhooks).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from alarmhub_events import GpsFix, IncidentEventType, IncidentStatus
from alarmhub_runtime import get_logger

from .lifecycle import SYSTEM, Transition
from .service import Dispatcher
from .views import summary

__all__ = ["TrackStore", "partition_name"]

log = get_logger("alarmhub.dispatch.tracks")

VEHICLE_KINDS = ("vehicle_theft", "vehicle_sos")

# every change to the set of partitions (create, drop) holds this transaction-scoped lock
_PARTITION_LOCK = "SELECT pg_advisory_xact_lock(hashtext('alarmhub:tracks_partitions'))"
# asked again once that lock is held, as a query on pg_class (this statement's snapshot sees a table the
# lock's previous holder created or dropped); to_regclass answers from the backend's relation cache,
# which an advisory lock does not refresh, and named a partition another replica had just dropped
_EXISTS = "SELECT EXISTS (SELECT 1 FROM pg_class c WHERE c.relname = $1 AND pg_table_is_visible(c.oid))"


def partition_name(day: date) -> str:
    return f"tracks_p{day:%Y%m%d}"


class TrackStore:
    def __init__(self, dispatcher: Dispatcher, retention: timedelta = timedelta(hours=24)) -> None:
        self.d = dispatcher
        self.retention = retention

    async def ensure_partitions(self, now: datetime) -> None:
        today = now.astimezone(UTC).date()
        async with self.d.store.p.acquire() as conn:
            for offset in (-1, 0, 1, 2):
                day = today + timedelta(days=offset)
                name = partition_name(day)
                exists = await conn.fetchval("SELECT to_regclass($1)", name)
                if exists:
                    continue
                lo, hi = day.isoformat(), (day + timedelta(days=1)).isoformat()
                try:
                    async with conn.transaction():
                        # replicas starting together: one at a time (two CREATE … PARTITION OF deadlock)
                        await conn.execute(_PARTITION_LOCK)
                        if await conn.fetchval(_EXISTS, name):
                            continue
                        # rows already in the default partition for that day must move first
                        await conn.execute(
                            f"CREATE TEMP TABLE _mv ON COMMIT DROP AS SELECT * FROM tracks_default"
                            f" WHERE at >= '{lo}' AND at < '{hi}'"
                        )
                        await conn.execute(f"DELETE FROM tracks_default WHERE at >= '{lo}' AND at < '{hi}'")
                        await conn.execute(
                            f"CREATE TABLE {name} PARTITION OF tracks FOR VALUES FROM ('{lo}') TO ('{hi}')"
                        )
                        await conn.execute("INSERT INTO tracks SELECT * FROM _mv")
                except Exception as exc:  # a concurrent replica created it: fine
                    if "already exists" not in str(exc):
                        raise

    async def expire(self, now: datetime) -> int:
        """Drop day partitions older than the retention, keeping open incidents' vehicles' fixes."""
        cutoff = (now - self.retention).astimezone(UTC).date()
        dropped = 0
        async with self.d.store.p.acquire() as conn:
            names = [
                r["relname"]
                for r in await conn.fetch(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                    " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'tracks' AND c.relname LIKE 'tracks_p%'"
                )
            ]
            for name in sorted(names)[:60]:
                day = datetime.strptime(name[len("tracks_p") :], "%Y%m%d").date()
                if day + timedelta(days=1) > cutoff:
                    continue
                async with conn.transaction():
                    # the same lock as ensure_partitions: two replicas' maintenance ticks (or a tick and an
                    # operator's call) dropping partitions at once deadlocked on the parent's and the
                    # children's AccessExclusiveLocks; one at a time, and the second finds the day gone
                    await conn.execute(_PARTITION_LOCK)
                    if not await conn.fetchval(_EXISTS, name):
                        continue
                    await conn.execute(
                        f"INSERT INTO tracks_kept SELECT * FROM {name} WHERE device_id IN (SELECT source_device_id"
                        " FROM incidents WHERE status <> 'closed' AND source_device_id IS NOT NULL) ON CONFLICT DO NOTHING"
                    )
                    await conn.execute(f"DROP TABLE {name}")
                dropped += 1
            # the default partition never grows old either
            await conn.execute(
                "INSERT INTO tracks_kept SELECT * FROM tracks_default WHERE at < $1 AND device_id IN (SELECT"
                " source_device_id FROM incidents WHERE status <> 'closed' AND source_device_id IS NOT NULL)"
                " ON CONFLICT DO NOTHING",
                now - self.retention,
            )
            await conn.execute("DELETE FROM tracks_default WHERE at < $1", now - self.retention)
        return dropped

    async def handle(self, fixes: Sequence[GpsFix]) -> None:
        """Store a batch of fixes and follow the vehicles that have an open incident.

        One ``INSERT … SELECT FROM unnest(…)`` per batch rather than one statement per fix (``executemany``):
        at 5,000 fixes/s the per-statement work in PostgreSQL was the largest CPU cost the GPS path put on
        the shared host, taken from the alarm path. ``ON CONFLICT DO NOTHING`` keeps a replayed batch
        (at-least-once delivery) harmless, duplicates inside one batch included.
        """
        valid = [f for f in fixes if f.valid]
        if not valid:
            return
        async with self.d.store.p.acquire() as conn:
            await conn.execute(
                "INSERT INTO tracks (device_id, at, event_id, lat, lon, speed_kmh, heading_deg, valid)"
                " SELECT d, a, e, la, lo, s, h, true FROM unnest($1::text[], $2::timestamptz[], $3::uuid[],"
                " $4::float8[], $5::float8[], $6::real[], $7::real[]) AS u(d, a, e, la, lo, s, h)"
                " ON CONFLICT DO NOTHING",
                [f.device_id for f in valid],
                [f.occurred_at for f in valid],
                [f.event_id for f in valid],
                [f.lat for f in valid],
                [f.lon for f in valid],
                [f.speed_kmh for f in valid],
                [f.heading_deg for f in valid],
            )
            devices = sorted({f.device_id for f in valid})
            open_rows = await conn.fetch(
                "SELECT id, source_device_id FROM incidents WHERE status <> 'closed' AND source_device_id = ANY($1)"
                " AND kind = ANY($2)",
                devices,
                list(VEHICLE_KINDS),
            )
        if not open_rows:
            return
        last: dict[str, GpsFix] = {}
        for f in valid:
            if f.device_id not in last or f.occurred_at >= last[f.device_id].occurred_at:
                last[f.device_id] = f
        for r in open_rows:
            await self._follow(r["id"], last[r["source_device_id"]])

    async def _follow(self, incident_id: Any, fix: GpsFix) -> None:
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
        rows = await self.d.store.fetch(
            "SELECT at, lat, lon, speed_kmh, heading_deg FROM (SELECT * FROM tracks WHERE device_id=$1 AND at >= $2"
            " UNION SELECT * FROM tracks_kept WHERE device_id=$1 AND at >= $2) t ORDER BY at LIMIT $3",
            device_id,
            since,
            limit,
        )
        return [{**r, "at": r["at"].isoformat()} for r in rows]
