"""The registries (accounts, cameras, vehicles, …: ``registry.KINDS``) and the JT/T 809 ``platforms`` table.

Every write tells the ingest services at once (``pg_notify`` on :data:`REGISTRY_CHANNEL`, in the
writing transaction where there is one) instead of leaving them to their refresh timer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
from alarmhub_store import row_notice

from ..errors import Conflict, NotFound
from ._base import TableStore, changed_none

__all__ = ["REGISTRY_CHANNEL", "RegistryStore"]

# ingest services may LISTEN here to reload a registry at once instead of waiting for their refresh timer;
# the payload names the table ("vehicles", "accounts", "platforms", …) or one row of it
# (alarmhub_store.row_notice: "vehicles:<device id>", 'accounts:["<line>", "<account>"]')
REGISTRY_CHANNEL = "alarmhub_registry"

#: a write of at most this many rows of a table whose readers re-read single rows is notified row by row
#: (each gateway then reads those rows, not the table); a larger one names the table
ROW_NOTICES_MAX = 20
_ROW_NOTICE_TABLES = frozenset({"accounts", "vehicles"})


def _notices(table: str, keys: Sequence[Sequence[Any]]) -> list[str]:
    """The payloads that tell the ingest services of a write to ``keys`` of ``table``."""
    if table in _ROW_NOTICE_TABLES and 0 < len(keys) <= ROW_NOTICES_MAX:
        return [row_notice(table, [str(k) for k in key]) for key in keys]
    return [table]


_VEHICLE_STATE = (
    "SELECT device_id, protocol, plate, plate_colour, armed, updated_at FROM vehicles WHERE device_id=$1"
)

_CAMERAS_NEAR = """
SELECT id, name, type, lat, lon, unit, network, category, online, channel, stream_url IS NOT NULL AS has_stream,
       6371008.8 * 2 * asin(sqrt(power(sin(radians(lat - $1) / 2), 2)
           + cos(radians($1)) * cos(radians(lat)) * power(sin(radians(lon - $2) / 2), 2))) AS distance_m
