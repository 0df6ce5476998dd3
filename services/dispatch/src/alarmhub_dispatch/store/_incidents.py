"""The incident tables: PostgreSQL access for dispatch's core (asyncpg). SQL only: the rules live in
lifecycle.py and routing.py.

Every state change runs in one transaction that updates ``incidents``, appends the audit rows to
``incident_events`` and queues them in ``incident_outbox``; the publisher drains the outbox to
``incidents.events``, so an event is never lost between the database and Kafka.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import asyncpg
from alarmhub_events import IncidentEvent

from ..demo_geo import Unit
from ..lifecycle import Transition
from ..units import UnitNode
from .audit import AuditStore
from .devices import DeviceStore
from .oidc import OidcLoginStore
from .outbox import OutboxStore, audit_values, event_of
from .people import PeopleStore
from .registry import RegistryStore
from .reports import ReportStore
from .tracks import TrackStore
from .webhooks import WebhookStore

__all__ = ["Applied", "Store"]

INCIDENT_COLUMNS = (
    "id",
    "status",
    "decision",
    "priority",
    "score",
    "reasons",
    "kind",
    "station",
    "district",
    "lat",
    "lon",
    "location",
    "route",
    "source_device_id",
    "protocol",
    "account",
    "company",
    "major_event",
    "rule_version",
    "verdict",
    "verification",
    "escalation_level",
    "escalate_at",
    "opened_at",
    "updated_at",
    "acknowledged_at",
    "on_scene_at",
    "closed_at",
    "alarm_count",
    "handed_to",
)


async def _init(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep(conn: asyncpg.Connection) -> None:
    """Pool release without asyncpg's reset query (``RESET ALL; UNLISTEN *; …``, one more round trip per use).

    asyncpg still rolls back an open transaction before calling this. Dispatch keeps no session state: no
    ``SET``, no ``LISTEN``, advisory locks only per transaction (``pg_advisory_xact_lock``).
    """


#: column types that insert_incidents sends as JSON text
_JSON_TYPES = ("pg_catalog.jsonb", "pg_catalog.json")


class Applied(NamedTuple):
    """What :meth:`Store.claim_and_append` wrote and read."""

    claimed: int  # claims that were new
    events: list[IncidentEvent]  # the audit rows as they will be published (without their seq)
    seqs: list[int]  # each event's seq
    webhooks: list[dict[str, Any]]  # the active webhooks (id, target_kind, target), as the statement saw them


class Store:
    read_only = False  # a district backup's store (``read_only.py``): its audit rows become log lines

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self._dsn = dsn
        self._min = min_size
        self._max = max_size
        self._types: dict[tuple[str, ...], tuple[str, ...] | None] = {}  # insert_incidents' column types
        self.pool: asyncpg.Pool | None = None
        self.people = PeopleStore(self)
        self.oidc_logins = OidcLoginStore(self)
        self.webhooks = WebhookStore(self)
        self.registry = RegistryStore(self)
        self.reports = ReportStore(self)
        self.audit = AuditStore(self)
        self.devices = DeviceStore(self)
        self.tracks = TrackStore(self)
        self.outbox = OutboxStore(self)

    async def start(self) -> None:
        self.pool = await asyncpg.create_pool(
            self._dsn, min_size=self._min, max_size=self._max, init=_init, reset=_keep, command_timeout=30
        )

    async def stop(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    async def dedicated_connection(self) -> asyncpg.Connection:
        """A connection of its own, outside the pool (a session lock held on it lasts as long as it)."""
        conn = await asyncpg.connect(self._dsn, timeout=10, command_timeout=30)
        await _init(conn)
        return conn

    @property
    def p(self) -> asyncpg.Pool:
        assert self.pool is not None, "store not started"
        return self.pool

    async def ping(self) -> bool:
        return await self.p.fetchval("SELECT true") is True

    # -- units ----------------------------------------------------------------------------------
    async def station_areas(self) -> int:
        """How many police station areas are configured (zero → the demo geography is loaded)."""
        return int(
            await self.p.fetchval(
                "SELECT count(*) FROM units WHERE tier = 3 AND kind = 'police' AND geometry IS NOT NULL"
            )
        )

    async def insert_units(self, units: Iterable[Unit]) -> int:
        rows = [
            (u.id, u.name, u.name_en, u.tier, u.parent_id, u.kind, u.synthetic, u.geojson(), u.properties)
            for u in units
        ]
        async with self.p.acquire() as conn, conn.transaction():
            # parents first (tiers ascending), so the foreign key holds row by row
            rows.sort(key=lambda r: r[3])
            await conn.executemany(
                "INSERT INTO units (id, name, name_en, tier, parent_id, kind, synthetic, geometry, properties)"
                " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT (id) DO NOTHING",
                rows,
            )
        return len(rows)

    async def load_units(self) -> list[UnitNode]:
        rows = await self.p.fetch(
            "SELECT id, name, name_en, tier, parent_id, kind, synthetic, geometry, properties"
            " FROM units ORDER BY tier, id"
        )
        return [
            UnitNode(
                r["id"],
                r["name"],
                r["name_en"],
                r["tier"],
                r["parent_id"],
                r["kind"],
                r["synthetic"],
                r["geometry"],
                r["properties"] or {},
            )
            for r in rows
        ]

    # -- tokens ---------------------------------------------------------------------------------
    async def put_token(
        self,
        sha: str,
        user: str,
        role: str,
        unit: str | None,
        company: str | None,
        scope: dict[str, Any],
        created_by: str | None,
        expires_at: datetime | None,
        minted_unit: str | None = None,
    ) -> None:
        await self.p.execute(
            "INSERT INTO api_tokens (token_sha256, user_name, role, unit, company, scope, created_by, expires_at,"
            " minted_unit) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT (token_sha256) DO UPDATE SET user_name=EXCLUDED.user_name,"
            " role=EXCLUDED.role, unit=EXCLUDED.unit, company=EXCLUDED.company, scope=EXCLUDED.scope,"
            " expires_at=EXCLUDED.expires_at, revoked_at=NULL",
            sha,
            user,
            role,
            unit,
            company,
            scope,
            created_by,
            expires_at,
            minted_unit,
        )

    async def revoke_dev_tokens(self, created_by: str, keep: str | None) -> int:
        """Revoke the tokens ``created_by`` made, except the one hashed ``keep``; how many were revoked."""
        status = await self.p.execute(
            "UPDATE api_tokens SET revoked_at = now() WHERE created_by = $1 AND revoked_at IS NULL"
            " AND token_sha256 IS DISTINCT FROM $2",
            created_by,
            keep,
        )
        return int(status.split()[-1])

    async def get_token(self, sha: str) -> Mapping[str, Any] | None:
        return await self.p.fetchrow(
            "SELECT user_name, role, unit, company, scope FROM api_tokens WHERE token_sha256=$1"
            " AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())",
            sha,
        )

    # -- registry look-ups used for routing -----------------------------------------------------
    async def account_sites(
        self, accounts: Sequence[str], conn: asyncpg.Connection | None = None
    ) -> dict[str, list[asyncpg.Record]]:
        """Every registered site of these account numbers (any line), by account, lines in order."""
        out: dict[str, list[asyncpg.Record]] = {}
        if accounts:
            for r in await (conn or self.p).fetch(
                "SELECT line, account, company, lat, lon, site_name, site_address FROM accounts"
                " WHERE account = ANY($1::text[]) ORDER BY account, line",
                sorted(set(accounts)),
            ):
                out.setdefault(r["account"], []).append(r)
        return out

    async def camera_positions(
        self, camera_ids: Sequence[str], conn: asyncpg.Connection | None = None
    ) -> dict[str, asyncpg.Record]:
        if not camera_ids:
            return {}
        rows = await (conn or self.p).fetch(
            "SELECT id, lat, lon, name FROM cameras WHERE id = ANY($1::text[])", sorted(set(camera_ids))
        )
        return {r["id"]: r for r in rows}

    # -- incidents ------------------------------------------------------------------------------
    async def get_incident(
        self, conn: asyncpg.Connection | asyncpg.Pool | None, incident_id: uuid.UUID, *, lock: bool = False
    ) -> dict[str, Any] | None:
        c = conn or self.p
        row = await c.fetchrow(
            f"SELECT {', '.join(INCIDENT_COLUMNS)} FROM incidents WHERE id=$1"
            + (" FOR UPDATE" if lock else ""),
            incident_id,
        )
        return dict(row) if row else None

    async def lock_incidents(
        self, conn: asyncpg.Connection, ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, dict[str, Any]]:
        """The existing incidents among ``ids``, locked for this transaction (in id order: no deadlocks)."""
        rows = await conn.fetch(
            f"SELECT {', '.join(INCIDENT_COLUMNS)} FROM incidents WHERE id = ANY($1::uuid[])"
            " ORDER BY id FOR UPDATE",
            sorted(set(ids)),
        )
        return {r["id"]: dict(r) for r in rows}

    async def lock_incidents_claimed(
        self,
        conn: asyncpg.Connection,
        pairs: Sequence[tuple[uuid.UUID, uuid.UUID]],
    ) -> tuple[dict[uuid.UUID, dict[str, Any]], set[tuple[uuid.UUID, uuid.UUID]]]:
        """:meth:`lock_incidents` and :meth:`claimed` in one round trip: the existing incidents among the pairs'
        incident ids, locked (in id order), and which (incident id, event id) pairs were already applied (a
        claim exists only for an existing incident)."""
        rows = await conn.fetch(
            f"SELECT {', '.join(INCIDENT_COLUMNS)}, ARRAY(SELECT a.event_id FROM incident_alarms a"
            " WHERE a.incident_id = incidents.id AND a.event_id = ANY($2::uuid[])) AS claimed_events"
            " FROM incidents WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE",
            sorted({p[0] for p in pairs}),
            list({p[1] for p in pairs}),
        )
        out: dict[uuid.UUID, dict[str, Any]] = {}
        asked = set(pairs)
        done: set[tuple[uuid.UUID, uuid.UUID]] = set()
        for r in rows:
            row = dict(r)
            done.update(p for p in ((r["id"], e) for e in row.pop("claimed_events")) if p in asked)
            out[r["id"]] = row
        return out, done

    async def claimed(
        self, conn: asyncpg.Connection, pairs: Sequence[tuple[uuid.UUID, uuid.UUID]]
    ) -> set[tuple[uuid.UUID, uuid.UUID]]:
        """Which (incident id, event id) decisions were already applied."""
        if not pairs:
            return set()
        rows = await conn.fetch(
            "SELECT a.incident_id, a.event_id FROM incident_alarms a"
            " JOIN unnest($1::uuid[], $2::uuid[]) AS p(incident_id, event_id) USING (incident_id, event_id)",
            [p[0] for p in pairs],
            [p[1] for p in pairs],
        )
        return {(r["incident_id"], r["event_id"]) for r in rows}

    async def insert_incidents(self, conn: asyncpg.Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Insert new incidents: one ``INSERT … SELECT FROM unnest(…)`` per distinct column set (was one
        execution per row, pipelined). JSON columns travel as text (a list value would read as a dimension of
        the array) and a column set with an array column (unnest would flatten it) keeps the per-row insert."""
        groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for r in rows:
            groups.setdefault(tuple(r), []).append(tuple(r.values()))
        for cols, values in groups.items():
            listed = ", ".join(cols)
            types = await self._column_types(conn, cols)
            if types is None:
                places = ", ".join(f"${i + 1}" for i in range(len(cols)))
                await conn.executemany(f"INSERT INTO incidents ({listed}) VALUES ({places})", values)
                continue
            columns = [list(c) for c in zip(*values, strict=True)]
            picks = []
            for i, t in enumerate(types):
                if t in _JSON_TYPES:
                    columns[i] = [None if v is None else json.dumps(v) for v in columns[i]]
                    picks.append(f"c{i}::{t}")
                else:
                    picks.append(f"c{i}")
            arrays = ", ".join(
                f"${i + 1}::{'text' if t in _JSON_TYPES else t}[]" for i, t in enumerate(types)
            )
            names = ", ".join(f"c{i}" for i in range(len(types)))
            await conn.execute(
                f"INSERT INTO incidents ({listed}) SELECT {', '.join(picks)} FROM unnest({arrays}) AS u({names})",
                *columns,
            )

    async def _column_types(self, conn: asyncpg.Connection, cols: tuple[str, ...]) -> tuple[str, ...] | None:
        """The types of these ``incidents`` columns (asked of the server once per column set), or None when
        one of them is an array."""
        if cols not in self._types:
            places = ", ".join(f"${i + 1}" for i in range(len(cols)))
            stmt = await conn.prepare(f"INSERT INTO incidents ({', '.join(cols)}) VALUES ({places})")
            params = stmt.get_parameters()
            self._types[cols] = (
                None
                if any(t.kind == "array" for t in params)
                else tuple(f"{t.schema}.{t.name}" for t in params)
            )
        return self._types[cols]

    async def update_incidents(
        self, conn: asyncpg.Connection, updates: dict[uuid.UUID, dict[str, Any]]
    ) -> None:
        rows = [{"id": k, **v} for k, v in updates.items() if v]
        await self._many(
            conn,
            rows,
            lambda cols: (
                "UPDATE incidents SET "
                + ", ".join(f"{c}=${i + 1}" for i, c in enumerate(cols) if c != "id")
                + f" WHERE id=${cols.index('id') + 1}"
            ),
        )

    @staticmethod
    async def _many(conn: asyncpg.Connection, rows: Sequence[dict[str, Any]], sql: Any) -> None:
        groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for r in rows:
            groups.setdefault(tuple(r), []).append(tuple(r.values()))
        for cols, values in groups.items():
            await conn.executemany(sql(list(cols)), values)

    async def claim_and_append(
        self,
        conn: asyncpg.Connection,
        claims: Sequence[tuple[uuid.UUID, uuid.UUID, str, int, str]],
        audit: Sequence[tuple[dict[str, Any], Sequence[Transition]]],
        districts: Sequence[str],
    ) -> Applied:
        """Record that these decisions were applied (each claim's decision as JSON text, and in ``districts``
        its incident's district as this transaction writes it: the schema's trigger looks it up only for a
        claim without one, migration ``resilience_0002``) and append their audit rows (queued in the outbox,
        in the list's order), in one statement that also reads the active webhooks (to queue their
        deliveries): three round trips before."""
        out: list[IncidentEvent] = []
        cols: list[list[Any]] = [[] for _ in range(13)]
        for row, transitions in audit:
            for t in transitions:
                event_id = uuid.uuid4()
                for c, v in zip(cols, audit_values(event_id, row, t), strict=True):
                    c.append(v)
                out.append(event_of(event_id, row, t))
        if not claims and not out:
            return Applied(0, out, [], [])
        r = await conn.fetchrow(
            "WITH claim AS (INSERT INTO incident_alarms (incident_id, event_id, decision, score, triaged,"
            " received_at, district) SELECT i, e, d, s, t::jsonb, clock_timestamp(), w FROM unnest($1::uuid[],"
            " $2::uuid[], $3::text[], $4::smallint[], $5::text[], $19::text[]) WITH ORDINALITY"
            " AS u(i, e, d, s, t, w, n) ORDER BY n"
            " ON CONFLICT DO NOTHING RETURNING 1),"
            " ins AS (INSERT INTO incident_events (event_id, incident_id, type, status, actor_user, actor_unit,"
            " actor_role, address, at, station, district, verdict, data)"
            " SELECT e, i, ty, st, au, un, ro, ad, at, sn, di, ve, da::jsonb FROM unnest($6::uuid[], $7::uuid[],"
            " $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::timestamptz[],"
            " $15::text[], $16::text[], $17::text[], $18::text[]) WITH ORDINALITY"
            " AS u(e, i, ty, st, au, un, ro, ad, at, sn, di, ve, da, n) ORDER BY n RETURNING seq, event_id),"
            " queued AS (INSERT INTO incident_outbox (seq) SELECT seq FROM ins)"
            " SELECT (SELECT count(*) FROM claim) AS n, ARRAY(SELECT seq FROM ins) AS seqs,"
            " ARRAY(SELECT event_id FROM ins) AS ids, ARRAY(SELECT id FROM webhooks WHERE active ORDER BY id) AS h,"
            " ARRAY(SELECT target_kind FROM webhooks WHERE active ORDER BY id) AS hk,"
            " ARRAY(SELECT target FROM webhooks WHERE active ORDER BY id) AS ht",
            [i[0] for i in claims],
            [i[1] for i in claims],
            [i[2] for i in claims],
            [i[3] for i in claims],
            [i[4] for i in claims],
            *cols,
            list(districts),
        )
        seq_of = dict(zip(r["ids"], r["seqs"], strict=True))
        hooks = [
            {"id": h, "target_kind": k, "target": t} for h, k, t in zip(r["h"], r["hk"], r["ht"], strict=True)
        ]
        return Applied(int(r["n"]), out, [seq_of[e.event_id] for e in out], hooks)

    async def get_incidents(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
        if not ids:
            return {}
        rows = await self.p.fetch(
            f"SELECT {', '.join(INCIDENT_COLUMNS)} FROM incidents WHERE id = ANY($1::uuid[])", list(ids)
        )
        return {r["id"]: dict(r) for r in rows}

    async def update_incident(
        self, conn: asyncpg.Connection, incident_id: uuid.UUID, fields: dict[str, Any]
    ) -> None:
        if not fields:
            return
        cols = list(fields)
        sets = ", ".join(f"{c}=${i + 2}" for i, c in enumerate(cols))
        await conn.execute(f"UPDATE incidents SET {sets} WHERE id=$1", incident_id, *fields.values())

    @staticmethod
    async def has_owner_notice(conn: asyncpg.Connection, incident_id: uuid.UUID, decision: str) -> bool:
        """Whether the incident's timeline already told its vehicle's owner about this decision."""
        return bool(
            await conn.fetchval(
                "SELECT 1 FROM incident_events WHERE incident_id=$1"
                " AND data->'owner_notice'->>'decision' = $2 LIMIT 1",
                incident_id,
                decision,
            )
        )

    async def append_transitions(
        self, conn: asyncpg.Connection, row: dict[str, Any], transitions: Sequence[Transition]
    ) -> list[IncidentEvent]:
        """Append audit rows (and queue them for Kafka); returns them as the events they will be published as."""
        out = []
        for t in transitions:
            ev = await self._append(conn, row, t, uuid.uuid4(), once=False)
            assert ev is not None  # a fresh uuid4 never conflicts
            out.append(ev)
        return out

    async def append_transition_once(
        self, conn: asyncpg.Connection, row: dict[str, Any], t: Transition, event_id: uuid.UUID
    ) -> IncidentEvent | None:
        """One audit row under a caller-chosen ``event_id`` (unique): None when it is already there (a replay)."""
        return await self._append(conn, row, t, event_id, once=True)

    async def _append(
        self, conn: asyncpg.Connection, row: dict[str, Any], t: Transition, event_id: uuid.UUID, *, once: bool
    ) -> IncidentEvent | None:
        """The audit row, its outbox entry and the event it will be published as; ``once``: skip a known id."""
        seq = await conn.fetchval(
            "INSERT INTO incident_events (event_id, incident_id, type, status, actor_user, actor_unit, actor_role,"
            " address, at, station, district, verdict, data) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)"
            + (" ON CONFLICT (event_id) DO NOTHING" if once else "")
            + " RETURNING seq",
            event_id,
            row["id"],
            t.type.value,
            t.status.value,
            t.actor.user,
            t.actor.unit,
            t.actor.role,
            t.actor.address,
            t.at,
            row.get("station"),
            row.get("district"),
            t.verdict.value if t.verdict else None,
            t.data,
        )
        if seq is None:
            return None
        await conn.execute("INSERT INTO incident_outbox (seq) VALUES ($1)", seq)
        return event_of(event_id, row, t)

    async def list_incidents(self, where: str, args: list[Any], limit: int) -> list[dict[str, Any]]:
        rows = await self.p.fetch(
            f"SELECT {', '.join(INCIDENT_COLUMNS)} FROM incidents WHERE {where}"
            f" ORDER BY (status = 'closed'), priority, opened_at DESC LIMIT {int(limit)}",
            *args,
        )
        return [dict(r) for r in rows]

    async def count_by_status(self, where: str, args: list[Any]) -> dict[str, int]:
        """Incidents per status under ``where``; closed ones only if closed in the last 24 h."""
        rows = await self.p.fetch(
            f"SELECT status, count(*) AS n FROM incidents WHERE ({where})"
            " AND (status <> 'closed' OR closed_at >= now() - interval '24 hours') GROUP BY status",
            *args,
        )
        return {r["status"]: r["n"] for r in rows}

    async def incident_alarms(self, incident_id: uuid.UUID) -> list[dict[str, Any]]:
        rows = await self.p.fetch(
            "SELECT event_id, decision, score, triaged, received_at FROM incident_alarms"
            " WHERE incident_id=$1 ORDER BY received_at, triaged->'event'->>'received_at'",
            incident_id,
        )
        return [dict(r) for r in rows]

    async def timeline(self, incident_id: uuid.UUID) -> list[dict[str, Any]]:
        rows = await self.p.fetch(
            "SELECT seq, event_id, type, status, actor_user, actor_unit, actor_role, address,"
            " at, station, district, verdict, data FROM incident_events WHERE incident_id=$1"
            " ORDER BY seq",
            incident_id,
        )
        return [dict(r) for r in rows]

    async def open_incident_of(self, conn: asyncpg.Connection, device_id: str) -> uuid.UUID | None:
        """The vehicle's most recent incident that is not closed."""
        return await conn.fetchval(
            "SELECT id FROM incidents WHERE source_device_id = $1 AND status <> 'closed'"
            " ORDER BY opened_at DESC LIMIT 1",
            device_id,
        )

    async def incident_of_report(self, device_id: str, event_id: uuid.UUID) -> uuid.UUID | None:
        """The open incident of the vehicle that holds the alarm ``event_id`` (a theft report's)."""
        # the vehicle's open incidents (partial index), then the one holding the report's alarm
        return await self.p.fetchval(
            "SELECT a.incident_id FROM incidents i JOIN incident_alarms a ON a.incident_id = i.id"
            " WHERE i.source_device_id = $1 AND i.status <> 'closed' AND a.triaged->'event'->>'event_id' = $2 LIMIT 1",
            device_id,
            str(event_id),
        )

    async def due_escalations(self, now: datetime, limit: int = 200) -> list[uuid.UUID]:
        rows = await self.p.fetch(
            "SELECT id FROM incidents WHERE escalate_at IS NOT NULL AND escalate_at <= $1"
            " AND status IN ('opened','routed','escalated') ORDER BY escalate_at LIMIT $2",
            now,
            limit,
        )
        return [r["id"] for r in rows]

    # -- generic registry CRUD ------------------------------------------------------------------
    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return [dict(r) for r in await self.p.fetch(sql, *args)]

    async def execute(self, sql: str, *args: Any) -> str:
        return await self.p.execute(sql, *args)
