"""The vehicle registry as the gateway sees it: an in-memory view of ``vehicles``, refreshed from PostgreSQL.

Sessions need a synchronous lookup on every authentication and alarm (armed state, plate), so the
gateway keeps the table in memory and refreshes it every ``refresh_s``, re-reading only the rows whose
version changed (``alarmhub_store.RowVersions``: a full rebuild held the event loop for the whole table on
every refresh); its own writes (flagged
terminals, issued authentication codes) are applied to the view at once. A change made elsewhere is
taken at once too: dispatch commits ``NOTIFY alarmhub_registry`` with its registry writes, and the gateway's
``RegistryListener`` (app.py) hands them to :meth:`VehicleRegistry.on_notify`, which re-reads the table
(payload ``vehicles``: a registry edit) or one vehicle (``vehicles:<device id>``: an owner arming or
disarming). Writes are best effort:
the authentication code is derived, not stored, so a lost write never locks a terminal out.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import asyncpg
from alarmhub_runtime import get_logger
from alarmhub_store import RowVersions

from .sessions import RegistryWrite, VehicleInfo

__all__ = ["VehicleRegistry"]

log = get_logger("alarmhub.ingest_gps.registry")

_COLUMNS = "device_id, protocol, plate, plate_colour, armed, flagged, auth_code"
_ALL = "vehicles"
_ONE = "vehicles:"
_UPSERT = """
INSERT INTO vehicles (device_id, protocol, plate, plate_colour, description, flagged, auth_code)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (device_id) DO UPDATE SET
    auth_code = COALESCE(EXCLUDED.auth_code, vehicles.auth_code),
    updated_at = now()
"""


def _info(r: asyncpg.Record) -> VehicleInfo:
    return VehicleInfo(
        r["device_id"], r["protocol"], r["plate"], r["plate_colour"], r["armed"], r["flagged"], r["auth_code"]
    )


class VehicleRegistry:
    def __init__(
        self, database_url: str, *, refresh_s: float = 30.0, on_reload: Callable[[str], object] | None = None
    ) -> None:
        self._url = database_url
        self._on_reload = on_reload
        self._refresh_s = refresh_s
        self._pool: asyncpg.Pool | None = None
        self._task: asyncio.Task[None] | None = None
        self.vehicles: dict[str, VehicleInfo] = {}
        self._versions = RowVersions("vehicles", ("device_id",))
        self._not_stored: set[str] = set()  # in the view only: their write failed (_unsaved)
        self.loaded = False
        self.notified = 0

    def get(self, device_id: str) -> VehicleInfo | None:
        return self.vehicles.get(device_id)

    async def start(self) -> None:
        try:
            await self._connect()
            await self.refresh()
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("registry_unavailable", error=repr(exc))
        self._task = asyncio.create_task(self._loop(), name="registry-refresh")

    async def on_notify(self, payload: str | None) -> bool:
        """A notification of dispatch's registry channel (``alarmhub_store.RegistryListener``): ``vehicles``
        re-reads the table, ``vehicles:<device id>`` one vehicle, None (the LISTEN connection came back,
        notices may be lost) the table. False for another table's notice (not this view's business)."""
        if payload is None or payload == _ALL:
            await self.refresh()
            self._reloaded("table")
            return True
        if payload.startswith(_ONE):
            await self.reload(payload[len(_ONE) :])
            return True
        return False

    async def reload(self, device_id: str) -> None:
        """Re-read one vehicle (it changed elsewhere); a deleted one leaves the view."""
        await self._connect()
        assert self._pool is not None
        async with self._pool.acquire() as conn:
            r = await self._versions.reread(conn, _COLUMNS, (device_id,))
        if r is None:
            self.vehicles.pop(device_id, None)
        else:
            self.vehicles[device_id] = _info(r)
        log.info("registry_vehicle_reloaded", device_id=device_id, armed=bool(r and r["armed"]))
        self._reloaded("vehicle")

    def _reloaded(self, scope: str) -> None:
        self.notified += 1
        if self._on_reload is not None:
            self._on_reload(scope)

    async def _connect(self) -> None:
        if self._pool is None:
            self._pool = await asyncpg.create_pool(self._url, min_size=1, max_size=4, command_timeout=10)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def ready(self) -> bool:
        return self.loaded

    async def refresh(self) -> None:
        """Re-read the vehicles changed since the last refresh (all of them the first time)."""
        await self._connect()
        assert self._pool is not None
        async with self._pool.acquire() as conn:
            diff = await self._versions.diff(conn)
            async for rows in self._versions.rows(conn, _COLUMNS, diff):
                for r in rows:
                    self.vehicles[r["device_id"]] = _info(r)
                await asyncio.sleep(0)
        for (device_id,) in diff.gone:
            self.vehicles.pop(device_id, None)
        for device_id in self._not_stored:
            if (device_id,) not in diff.versions:
                self.vehicles.pop(device_id, None)
        self._not_stored.clear()
        self._versions.accept(diff)
        self.loaded = True

    def _unsaved(self, device_id: str, *, existed: bool) -> None:
        """A write to the view that PostgreSQL did not take: until the next refresh the view serves it, as
        when every refresh rebuilt the view; then the stored row wins (read again: its version is
        forgotten) or, for a vehicle never stored, the entry goes."""
        if existed:
            self._versions.note((device_id,), None)
        else:
            self._not_stored.add(device_id)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await self.refresh()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("registry_refresh_failed", error=repr(exc))

    async def reset_auth(self, device_id: str) -> bool:
        """Clear a terminal's stored authentication code so it may register again (logout, operator
        reset); other gateways are told at once. False when the vehicle is not registered."""
        old = self.vehicles.get(device_id)
        if old is not None:
            self.vehicles[device_id] = VehicleInfo(
                old.device_id, old.protocol, old.plate, old.plate_colour, old.armed, old.flagged, None
            )
        try:
            await self._connect()
            assert self._pool is not None
            status = await self._pool.execute(
                "UPDATE vehicles SET auth_code = NULL, updated_at = now() WHERE device_id = $1", device_id
            )
            await self._pool.execute("SELECT pg_notify('alarmhub_registry', $1)", _ONE + device_id)
            return not status.endswith(" 0")
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("registry_write_failed", device_id=device_id, error=repr(exc))
            self._unsaved(device_id, existed=old is not None)
            return False

    async def write(self, w: RegistryWrite) -> None:
        if w.reset_auth:
            await self.reset_auth(w.device_id)
            return
        old = self.vehicles.get(w.device_id)
        self.vehicles[w.device_id] = VehicleInfo(
            w.device_id,
            w.protocol,
            old.plate if old else w.plate,
            old.plate_colour if old else w.plate_colour,
            old.armed if old else False,
            old.flagged if old else w.flagged,
            w.auth_code or (old.auth_code if old else None),
        )
        try:
            await self._connect()
            assert self._pool is not None
            await self._pool.execute(
                _UPSERT,
                w.device_id,
                w.protocol,
                w.plate,
                w.plate_colour,
                w.description,
                w.flagged,
                w.auth_code,
            )
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("registry_write_failed", device_id=w.device_id, error=repr(exc))
            self._unsaved(w.device_id, existed=old is not None)
