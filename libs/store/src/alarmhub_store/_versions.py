"""Keep an in-memory copy of a registry table current by re-reading only the rows that changed.

The ingest services hold a registry table in memory (DC-09 accounts, vehicles) and used to rebuild the
whole copy on every refresh timer and every change notice. At 6,000 accounts that rebuild blocked the
receiver's event loop for about 100 ms of CPU (217 ms of wall time on a busy host) every 30 s, and every
panel that connected meanwhile waited; a city's registry is far larger.

:class:`RowVersions` remembers, per key, the version of the row the copy was built from: PostgreSQL's
``xmin``, the transaction that wrote the row's current version. Every write gives a row a new ``xmin``,
whoever makes it (dispatch's API, an operator's ``psql``, a district copy's logical replication), and
nothing else changes it (freezing keeps the value), so equal versions mean the same row. A refresh reads
only the keys and versions (:meth:`RowVersions.diff`), then the full rows of the keys whose version
changed (:meth:`RowVersions.rows`); the keys no longer there are gone. Both steps work in chunks and
yield to the event loop between them, so a large table never holds the loop for long. Comparing each
row's version, rather than reading "rows changed since" a time or transaction mark, also catches a
transaction that began before the last refresh and committed after it.

Key columns must be ``text``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RowDiff", "RowVersions"]

Key = tuple[str, ...]


@dataclass(slots=True)
class RowDiff:
    """What changed since the versions :meth:`RowVersions.accept` last took: keys new or rewritten
    (``changed``) and keys deleted (``gone``); ``versions`` is every key's version now."""

    changed: list[Key] = field(default_factory=list)
    gone: list[Key] = field(default_factory=list)
    versions: dict[Key, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.changed or self.gone)


class RowVersions:
    """Per key of ``table``, the version (``xmin``) of the row the caller's copy holds."""

    def __init__(self, table: str, key: Sequence[str], *, chunk: int = 5000) -> None:
        self.table = table
        self.key = tuple(key)
        self.chunk = chunk
        self._seen: dict[Key, str] = {}
        self._keys = ", ".join(self.key)

    def __len__(self) -> int:
        return len(self._seen)

    async def diff(self, conn: Any) -> RowDiff:
        """Read every key's version, ``chunk`` rows at a time, and compare with the copy's."""
        seen, width, out = self._seen, len(self.key), RowDiff()
        versions, changed = out.versions, out.changed
        async for rows in self._stream(conn, f"SELECT {self._keys}, xmin::text FROM {self.table}"):
            for row in rows:
                key, version = tuple(row[:width]), row[width]
                versions[key] = version
                if seen.get(key) != version:
                    changed.append(key)
        out.gone = [k for k in seen if k not in versions]
        return out

    async def rows(self, conn: Any, columns: str, diff: RowDiff) -> AsyncIterator[list[Any]]:
        """The current rows of ``diff.changed`` (``columns``, the key columns, then the row's version), in
        chunks. ``diff`` takes each row's version as read here; a key deleted since :meth:`diff` is
        absent from the rows and moves to ``diff.gone``. When more than a chunk changed and most of the
        table (a first load), the table is read whole, else the changed keys are asked for."""
        width = len(self.key)
        select = f"SELECT {columns}, {self._keys}, xmin::text AS _version FROM {self.table}"
        wanted = set(diff.changed)
        if len(wanted) > self.chunk and len(wanted) * 2 > len(diff.versions):
            chunks = self._stream(conn, select)
        else:
            chunks = self._by_keys(conn, select, diff.changed)
        async for rows in chunks:
            found = []
            for row in rows:
                key = tuple(row[-1 - width : -1])
                if key in wanted:
                    wanted.discard(key)
                    diff.versions[key] = row[-1]
                    found.append(row)
            yield found
        for key in wanted:  # deleted since the scan
            diff.versions.pop(key, None)
            diff.gone.append(key)

    async def reread(self, conn: Any, columns: str, key: Key) -> Any | None:
        """One row read again on its own (a change notice named it): the row as :meth:`rows` gives it, its
        version noted; None, its version forgotten, when it no longer exists."""
        diff = RowDiff(changed=[key])
        found = [row async for rows in self.rows(conn, columns, diff) for row in rows]
        self.note(key, diff.versions.get(key))
        return found[0] if found else None

    async def _stream(self, conn: Any, sql: str) -> AsyncIterator[list[Any]]:
        """``sql``'s rows ``chunk`` at a time through a cursor, so that decoding them never holds the
        event loop for the whole table."""
        async with conn.transaction(readonly=True):
            cursor = await conn.cursor(sql)
            while rows := await cursor.fetch(self.chunk):
                yield rows
                await asyncio.sleep(0)

    async def _by_keys(self, conn: Any, select: str, keys: Sequence[Key]) -> AsyncIterator[list[Any]]:
        width = len(self.key)
        args = ", ".join(f"${i + 1}::text[]" for i in range(width))
        sql = f"{select} WHERE ({self._keys}) IN (SELECT * FROM unnest({args}))"
        for start in range(0, len(keys), self.chunk):
            part = keys[start : start + self.chunk]
            yield await conn.fetch(sql, *[[k[i] for k in part] for i in range(width)])

    def accept(self, diff: RowDiff) -> None:
        """The copy now holds ``diff``'s versions (call once it is applied; a failed refresh leaves the
        old versions, so the next one reads the same rows again)."""
        self._seen = diff.versions

    def note(self, key: Key, version: str | None) -> None:
        """One row re-read on its own (a change notice for one key): its version, or None if deleted."""
        if version is None:
            self._seen.pop(key, None)
        else:
            self._seen[key] = version
