"""Registry changes at once: LISTEN for dispatch's ``pg_notify`` and have an ingest service reload.

Dispatch owns writing the registries (accounts, vehicles, cameras, platforms) and, in the transaction of
every write, sends ``pg_notify('alarmhub_registry', '<table>')``: PostgreSQL delivers it at commit, so a
reload started by it reads the new rows. A :class:`RegistryListener` holds one connection that LISTENs on
that channel and calls ``on_change(table)`` for each table named (several notifications that arrive
together make one call per table). Each service keeps its refresh timer as the fallback.

When the connection is lost (PostgreSQL restarted, a network cut; a ping every ``ping_s`` finds a silent
one) it reconnects with backoff and then calls ``on_change(None)`` — "anything may have changed": what
was notified meanwhile was lost. ``on_change`` errors are logged, never raised: a failed reload keeps the
service's last good copy, and the next notification or the timer tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Collection
from typing import Any, Final

import asyncpg
import structlog

__all__ = ["REGISTRY_CHANNEL", "RegistryListener"]

log = structlog.get_logger("alarmhub.store.listen")

#: the channel dispatch notifies on, with the changed table's name as payload
REGISTRY_CHANNEL: Final = "alarmhub_registry"

#: the listener's connection, as ``pg_stat_activity`` shows it
APPLICATION_NAME: Final = "alarmhub-registry-listener"

OnChange = Callable[[str | None], Awaitable[None]]


class RegistryListener:
    """LISTEN on ``channel``; ``on_change(table)`` for each notified table in ``tables`` (all when None)."""

    def __init__(
        self,
        database_url: str,
        on_change: OnChange,
        *,
        tables: Collection[str] | None = None,
        channel: str = REGISTRY_CHANNEL,
        ping_s: float = 15.0,
        backoff_max_s: float = 10.0,
    ) -> None:
        self._url = database_url
        self._on_change = on_change
        self._tables = frozenset(tables) if tables is not None else None
        self._channel = channel
        self._ping_s = ping_s
        self._backoff_max_s = backoff_max_s
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self.notifications = 0
        self.reloads = 0

    async def start(self, *, wait_s: float = 5.0) -> None:
        """Start listening; returns once LISTEN is in place (or after ``wait_s``: it keeps trying)."""
        self._task = asyncio.create_task(self._run(), name=f"listen:{self._channel}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), wait_s)

    def listening(self) -> bool:
        return self._listening.is_set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        delay = 0.5
        first = True
        while True:
            try:
                conn = await asyncpg.connect(
                    self._url, timeout=5, server_settings={"application_name": APPLICATION_NAME}
                )
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("registry_listen_connect_failed", error=repr(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff_max_s)
                continue
            try:
                await self._listen(conn, first)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("registry_listen_lost", error=repr(exc))
            finally:
                self._listening.clear()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), 2)
            first, delay = False, 0.5
            await asyncio.sleep(delay)

    async def _listen(self, conn: asyncpg.Connection, first: bool) -> None:
        pending: set[str] = set()
        wake = asyncio.Event()
        lost = asyncio.Event()

        def notified(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            self.notifications += 1
            pending.add(payload)
            wake.set()

        def terminated(_conn: Any) -> None:
            lost.set()
            wake.set()

        conn.add_termination_listener(terminated)
        await conn.add_listener(self._channel, notified)
        self._listening.set()
        log.info("registry_listening", channel=self._channel)
        if not first:
            await self._call(None)  # notifications sent while we were away are lost: reload everything
        while not lost.is_set():
            try:
                await asyncio.wait_for(wake.wait(), self._ping_s)
            except TimeoutError:
                await conn.fetchval("SELECT 1", timeout=5)  # a silent dead connection raises here
                continue
            wake.clear()
            tables = set(pending)
            pending.clear()
            for table in sorted(tables):
                if self._tables is None or table in self._tables:
                    await self._call(table)
        raise ConnectionError("LISTEN connection terminated")

    async def _call(self, table: str | None) -> None:
        try:
            await self._on_change(table)
            self.reloads += 1
            log.info("registry_reloaded_on_notify", table=table or "all")
        except Exception as exc:  # the service keeps its last copy; the timer or the next notify retries
            log.warning("registry_reload_on_notify_failed", table=table or "all", error=repr(exc))
