"""The ``tracks`` tables: daily partitions, retention, the fixes and the vehicles' open incidents.

SQL only; the rules (which days, the retention, which incidents follow a vehicle) are in ``tracks.py``.
Methods that take a connection run on the caller's, so one maintenance pass or one batch of fixes uses one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from ._base import TableStore

__all__ = ["TrackStore", "partition_name"]

_PREFIX = "tracks_p"
# every change to the set of partitions (create, drop) holds this transaction-scoped lock
_PARTITION_LOCK = "SELECT pg_advisory_xact_lock(hashtext('alarmhub:tracks_partitions'))"
# asked again once that lock is held, as a query on pg_class (this statement's snapshot sees a table the
# lock's previous holder created or dropped); to_regclass answers from the backend's relation cache,
# which an advisory lock does not refresh, and named a partition another replica had just dropped
_EXISTS = "SELECT EXISTS (SELECT 1 FROM pg_class c WHERE c.relname = $1 AND pg_table_is_visible(c.oid))"
# the devices whose fixes outlive the retention: those of incidents not closed
_OPEN_DEVICES = (
    "SELECT source_device_id FROM incidents WHERE status <> 'closed' AND source_device_id IS NOT NULL"
)
# a batch of fixes, stored; then each followed incident with its vehicle's latest fix of the batch
_FIX_COLUMNS = (
    "device_id text, occurred_at timestamptz, event_id uuid, lat float8, lon float8, speed_kmh real,"
    " heading_deg real, valid bool"
)
_INSERT_FIXES = (
    f"WITH f AS (SELECT * FROM ROWS FROM (json_to_recordset($1::text::json) AS ({_FIX_COLUMNS})) WITH ORDINALITY"
    " AS r(device_id, occurred_at, event_id, lat, lon, speed_kmh, heading_deg, valid, n)"
    " WHERE valid IS NOT FALSE),"
    " ins AS (INSERT INTO tracks (device_id, at, event_id, lat, lon, speed_kmh, heading_deg, valid)"
    " SELECT CASE WHEN char_length(device_id) BETWEEN 1 AND 128 THEN device_id"
    " ELSE ('device_id of ' || char_length(device_id) || ' characters')::int::text END, occurred_at, event_id,"
    " CASE WHEN lat BETWEEN -90 AND 90 THEN lat ELSE ('latitude out of range: ' || lat)::float8 END,"
    " CASE WHEN lon BETWEEN -180 AND 180 THEN lon ELSE ('longitude out of range: ' || lon)::float8 END,"
    " CASE WHEN speed_kmh IS NULL OR speed_kmh >= 0 THEN speed_kmh"
    " ELSE ('negative speed: ' || speed_kmh)::real END,"
    " CASE WHEN heading_deg IS NULL OR heading_deg BETWEEN 0 AND 360 THEN heading_deg"
    " ELSE ('heading out of range: ' || heading_deg)::real END, true"
    " FROM f ON CONFLICT DO NOTHING),"
    # each of the batch's devices looked up on its own in the open-device index: the subquery per device
    # (OFFSET 0 keeps it one) has no plan but the index whatever the statistics say. A join on the batch
    # (or its devices as one array) got a generic plan made while ``incidents`` was empty that scanned
    # every incident for every batch until the next ANALYZE: 2-5 ms a batch at 6,000 incidents in
    # bench/e2e.py, the most of PostgreSQL's CPU there
    " o AS (SELECT i.id, i.source_device_id FROM (SELECT DISTINCT device_id FROM f) d CROSS JOIN LATERAL"
    " (SELECT id, source_device_id FROM incidents WHERE source_device_id = d.device_id"
    " AND status <> 'closed' AND kind = ANY($2::text[]) OFFSET 0) i)"
    " SELECT DISTINCT ON (o.id) o.id, f.lat, f.lon, f.occurred_at AS at, f.speed_kmh, f.heading_deg"
    " FROM o JOIN f ON f.device_id = o.source_device_id ORDER BY o.id, f.occurred_at DESC, f.n DESC"
)


def partition_name(day: date) -> str:
    return f"{_PREFIX}{day:%Y%m%d}"


class TrackStore(TableStore):
    async def latest_fix(self, device_id: str, now: datetime) -> dict[str, Any] | None:
        """The vehicle's newest position of the last day (``at``, ``speed_kmh``); of fixes in the same
        second the fastest or the one without a speed, so a tie never hides movement."""
        row = await self.p.fetchrow(
            "SELECT at, speed_kmh FROM tracks WHERE device_id=$1 AND at >= $2::timestamptz - interval '1 day'"
            " ORDER BY at DESC, speed_kmh DESC NULLS FIRST LIMIT 1",
            device_id,
            now,
        )
        return dict(row) if row else None

    async def ensure_day_partition(self, conn: asyncpg.Connection, day: date) -> None:
        """Create ``day``'s partition unless it exists, moving that day's rows out of ``tracks_default``."""
        name = partition_name(day)
        if await conn.fetchval("SELECT to_regclass($1)", name):
            return
        lo, hi = day.isoformat(), (day + timedelta(days=1)).isoformat()
        try:
            async with conn.transaction():
                # replicas starting together: one at a time (two CREATE … PARTITION OF deadlock)
                await conn.execute(_PARTITION_LOCK)
                if await conn.fetchval(_EXISTS, name):
                    return
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

    async def day_partitions(self, conn: asyncpg.Connection) -> list[date]:
        """The days that have a partition of their own, oldest first."""
        names = [
            r["relname"]
            for r in await conn.fetch(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'tracks' AND c.relname LIKE 'tracks_p%'"
            )
        ]
        return [datetime.strptime(name[len(_PREFIX) :], "%Y%m%d").date() for name in sorted(names)]

    async def drop_day_partition(self, conn: asyncpg.Connection, day: date) -> bool:
        """Drop ``day``'s partition after copying open incidents' vehicles' fixes to ``tracks_kept``;
        False when it was gone already."""
        name = partition_name(day)
        async with conn.transaction():
            # the same lock as ensure_day_partition: two replicas' maintenance ticks (or a tick and an
            # operator's call) dropping partitions at once deadlocked on the parent's and the
            # children's AccessExclusiveLocks; one at a time, and the second finds the day gone
            await conn.execute(_PARTITION_LOCK)
            if not await conn.fetchval(_EXISTS, name):
                return False
            # the partition locked before the copy: a batch of fixes still being inserted into it would
            # otherwise commit after the copy's snapshot and be dropped with the table, open incident or not
            await conn.execute(f"LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE")
            await conn.execute(
                f"INSERT INTO tracks_kept SELECT * FROM {name} WHERE device_id IN ({_OPEN_DEVICES}) ON CONFLICT DO NOTHING"
            )
            await conn.execute(f"DROP TABLE {name}")
        return True

    async def expire_default(self, conn: asyncpg.Connection, before: datetime) -> None:
        """The default partition's fixes older than ``before``: open incidents' vehicles' kept, all deleted."""
        # one statement: the rows deleted are the rows copied (a copy then a delete let a fix committed
        # between them be deleted without its copy)
        await conn.execute(
            "WITH gone AS (DELETE FROM tracks_default WHERE at < $1 RETURNING *)"
            f" INSERT INTO tracks_kept SELECT * FROM gone WHERE device_id IN ({_OPEN_DEVICES})"
            " ON CONFLICT DO NOTHING",
            before,
        )

    async def insert_fixes(
        self, conn: asyncpg.Connection, records: Sequence[bytes], kinds: Sequence[str]
    ) -> list[asyncpg.Record]:
        """Store a batch of ``telemetry.gps`` records as they came (their JSON, joined into one array: one
        text parameter that PostgreSQL reads with ``json_to_recordset``) and return, for each incident not
        closed, of one of ``kinds``, whose vehicle sent one of them, its id and that vehicle's latest fix
        (``id``, ``lat``, ``lon``, ``at``, ``speed_kmh``, ``heading_deg``; of two at the same time, the later
        record). One statement, one round trip. Fixes with ``valid`` false are not stored.

        The checks :class:`alarmhub_events.GpsFix` made of the stored fields are made here (device id of 1 to
        128 characters, coordinates in range, a speed not negative, a heading within 0–360): a record that
        fails one, or is no JSON object (nor UTF-8), or lacks a field the table needs, fails the batch with a data
        error (SQLSTATE class 22/23), which the consumer pipeline treats as that record's fault and sends
        to the DLQ after isolating it. ``ON CONFLICT DO NOTHING`` keeps a replayed batch (at-least-once
        delivery) harmless, duplicates inside one batch included."""
        return await conn.fetch(_INSERT_FIXES, (b"[" + b",".join(records) + b"]").decode(), list(kinds))

    async def track(self, device_id: str, since: datetime, limit: int) -> list[dict[str, Any]]:
        """A vehicle's positions since ``since``, from ``tracks`` and ``tracks_kept``, oldest first."""
        rows = await self.p.fetch(
            "SELECT at, lat, lon, speed_kmh, heading_deg FROM (SELECT * FROM tracks WHERE device_id=$1 AND at >= $2"
            " UNION SELECT * FROM tracks_kept WHERE device_id=$1 AND at >= $2) t ORDER BY at LIMIT $3",
            device_id,
            since,
            limit,
        )
        return [dict(r) for r in rows]
