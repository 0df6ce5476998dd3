"""RowVersions on the real PostgreSQL: a refresh reads only the rows written since the copy was built,
whoever wrote them, including a transaction that began before the last refresh and committed after it;
and the row notices' payloads and the listener's coalescing of them."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from alarmhub_store import RegistryListener, RowDiff, RowVersions, notice_row, row_notice


async def _refresh(versions: RowVersions, conn: Any, copy: dict[tuple[str, ...], str]) -> tuple[set, set]:
    """Apply what changed to ``copy`` as a service does; the keys read and the keys dropped."""
    diff = await versions.diff(conn)
    read: set[tuple[str, ...]] = set()
    async for rows in versions.rows(conn, "line, account, name", diff):
        for r in rows:
            copy[(r["line"], r["account"])] = r["name"]
            read.add((r["line"], r["account"]))
    for key in diff.gone:
        copy.pop(key, None)
    versions.accept(diff)
    return read, set(diff.gone)


async def test_only_changed_rows_are_read_again(stack: Any) -> None:
    table = f"rv_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(stack.database_url)
    other = await asyncpg.connect(stack.database_url)
    try:
        await conn.execute(
            f"CREATE TABLE {table} (line text, account text, name text, PRIMARY KEY (line, account))"
        )
        await conn.executemany(
            f"INSERT INTO {table} VALUES ($1, $2, $3)", [("0", f"{i:04X}", f"site {i}") for i in range(250)]
        )
        versions, copy = RowVersions(table, ("line", "account"), chunk=100), {}
        read, gone = await _refresh(versions, conn, copy)
        assert len(read) == 250 and not gone and copy[("0", "0007")] == "site 7"

        assert await _refresh(versions, conn, copy) == (set(), set())  # nothing written: nothing read

        # a write that leaves the values as they were is still a new version; a delete is gone
        await conn.execute(f"UPDATE {table} SET name = name WHERE account = '0001'")
        await conn.execute(f"UPDATE {table} SET name = 'moved' WHERE account = '0002'")
        await conn.execute(f"DELETE FROM {table} WHERE account = '0003'")
        await conn.execute(f"INSERT INTO {table} VALUES ('1', '0003', 'new')")
        read, gone = await _refresh(versions, conn, copy)
        assert read == {("0", "0001"), ("0", "0002"), ("1", "0003")}
        assert gone == {("0", "0003")}
        assert copy[("0", "0002")] == "moved" and ("0", "0003") not in copy and len(copy) == 250

        # a transaction open across a refresh: its write is seen by the refresh after its commit
        tx = other.transaction()
        await tx.start()
        await other.execute(f"UPDATE {table} SET name = 'late' WHERE account = '0004'")
        assert await _refresh(versions, conn, copy) == (set(), set())
        await tx.commit()
        assert await _refresh(versions, conn, copy) == ({("0", "0004")}, set())
        assert copy[("0", "0004")] == "late"

        # a row deleted between the version scan and the row read moves to gone
        await conn.execute(f"UPDATE {table} SET name = 'x' WHERE account = '0005'")
        diff = await versions.diff(conn)
        assert diff.changed == [("0", "0005")]
        await conn.execute(f"DELETE FROM {table} WHERE account = '0005'")
        chunks = [rows async for rows in versions.rows(conn, "name", diff)]
        assert chunks == [[]] and diff.gone == [("0", "0005")] and ("0", "0005") not in diff.versions
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.close()
        await other.close()


class _Calls:
    """The real connection, with the names of the methods called on it."""

    def __init__(self, conn: Any) -> None:
        self.conn, self.calls = conn, []

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        return getattr(self.conn, name)


async def test_a_few_rows_are_asked_for_by_key_and_a_first_load_streams_the_table(stack: Any) -> None:
    table = f"rv_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(stack.database_url)
    try:
        await conn.execute(f"CREATE TABLE {table} (id text PRIMARY KEY, name text)")
        await conn.executemany(f"INSERT INTO {table} VALUES ($1, $2)", [(str(i), "n") for i in range(30)])
        versions = RowVersions(table, ("id",), chunk=10)
        first = await versions.diff(conn)
        spy = _Calls(conn)
        assert sum([len(rows) async for rows in versions.rows(spy, "name", first)]) == 30
        assert "cursor" in spy.calls and "fetch" not in spy.calls  # 30 of 30 changed: one pass over the table
        versions.accept(first)

        one = RowDiff(changed=[("7",)])  # a notice naming one row, as the services re-read it
        spy = _Calls(conn)
        assert [len(rows) async for rows in versions.rows(spy, "name", one)] == [1]
        assert spy.calls == ["fetch"] and set(one.versions) == {("7",)}
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.close()


def test_row_notices_name_one_row_and_round_trip() -> None:
    assert row_notice("vehicles", ["013912345678"]) == "vehicles:013912345678"
    assert notice_row("vehicles:013912345678") == ("vehicles", ("013912345678",))
    for key in (["0", "1234"], ["L1", "a:b"], ["[odd"]):
        assert notice_row(row_notice("accounts", key)) == ("accounts", tuple(key))
    assert notice_row("accounts") == ("accounts", None)
    assert notice_row('accounts:["0", 1]') == ("accounts", None)  # not a key of text: the whole table
    assert notice_row("accounts:[broken") == ("accounts", None)


def test_many_row_notices_of_one_table_become_one_refresh() -> None:
    async def on_change(_: str | None) -> None:
        return None

    listener = RegistryListener("postgresql://unused", on_change, tables={"accounts", "vehicles"}, max_rows=3)
    few = {row_notice("accounts", ["0", str(i)]) for i in range(3)}
    assert listener._coalesce(few | {"cameras", "cameras:7"}) == sorted(few)  # cameras: not served
    many = {row_notice("accounts", ["0", str(i)]) for i in range(4)}
    assert listener._coalesce(many | {"vehicles:1"}) == ["accounts", "vehicles:1"]
    assert listener._coalesce(few | {"accounts"}) == ["accounts"]  # the table stands for its rows