FROM cameras
WHERE lat BETWEEN $3 AND $4 AND lon BETWEEN $5 AND $6
ORDER BY distance_m
LIMIT $7
"""


_PLATFORM_COLUMNS = (
    "user_id, password, gnss_center_id, name, encrypt, allowed, disabled, link_status, link_changed_at,"
    " created_at, updated_at"
)


class RegistryStore(TableStore):
    # -- generic registries ----------------------------------------------------------------------
    async def vehicle_plate_model(self, device_id: str) -> dict[str, Any] | None:
        """A vehicle's plate and model (None: not registered)."""
        row = await self.p.fetchrow("SELECT plate, model FROM vehicles WHERE device_id=$1", device_id)
        return dict(row) if row else None

    async def upsert(self, kind: Any, rows: list[dict[str, Any]]) -> None:
        """Insert or update ``rows`` of the registry ``kind`` (a ``registry.Kind``) in one transaction.

        A column a row leaves out (a write-only secret not given again) keeps its stored value: rows are
        written in groups of the same columns."""
        if not rows:
            return
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for r in rows:
            groups.setdefault(tuple(r), []).append(r)
        async with self.p.acquire() as conn, conn.transaction():
            for cols, group in groups.items():
                updates = ", ".join(f"{c}=EXCLUDED.{c}" for c in cols if c not in kind.key)
                sql = (
                    f"INSERT INTO {kind.table} ({', '.join(cols)})"
                    f" VALUES ({', '.join(f'${i + 1}' for i in range(len(cols)))})"
                    f" ON CONFLICT ({', '.join(kind.key)}) DO UPDATE SET {updates}, updated_at=now()"
                )
                await conn.executemany(sql, [tuple(r[c] for c in cols) for r in group])
            for payload in _notices(kind.table, [tuple(r[c] for c in kind.key) for r in rows]):
                await conn.execute("SELECT pg_notify($1, $2)", REGISTRY_CHANNEL, payload)

    async def units_of(self, kind: Any, keys: Sequence[tuple[Any, ...]]) -> dict[tuple[Any, ...], str | None]:
        """The ``unit`` of each existing record among ``keys`` (absent keys are not in the answer)."""
        if not keys:
            return {}
        cols = ", ".join(kind.key)
        arrays = ", ".join(f"${i + 1}::text[]" for i in range(len(kind.key)))
        rows = await self.p.fetch(
            f"SELECT {cols}, unit FROM {kind.table} WHERE ({cols}) IN (SELECT * FROM unnest({arrays}))",
            *[[str(k[i]) for k in keys] for i in range(len(kind.key))],
        )
        return {tuple(r[c] for c in kind.key): r["unit"] for r in rows}

    async def one(self, kind: Any, key: Sequence[Any]) -> dict[str, Any] | None:
        where = " AND ".join(f"{c}=${i + 1}" for i, c in enumerate(kind.key))
        row = await self.p.fetchrow(f"SELECT * FROM {kind.table} WHERE {where}", *key)
        return dict(row) if row is not None else None

    async def page(
        self, kind: Any, limit: int, offset: int, units: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """A page of ``kind``'s records; with ``units``, only those of these units."""
        where, args = ("", []) if units is None else ("WHERE unit = ANY($1::text[])", [list(units)])
        rows = await self.p.fetch(
            f"SELECT * FROM {kind.table} {where} ORDER BY {', '.join(kind.key)}"
            f" LIMIT {int(limit)} OFFSET {int(offset)}",
            *args,
        )
        return [dict(r) for r in rows]

    async def company_accounts(self, company: str | None, limit: int, offset: int) -> list[dict[str, Any]]:
        rows = await self.p.fetch(
            f"SELECT * FROM accounts WHERE company=$1 ORDER BY line, account LIMIT {int(limit)} OFFSET {int(offset)}",
            company,
        )
        return [dict(r) for r in rows]

    async def delete(self, kind: Any, key: Sequence[Any]) -> bool:
        """Delete one record by its key; False when there was none (the ingest services are told either way)."""
        where = " AND ".join(f"{c}=${i + 1}" for i, c in enumerate(kind.key))
        res = await self.p.execute(f"DELETE FROM {kind.table} WHERE {where}", *key)
        for payload in _notices(kind.table, [tuple(key)]):
            await self.p.execute("SELECT pg_notify($1, $2)", REGISTRY_CHANNEL, payload)
        return not changed_none(res)

    # -- vehicles --------------------------------------------------------------------------------
    async def clear_auth_code(self, device_id: str) -> None:
        """A terminal may register again: its stored JT/T 808 code goes (the gateways are told at once)."""
        async with self.p.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE vehicles SET auth_code = NULL, updated_at = now() WHERE device_id = $1", device_id
            )
            await conn.execute("SELECT pg_notify($1, $2)", REGISTRY_CHANNEL, f"vehicles:{device_id}")

    async def known_vehicles(self, device_ids: Sequence[str]) -> set[str]:
        rows = await self.p.fetch(
            "SELECT device_id FROM vehicles WHERE device_id = ANY($1::text[])", list(device_ids)
        )
        return {r["device_id"] for r in rows}

    async def vehicle_owners(self, device_ids: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
        """device id → (owner, responsible unit) of the registered ones among ``device_ids``."""
        rows = await self.p.fetch(
            "SELECT device_id, owner, unit FROM vehicles WHERE device_id = ANY($1::text[])", list(device_ids)
        )
        return {r["device_id"]: (r["owner"], r["unit"]) for r in rows}

    async def vehicle(self, device_id: str) -> asyncpg.Record | None:
        return await self.p.fetchrow(
            "SELECT device_id, protocol, plate FROM vehicles WHERE device_id=$1", device_id
        )

    async def last_fix(self, device_id: str) -> asyncpg.Record | None:
        """The vehicle's latest fix of the last 24 hours."""
        return await self.p.fetchrow(
            "SELECT at, lat, lon FROM tracks WHERE device_id=$1 AND at >= now() - interval '24 hours'"
            " ORDER BY at DESC LIMIT 1",
            device_id,
        )

    # -- the incident view's record behind a source, and a camera's stream -------------------------------
    async def _one(self, sql: str, *args: Any) -> dict[str, Any] | None:
        r = await self.p.fetchrow(sql, *args)
        return None if r is None else dict(r)

    async def account_site(self, account: str, line: str) -> dict[str, Any] | None:
        """The registered site of ``account`` (upper-case, as the registry keeps it), on ``line`` if there."""
        return await self._one(
            "SELECT line, account, company, site_name, site_address, lat, lon, contacts FROM accounts"
            " WHERE account = $1 ORDER BY (line = $2) DESC, line LIMIT 1",
            account,
            line,
        )

    async def vehicle_card(self, device_id: str) -> dict[str, Any] | None:
        """A vehicle's plate, owner and contact, for the incident view."""
        return await self._one(
            "SELECT device_id, plate, plate_colour, description, model, owner, contact FROM vehicles"
            " WHERE device_id = $1",
            device_id,
        )

    async def camera_card(self, camera_id: str) -> dict[str, Any] | None:
        """A camera's name and place, for the incident view."""
        return await self._one(
            "SELECT id, name, type, lat, lon, unit, network FROM cameras WHERE id = $1", camera_id
        )

    async def camera_stream(self, camera_id: str) -> dict[str, Any] | None:
        """A camera's stream URL and its credentials (the live relay's; never handed to a client)."""
        return await self._one(
            "SELECT id, name, stream_url, username, password FROM cameras WHERE id = $1", camera_id
        )

    async def cameras_in_box(
        self, lat: float, lon: float, box: tuple[float, float, float, float], limit: int
    ) -> list[dict[str, Any]]:
        """Cameras inside ``box`` (south, north, west, east; the ``cameras_position_idx`` index), nearest to
        (lat, lon) first, with their great-circle ``distance_m`` and whether they have a stream URL."""
        return [dict(r) for r in await self.p.fetch(_CAMERAS_NEAR, lat, lon, *box, limit)]

    # -- a vehicle owner's view and arming -----------------------------------------------------------
    async def vehicle_state(self, device_id: str) -> dict[str, Any] | None:
        """The vehicle's row, its latest fix of the last 24 hours and its open incident (None: no vehicle)."""
        row = await self.p.fetchrow(_VEHICLE_STATE, device_id)
        if row is None:
            return None
        fix = await self.p.fetchrow(
            "SELECT at, lat, lon, speed_kmh FROM tracks WHERE device_id=$1 AND at >= now() - interval '24 hours'"
            " ORDER BY at DESC LIMIT 1",
            device_id,
        )
        incident = await self.p.fetchrow(
            "SELECT * FROM incidents WHERE source_device_id=$1 AND status <> 'closed' ORDER BY opened_at DESC LIMIT 1",
            device_id,
        )
        return {
            "vehicle": dict(row),
            "fix": dict(fix) if fix else None,
            "incident": dict(incident) if incident else None,
        }

    async def set_armed(self, device_id: str, armed: bool) -> bool:
        """Arm or disarm a vehicle; the gateways are told in the same transaction (``vehicles:<id>``)."""
        async with self.p.acquire() as conn, conn.transaction():
            done = await conn.execute(
                "UPDATE vehicles SET armed=$2, updated_at=now() WHERE device_id=$1", device_id, armed
            )
            if changed_none(done):
                return False
            await conn.execute("SELECT pg_notify($1, $2)", REGISTRY_CHANNEL, f"vehicles:{device_id}")
        return True

    # -- JT/T 809 platforms ----------------------------------------------------------------------
    async def platform_user(self, name: str) -> int | None:
        """The user id of the platform registered under ``name``, if exactly one is."""
        rows = await self.p.fetch("SELECT user_id FROM platforms WHERE name = $1", name)
        return int(rows[0]["user_id"]) if len(rows) == 1 else None

    async def platforms(self, limit: int, offset: int) -> list[dict[str, Any]]:
        rows = await self.p.fetch(
            f"SELECT {_PLATFORM_COLUMNS} FROM platforms ORDER BY user_id LIMIT $1 OFFSET $2", limit, offset
        )
        return [dict(r) for r in rows]

    async def platform(self, user_id: int) -> dict[str, Any]:
        row = await self.p.fetchrow(f"SELECT {_PLATFORM_COLUMNS} FROM platforms WHERE user_id=$1", user_id)
        if row is None:
            raise NotFound("no such platform")
        return dict(row)

    @staticmethod
    async def _centre_free(conn: asyncpg.Connection, centre: int, user_id: int) -> None:
        other = await conn.fetchval(
            "SELECT user_id FROM platforms WHERE gnss_center_id=$1 AND user_id<>$2", centre, user_id
        )
        if other is not None:
            raise Conflict(f"GNSS centre id {centre} already belongs to platform {other}")

    @staticmethod
    async def _notify_platforms(conn: asyncpg.Connection) -> None:
        await conn.execute("SELECT pg_notify($1, $2)", REGISTRY_CHANNEL, "platforms")

    async def create_platform(self, row: dict[str, Any]) -> None:
        """Insert a platform row (409 when its user id or GNSS centre id is taken)."""
        async with self.p.acquire() as conn, conn.transaction():
            await self._centre_free(conn, row["gnss_center_id"], row["user_id"])
            done = await conn.execute(
                "INSERT INTO platforms (user_id, password, gnss_center_id, name, encrypt, allowed, disabled)"
                " VALUES ($1,$2,$3,$4,$5::jsonb,$6::jsonb,$7) ON CONFLICT (user_id) DO NOTHING",
                row["user_id"],
                row["password"],
                row["gnss_center_id"],
                row["name"],
                row["encrypt"],
                row["allowed"],
                row["disabled"],
            )  # the pool's codec encodes jsonb
            if changed_none(done):
                raise Conflict(f"platform {row['user_id']} exists: PUT to change it")
            await self._notify_platforms(conn)

    async def update_platform(self, user_id: int, changes: list[tuple[str, Any, str]]) -> None:
        """Set the given ``(column, value, cast)``; a new GNSS centre id must be free."""
        sets: list[str] = []
        args: list[Any] = [user_id]
        for col, value, cast in changes:
            args.append(value)
            sets.append(f"{col}=${len(args)}{cast}")
        async with self.p.acquire() as conn, conn.transaction():
            for col, value, _ in changes:
                if col == "gnss_center_id":
                    await self._centre_free(conn, value, user_id)
            done = await conn.execute(
                f"UPDATE platforms SET {', '.join([*sets, 'updated_at=now()'])} WHERE user_id=$1", *args
            )
            if changed_none(done):
                raise NotFound("no such platform")
            await self._notify_platforms(conn)

    async def delete_platform(self, user_id: int) -> None:
        async with self.p.acquire() as conn, conn.transaction():
            done = await conn.execute("DELETE FROM platforms WHERE user_id=$1", user_id)
            if changed_none(done):
                raise NotFound("no such platform")
            await self._notify_platforms(conn)
