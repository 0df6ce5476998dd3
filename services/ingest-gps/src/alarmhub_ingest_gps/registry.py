"""The vehicle registry as the gateway sees it: an in-memory view of ``vehicles``, refreshed from PostgreSQL.

Sessions need a synchronous lookup on every authentication and alarm (armed state, plate), so the
gateway keeps the table in memory and re-reads it every ``refresh_s``; its own writes (flagged
terminals, issued authentication codes) are applied to the view at once. A change made elsewhere is
taken at once too: dispatch commits ``NOTIFY alarmhub_registry`` with its registry writes, and the gateway,
listening on its own connection, re-reads the table (payload ``vehicles``: a registry edit) or one vehicle
(``vehicles:<device id>``: an owner arming or disarming). Other tables' notices are not its business. Writes are best effort:
the authentication code is derived, not stored, so a lost write never locks a terminal out.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import asyncpg
import structlog

from .session import RegistryWrite, VehicleInfo

__all__ = ["VehicleRegistry"]

log = structlog.get_logger("alarmhub.ingest_gps.registry")

_SELECT = "SELECT device_id, protocol, plate, plate_colour, armed, flagged, auth_code FROM vehicles"
_SELECT_ONE = _SELECT + " WHERE device_id = $1"
#: dispatch's NOTIFY channel (alarmhub_dispatch.store.REGISTRY_CHANNEL): payload = a table or "vehicles:<id>"
CHANNEL = "alarmhub_registry"
_ALL = "vehicles"
_ONE = "vehicles:"
_UPSERT = """
INSERT INTO vehicles (device_id, protocol, plate, plate_colour, description, flagged, auth_code)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (device_id) DO UPDATE SET
    auth_code = COALESCE(EXCLUDED.auth_code, vehicles.auth_code),
    updated_at = now()
"""


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
        self.loaded = False
        self._listener: asyncpg.Connection | None = None
        self._changed: asyncio.Queue[str] = asyncio.Queue(maxsize=10_000)
        self._reloader: asyncio.Task[None] | None = None
        self.notified = 0
        self._full_due = False

    def get(self, device_id: str) -> VehicleInfo | None:
        return self.vehicles.get(device_id)

    async def start(self) -> None:
        try:
            await self._connect()
            await self.refresh()
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("registry_unavailable", error=repr(exc))
        self._task = asyncio.create_task(self._loop(), name="registry-refresh")
        self._reloader = asyncio.create_task(self._reload_changed(), name="registry-notified")
        await self._listen()

    async def _listen(self) -> None:
        """LISTEN on its own connection (re-established by the periodic refresh when lost)."""
        if self._listener is not None and not self._listener.is_closed():
            return
        try:
            conn = await asyncpg.connect(self._url, timeout=10)
            await conn.add_listener(CHANNEL, self._on_notify)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            log.warning("registry_listen_failed", error=repr(exc))
            return
        self._listener = conn

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        if payload != _ALL and not payload.startswith(_ONE):
            return
        if payload == _ALL:
            if self._full_due:
                return  # a whole-table refresh is already due: one serves a burst of edits
            self._full_due = True
        try:
            self._changed.put_nowait(payload)
        except asyncio.QueueFull:  # a burst of edits: the periodic refresh reads them all anyway
            log.warning("registry_notify_dropped", device_id=payload)

    async def _reload_changed(self) -> None:
        while True:
            payload = await self._changed.get()
            try:
                if payload == _ALL:
                    self._full_due = False
                    await self.refresh()
                    self._reloaded("table")
                else:
                    await self.reload(payload[len(_ONE) :])
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("registry_reload_failed", payload=payload, error=repr(exc))

    async def reload(self, device_id: str) -> None:
        """Re-read one vehicle (it changed elsewhere); a deleted one leaves the view."""
        await self._connect()
        assert self._pool is not None
        r = await self._pool.fetchrow(_SELECT_ONE, device_id)
        if r is None:
            self.vehicles.pop(device_id, None)
        else:
            self.vehicles[device_id] = VehicleInfo(
                r["device_id"],
                r["protocol"],
                r["plate"],
                r["plate_colour"],
                r["armed"],
                r["flagged"],
                r["auth_code"],
            )
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
        for task in (self._task, self._reloader):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._listener is not None:
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                await self._listener.close()
            self._listener = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def ready(self) -> bool:
        return self.loaded

    async def refresh(self) -> None:
        await self._connect()
        assert self._pool is not None
        rows = await self._pool.fetch(_SELECT)
        self.vehicles = {
            r["device_id"]: VehicleInfo(
                r["device_id"],
                r["protocol"],
                r["plate"],
                r["plate_colour"],
                r["armed"],
                r["flagged"],
                r["auth_code"],
            )
            for r in rows
        }
        self.loaded = True

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await self.refresh()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("registry_refresh_failed", error=repr(exc))
            await self._listen()

    async def write(self, w: RegistryWrite) -> None:
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
