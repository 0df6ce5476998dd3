"""The DC-09 account registry, read from PostgreSQL's ``accounts`` table (owned by the dispatch API).

The receiver keeps the whole table in memory (an alarm centre's accounts fit easily) and refreshes it
periodically and on dispatch's change notices, so a PostgreSQL hiccup never delays an ACK: the last good
copy stays in use. A refresh re-reads only the rows whose version changed (``alarmhub_store.RowVersions``)
and a notice naming one account (``accounts:["<line>", "<account>"]``) only that row: rebuilding every
account on each refresh held the event loop for ~100 ms of CPU at 6,000 accounts.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any

import asyncpg
from alarmhub_runtime import get_logger
from alarmhub_store import RowDiff, RowVersions

from .session import Account

__all__ = ["AccountRegistry", "Changes", "account_from_row", "normalize_line"]

log = get_logger("alarmhub.ingest_contactid.registry")

_COLUMNS = (
    "line, account, company, key_hex, encryption_required, supervision_s, site_name, site_address, "
    "lat, lon, zones"
)


def normalize_line(line: str | None) -> str:
    """``L0``, ``l000``, ``0`` and empty all name line 0; the registry and the wire use one form."""
    text = (line or "").strip().upper()
    if text.startswith("L"):
        text = text[1:]
    return text.lstrip("0") or "0"


def _key(key_hex: str | None) -> bytes | None:
    if not key_hex:
        return None
    raw = bytes.fromhex(key_hex.strip())
    if len(raw) not in (16, 24, 32):
        raise ValueError(f"AES key must be 16, 24 or 32 bytes, got {len(raw)}")
    return raw


def account_from_row(row: Mapping[str, Any]) -> Account:
    zones = row.get("zones") or {}
    if isinstance(zones, str):
        zones = json.loads(zones)
    if isinstance(zones, list):  # [{"zone": "1", "name": "...", "sensor": "pir"}] as well as {"1": "..."}
        zones = {
            str(z.get("zone") or z.get("id")): (
                {"name": z.get("name") or z.get("description"), "sensor": z["sensor"]}
                if z.get("sensor")
                else z.get("name") or z.get("description")
            )
            for z in zones
            if isinstance(z, dict)
        }
    return Account(
        line=normalize_line(row["line"]),
        account=str(row["account"]).strip().upper(),
        company=row.get("company") or "",
        key=_key(row.get("key_hex")),
        encryption_required=bool(row.get("encryption_required")),
        supervision_s=row.get("supervision_s"),
        site_name=row.get("site_name"),
        site_address=row.get("site_address"),
        lat=row.get("lat"),
        lon=row.get("lon"),
        zones=zones if isinstance(zones, dict) else {},
    )


RowKey = tuple[str, str]  # (line, account) as stored


class Changes:
    """What a refresh changed: accounts new or rewritten, and the device ids of those gone."""

    __slots__ = ("changed", "gone")

    def __init__(self) -> None:
        self.changed: list[Account] = []
        self.gone: list[str] = []

    def __bool__(self) -> bool:
        return bool(self.changed or self.gone)


class AccountRegistry:
    """The ``accounts`` table in memory: :attr:`accounts`, indexed by (line, account) as the wire names
    them, is updated in place by :meth:`refresh` and :meth:`reload`."""

    def __init__(self, database_url: str, *, negative_ttl_s: float = 5.0) -> None:
        self.database_url = database_url
        self.negative_ttl_s = negative_ttl_s
        self.accounts: dict[tuple[str, str], Account] = {}
        self._versions = RowVersions("accounts", ("line", "account"), chunk=2000)
        self._index_of: dict[RowKey, tuple[str, str]] = {}  # stored key → index key
        self._bad: set[RowKey] = set()
        self._misses: dict[tuple[str, str], float] = {}
        self._pool: asyncpg.Pool | None = None

    @property
    def bad_rows(self) -> int:
        """Rows that could not be read as an account (each logged when read)."""
        return len(self._bad)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def forget_misses(self) -> None:
        """The registry changed (dispatch's NOTIFY): remembered misses may be registered accounts now."""
        self._misses.clear()

    def recently_missed(self, line: str, account: str) -> bool:
        """Whether :meth:`lookup` would answer ``None`` from its memory of misses, without a query."""
        return self._misses.get((line, account), 0.0) > time.monotonic()

    async def lookup(self, line: str, account: str) -> Account | None:
        """One account, for a frame whose account is not in the last full load (registered since).

        Misses are remembered for ``negative_ttl_s`` so a transmitter with an unregistered account
        does not cost a query per message; database errors count as a miss (the frame is then handled
        as an unknown account, which the policy decides).
        """
        now = time.monotonic()
        if self._misses.get((line, account), 0.0) > now:
            return None
        if len(self._misses) > 100_000:
            self._misses = {k: v for k, v in self._misses.items() if v > now}
        try:
            async with (await self._pooled()).acquire(timeout=2) as conn:
                rows = await conn.fetch(
                    f"SELECT {_COLUMNS} FROM accounts WHERE upper(account) = $1", account, timeout=2
                )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("account_lookup_failed", line=line, account=account, error=repr(exc))
            rows = []
        for row in rows:
            try:
                found = account_from_row(dict(row))
            except (ValueError, TypeError):
                continue
            if found.line == line:
                self._misses.pop((line, account), None)
                log.info("account_found_on_lookup", device_id=found.device_id)
                return found
        self._misses[(line, account)] = now + self.negative_ttl_s
        return None

    async def refresh(self) -> Changes:
        """Re-read the rows changed since the last refresh (all of them the first time); raises on a
        database error, leaving the copy as it was or partly updated with current rows."""
        conn = await asyncpg.connect(self.database_url, timeout=5)
        try:
            diff = await self._versions.diff(conn)
            changes = await self._apply(conn, diff) if diff else Changes()
        finally:
            await conn.close()
        self._versions.accept(diff)
        return changes

    async def reload(self, line: str, account: str) -> Changes:
        """Re-read one row (dispatch's notice named it): a new or changed account, or one deleted."""
        key, changes = (line, account), Changes()
        # the lookups' pool: a notice per row must not cost a connection each
        async with (await self._pooled()).acquire(timeout=5) as conn:
            row = await self._versions.reread(conn, _COLUMNS, key)
        if row is not None:
            self._put(row, changes)
        else:
            self._gone(key, changes)
        return changes

    async def _pooled(self) -> asyncpg.Pool:
        if self._pool is None:
            self._pool = await asyncpg.create_pool(self.database_url, min_size=0, max_size=2, timeout=2)
        return self._pool

    async def _apply(self, conn: asyncpg.Connection, diff: RowDiff) -> Changes:
        changes = Changes()
        async for rows in self._versions.rows(conn, _COLUMNS, diff):
            for row in rows:
                self._put(row, changes)
            await asyncio.sleep(0)  # a first load of a large table: let ACKs through between chunks
        for line, account in diff.gone:
            self._gone((line, account), changes)
        return changes

    def _put(self, row: asyncpg.Record, changes: Changes) -> None:
        key: RowKey = (row["line"], row["account"])
        try:
            found = account_from_row(dict(row))
        except (ValueError, TypeError) as exc:
            if key not in self._bad:
                log.warning("account_row_invalid", line=row["line"], account=row["account"], error=str(exc))
            self._bad.add(key)
            self._drop(key, changes)  # as a full load would: an unreadable row has no account
            return
        self._bad.discard(key)
        where = (found.line, found.account)  # from the stored key alone, so the same on every read
        self._index_of[key] = where
        self.accounts[where] = found
        changes.changed.append(found)

    def _gone(self, key: RowKey, changes: Changes) -> None:
        """Stored row ``key`` was deleted."""
        self._bad.discard(key)
        self._drop(key, changes)

    def _drop(self, key: RowKey, changes: Changes) -> None:
        """The account of stored row ``key`` leaves the copy (deleted, or no longer readable)."""
        where = self._index_of.pop(key, None)
        gone = self.accounts.pop(where, None) if where is not None else None
        if gone is not None:
            changes.gone.append(gone.device_id)
