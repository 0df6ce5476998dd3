"""``import units`` and ``import <registry>`` / ``export <registry>``: files ↔ PostgreSQL."""

from __future__ import annotations

import asyncio
import csv
import getpass
import hashlib
import json
import os
from pathlib import Path
from typing import Any, TextIO

import asyncpg
from pydantic import ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from . import registries as reg
from .overview import draw_overview
from .sources import read_units
from .unitdb import Diff, apply_diff, diff_units, load_current, unit_row
from .validate import DEFAULT_TOLERANCE_M2, validate

__all__ = ["connect", "export_kind", "export_units", "import_kind", "import_units"]

BATCH = 1000
_SECRET_WORDS = ("password", "key", "auth", "secret", "token", "m1", "ia1", "ic1")


async def _codecs(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await _codecs(conn)
    return conn


def _operator() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


async def import_units(
    dsn: str,
    path: Path,
    *,
    crs: str | None,
    map_png: Path | None,
    tolerance_m2: float = DEFAULT_TOLERANCE_M2,
    dry_run: bool = False,
    force: bool = False,
    out: TextIO,
) -> int:
    """Read, validate, report, draw; write the diff unless an error (or ``dry_run``) stops it. Exit code."""
    units, unreadable = read_units(path, crs)
    report = validate(units, unreadable, tolerance_m2)
    print(f"validation of {path.name}: {report.text()}", file=out)
    if map_png is not None and any(u.geometry is not None for u in units):
        draw_overview(report, map_png)
        print(f"overview map: {map_png}", file=out)
    if report.errors:
        print("nothing written: fix the errors above and import again", file=out)
        return 1
    source = path.name
    rows = [unit_row(u) for u in units]  # the file is named in unit_imports, not in every unit
    conn = await connect(dsn)
    try:
        diff = diff_units(await load_current(conn), rows)
        print(f"changes: {diff.text()}", file=out)
        if _other_city(diff, out) and not force:
            return 1
        retired = [r["id"] for r in diff.retired]
        if retired:
            stranded = await conn.fetch(
                "SELECT user_name, unit FROM people WHERE active AND unit = ANY($1::text[]) ORDER BY user_name",
                retired,
            )
            if stranded:
                names = ", ".join(f"{r['user_name']} ({r['unit']})" for r in stranded[:20])
                print(f"people at units this import retires: {names}", file=out)
                if not force:
                    print("nothing written: move those people first, or give --force", file=out)
                    return 1
        if dry_run:
            print("dry run: nothing written", file=out)
            return 0
        sha = hashlib.sha256(await asyncio.to_thread(path.read_bytes)).hexdigest()
        import_id = await apply_diff(conn, diff, by=_operator(), source=source, sha256=sha)
        if import_id is None:
            print("the table already holds this tree: nothing written", file=out)
        else:
            await conn.execute("SELECT pg_notify($1, $2)", reg.REGISTRY_CHANNEL, "units")
            print(
                f"written as import {import_id}; restart dispatch (one replica at a time) to route with it",
                file=out,
            )
        return 0
    finally:
        await conn.close()


def _other_city(diff: Diff, out: TextIO) -> bool:
    """The file's city has another id than the table's (``init`` made it from ALARMHUB_CITY_ID): the import
    would retire the city everyone hangs from and add a second one. Said in words; True when so."""
    old = [r for r in diff.retired if r["tier"] == 1]
    new = [r for r in diff.added if r["tier"] == 1]
    if not (old and new):
        return False
    print(
        f"the file's city is {new[0]['id']!r} but the table's is {old[0]['id']!r} (made by `init` from "
        f"ALARMHUB_CITY_ID): give the city in the file the id {old[0]['id']!r}; nothing written "
        "(--force replaces the city, its people then belong to no unit)",
        file=out,
    )
    return True


def _progress(out: TextIO) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=None,
        transient=False,
        disable=not out.isatty(),
    )


