"""Registry changes at once: LISTEN for dispatch's ``pg_notify`` and have an ingest service reload.

Dispatch owns writing the registries (accounts, vehicles, cameras, platforms) and, in the transaction of
every write, sends ``pg_notify('alarmhub_registry', '<table>')``, or one notice per row for a write of
a few rows (:func:`row_notice`: ``vehicles:<device id>``, ``accounts:["<line>", "<account>"]``): PostgreSQL
delivers them at commit, so a reload started by one reads the new rows. A :class:`RegistryListener` holds
one connection that LISTENs on that channel and calls ``on_change(payload)`` for each payload whose table
it serves (:func:`notice_row` splits one; several notifications that arrive together make one call per
payload, and more than ``max_rows`` row notices of one table make a single call for the table). Each
service keeps its refresh timer as the fallback.

When the connection is lost (PostgreSQL restarted, a network cut; a ping every ``ping_s`` finds a silent
one) it reconnects with backoff and then calls ``on_change(None)`` — "anything may have changed": what
was notified meanwhile was lost. ``on_change`` errors are logged, never raised: a failed reload keeps the
service's last good copy, and the next notification or the timer tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any, Final

import asyncpg
import structlog

__all__ = ["REGISTRY_CHANNEL", "RegistryListener", "notice_row", "row_notice"]

log = structlog.get_logger("alarmhub.store.listen")

#: the channel dispatch notifies on, with the changed table's name as payload
REGISTRY_CHANNEL: Final = "alarmhub_registry"

#: the listener's connection, as ``pg_stat_activity`` shows it
APPLICATION_NAME: Final = "alarmhub-registry-listener"

OnChange = Callable[[str | None], Awaitable[None]]


def row_notice(table: str, key: Sequence[str]) -> str:
    """The payload naming one row of ``table``: ``table:<key>`` for a one-column key, else (or when the
    key starts with ``[``) ``table:`` and the key as a JSON array."""
    if len(key) == 1 and not key[0].startswith("["):
        return f"{table}:{key[0]}"
    return f"{table}:{json.dumps(list(key), ensure_ascii=False)}"


def notice_row(payload: str) -> tuple[str, tuple[str, ...] | None]:
    """A payload's table and the row it names (None: any row of the table may have changed)."""
    table, sep, rest = payload.partition(":")
    if not sep:
        return table, None
    if rest.startswith("["):
        try:
            key = json.loads(rest)
        except ValueError:
            return table, None
        if isinstance(key, list) and key and all(isinstance(k, str) for k in key):
            return table, tuple(key)
        return table, None
    return table, (rest,)


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
        max_rows: int = 50,
    ) -> None:
        self._url = database_url
        self._on_change = on_change
        self._tables = frozenset(tables) if tables is not None else None
        self._channel = channel
        self._ping_s = ping_s
        self._backoff_max_s = backoff_max_s
        self._max_rows = max_rows
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
            payloads = self._coalesce(pending)
            pending.clear()
            for payload in payloads:
                await self._call(payload)
        raise ConnectionError("LISTEN connection terminated")

    def _coalesce(self, pending: Collection[str]) -> list[str]:
        """The calls for a set of payloads: those of the tables served, a table notice standing for its
        row notices, and more than ``max_rows`` row notices of one table made one table notice (a bulk
        import notified row by row is then one refresh, not thousands of single-row reads)."""
        rows: dict[str, list[str]] = {}
        whole: set[str] = set()
        for payload in pending:
            table, key = notice_row(payload)
            if self._tables is not None and table not in self._tables:
                continue
            if key is None:
                whole.add(table)
            else:
                rows.setdefault(table, []).append(payload)
        for table, notices in rows.items():
            if len(notices) > self._max_rows:
                whole.add(table)
        out = sorted(whole)
        for table, notices in sorted(rows.items()):
            if table not in whole:
                out.extend(sorted(notices))
        return out

    async def _call(self, table: str | None) -> None:
        try:
            await self._on_change(table)
            self.reloads += 1
            log.info("registry_reloaded_on_notify", table=table or "all")
        except Exception as exc:  # the service keeps its last copy; the timer or the next notify retries
            log.warning("registry_reload_on_notify_failed", table=table or "all", error=repr(exc))