async def import_kind(
    dsn: str, kind: str, path: Path, *, skip_bad_rows: bool, passwords_out: Path | None, out: TextIO
) -> int:
    rk = reg.IMPORTS[kind]
    text = await asyncio.to_thread(path.read_text, "utf-8-sig")
    records = reg.parse_rows(text)
    rows: list[dict[str, Any]] = []
    errors: list[tuple[int, str]] = []
    generated: list[tuple[str, str]] = []
    with _progress(out) as progress:
        task = progress.add_task(f"checking {path.name}", total=len(records))
        for line, rec in records:
            try:
                rows.append(rk.to_row(rec))
            except (KeyError, ValueError, TypeError) as exc:
                errors.append((line, _row_error(exc)))
            progress.advance(task)
    for line, msg in errors[:200]:
        print(f"line {line}: {msg}", file=out)
    if len(errors) > 200:
        print(f"… {len(errors) - 200} more bad rows", file=out)
    if errors:
        report = path.with_name(path.name + ".errors.csv")
        with report.open("w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["line", "error"])
            w.writerows(errors)
        print(f"{len(errors)} bad rows of {len(records)} (listed in {report})", file=out)
        if not skip_bad_rows:
            print("nothing written: fix those rows, or give --skip-bad-rows to import the others", file=out)
            return 1
    if kind == "people" and generated and passwords_out is None:
        passwords_out = path.with_name(path.name + ".passwords.csv")
    conn = await connect(dsn)
    try:
        if kind == "people":
            units = {r["id"] for r in await conn.fetch("SELECT id FROM units")}
            unknown = sorted({r["unit"] for r in rows if r["unit"] and r["unit"] not in units})
            if unknown:
                print(f"nothing written: unknown units {', '.join(unknown)} (import units first)", file=out)
                return 1
            existing = {r["user_name"] for r in await conn.fetch("SELECT user_name FROM people")}
            rows, generated = _people_passwords(rows, existing)
        with _progress(out) as progress:
            task = progress.add_task(f"writing {kind}", total=len(rows))
            for start in range(0, len(rows), BATCH):
                chunk = rows[start : start + BATCH]
                await _upsert(conn, rk, chunk)
                progress.advance(task, len(chunk))
    finally:
        await conn.close()
    if generated and passwords_out is not None:
        fd = os.open(passwords_out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["user", "initial_password"])
            w.writerows(generated)
        print(
            f"initial passwords of {len(generated)} people: {passwords_out} (mode 600; hand out, then delete)",
            file=out,
        )
    print(f"imported {len(rows)} {kind} from {path.name}", file=out)
    return 0


def _row_error(exc: Exception) -> str:
    """A bad row's reason on one line: ``column: what is wrong (got 'value')`` per problem, not pydantic's
    multi-line dump with its documentation links. The value is shown except for secrets and URLs (which
    may carry credentials): the report goes to the terminal and to FILE.errors.csv."""
    if isinstance(exc, KeyError):
        return f"missing column {exc}"
    if isinstance(exc, ValidationError):
        parts = []
        for e in exc.errors()[:20]:
            where = ".".join(str(p) for p in e["loc"]) or "row"
            got = e.get("input")
            field = str(e["loc"][-1]) if e["loc"] else ""
            secret = field.endswith("_url") or any(w in field for w in _SECRET_WORDS)
            shown = (
                f" (got {got!r})"
                if isinstance(got, str | int | float) and e["type"] != "missing" and not secret
                else ""
            )
            parts.append(f"{where}: {e['msg'].removeprefix('Value error, ')}{shown}")
        return "; ".join(parts)
    return str(exc)


def _people_passwords(
    rows: list[dict[str, Any]], existing: set[str]
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Hash given passwords; a new person without one gets a generated one; an existing person without
    one keeps theirs (re-importing the people file never resets anybody's password)."""
    out, generated = [], []
    for r in rows:
        row = dict(r)
        pw = row.pop("password")
        if pw is None and row["user_name"] not in existing:
            pw = reg.generated_password()
            generated.append((row["user_name"], pw))
        if pw is not None:
            row["password_hash"] = reg.hash_password(pw)
        row["created_by"] = "alarmhub-admin import"
        out.append(row)
    return out, generated


async def _upsert(conn: asyncpg.Connection, rk: reg.RowKind, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    if rk.table == "people":  # existing people without a new password: an UPDATE that keeps the hash
        keep = [r for r in rows if "password_hash" not in r]
        if keep:
            await conn.executemany(
                "UPDATE people SET display_name=$2, role=$3, unit=$4, company=$5, scope=$6 WHERE user_name=$1",
                [
                    (r["user_name"], r["display_name"], r["role"], r["unit"], r["company"], r["scope"])
                    for r in keep
                ],
            )
        rows = [r for r in rows if "password_hash" in r]
        if not rows:
            return
    await _upsert_rows(conn, rk, rows)


async def _upsert_rows(conn: asyncpg.Connection, rk: reg.RowKind, rows: list[dict[str, Any]]) -> None:
    cols = list(rows[0])
    sets = [f"{c}=EXCLUDED.{c}" for c in cols if c not in rk.key and c not in ("created_by",)]
    if rk.updated_at:
        sets.append("updated_at=now()")
    sql = (
        f"INSERT INTO {rk.table} ({', '.join(cols)}) VALUES ({', '.join(f'${i + 1}' for i in range(len(cols)))})"
        f" ON CONFLICT ({', '.join(rk.key)}) DO UPDATE SET {', '.join(sets)}"
    )
    async with conn.transaction():
        await conn.executemany(sql, [tuple(r[c] for c in cols) for r in rows])
        await conn.execute("SELECT pg_notify($1, $2)", reg.REGISTRY_CHANNEL, rk.table)


async def export_kind(dsn: str, kind: str, out: TextIO) -> int:
    conn = await connect(dsn)
    try:
        stmt = await conn.prepare(reg.export_sql(kind))
        cols = [a.name for a in stmt.get_attributes()]
        w = csv.writer(out)
        w.writerow(cols)
        n = 0
        async with conn.transaction():
            async for r in stmt.cursor():
                w.writerow([reg.cell(r[c]) for c in cols])
                n += 1
        return n
    finally:
        await conn.close()


async def export_units(dsn: str, out: TextIO) -> int:
    """The police unit tree as GeoJSON (WGS-84), in the shape ``import units`` reads."""
    conn = await connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT id, name, name_en, tier, parent_id, kind, geometry, properties FROM units"
            " WHERE NOT (parent_id IS NULL AND kind <> 'police') ORDER BY tier, id"
        )
    finally:
        await conn.close()
    levels = {1: "city", 2: "district", 3: "station", 4: "site"}
    feats = []
    for r in rows:
        props = {k: v for k, v in (r["properties"] or {}).items() if not isinstance(v, dict | list)}
        props.update(
            id=r["id"], name=r["name"], level=levels[r["tier"]], parent=r["parent_id"], kind=r["kind"]
        )
        if r["name_en"]:
            props["name_en"] = r["name_en"]
        feats.append({"type": "Feature", "properties": props, "geometry": r["geometry"]})
    json.dump({"type": "FeatureCollection", "features": feats}, out, ensure_ascii=False)
    out.write("\n")
    return len(feats)
