"""alarmhub-admin against the real test PostgreSQL and broker: init, units import with history, registries."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import stat
import sys
from pathlib import Path

import asyncpg
import pytest
from alarmhub_admin import imports
from alarmhub_devstack.testing import new_prefix
from argon2 import PasswordHasher

DATA = Path(__file__).parent / "data"
CLEAN = DATA / "mini-city-gcj02.geojson"
ERRORS = DATA / "mini-city-errors-gcj02.geojson"
PASSWORD = "correct horse battery"


def _env(stack, db: str, **extra: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        "KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
        "REDIS_URL": stack.redis_url,
        "DATABASE_URL": db,
        "ALARMHUB_TOPIC_PREFIX": new_prefix(),
        **extra,
    }


class _Run:
    """The CLI's outcome, as subprocess.run would give it (the tool runs in this process: a new Python per
    call cost ~4 s each on the shared box)."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def _admin(env: dict[str, str], *args: str, stdin: str | None = None) -> _Run:
    from alarmhub_admin.__main__ import main

    saved = {k: v for k, v in os.environ.items() if k.startswith("ALARMHUB_") or k in env}
    out, err = io.StringIO(), io.StringIO()
    for k in saved:
        os.environ.pop(k, None)
    os.environ.update(env)
    old = sys.stdout, sys.stderr, sys.stdin
    sys.stdout, sys.stderr, sys.stdin = out, err, io.StringIO(stdin or "")
    try:
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if isinstance(exc.code, str):
                err.write(exc.code)
    finally:
        sys.stdout, sys.stderr, sys.stdin = old
        for k in env:
            os.environ.pop(k, None)
        os.environ.update(saved)
    return _Run(code, out.getvalue(), err.getvalue())


async def _aadmin(env: dict[str, str], *args: str, stdin: str | None = None) -> _Run:
    """:func:`_admin` from an async test: in a thread, where the CLI's asyncio.run has no loop in its way."""
    return await asyncio.to_thread(_admin, env, *args, stdin=stdin)


@pytest.fixture
def initialised(stack, empty_db: str, tmp_path: Path) -> tuple[dict[str, str], str]:  # type: ignore[no-untyped-def]
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    env = _env(stack, empty_db, ALARMHUB_CITY_ID="mc", ALARMHUB_CITY_NAME="示范市")
    r = _admin(env, "init", "--password-file", str(pw))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "city supervisor: admin created" in r.stdout
    assert "topics: 6 created" in r.stdout
    return env, empty_db


async def test_init_is_idempotent_and_never_takes_a_password_argument(
    initialised: tuple[dict[str, str], str], tmp_path: Path
) -> None:
    env, db = initialised
    again = await _aadmin(env, "init")  # no password needed: the supervisor exists
    assert again.returncode == 0, again.stderr
    assert (
        "city supervisor: admin present" in again.stdout and "topics: 0 created, all present" in again.stdout
    )
    assert (await _aadmin(env, "init", "--password", "x" * 12)).returncode == 2  # argparse: no such option
    conn = await asyncpg.connect(db)
    try:
        row = await conn.fetchrow("SELECT * FROM people WHERE user_name = 'admin'")
        assert row["role"] == "supervisor" and row["unit"] == "mc"
        assert PasswordHasher().verify(row["password_hash"], PASSWORD)
    finally:
        await conn.close()


async def test_init_refuses_a_short_password_and_no_terminal(stack, empty_db: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = _env(stack, empty_db, ALARMHUB_CITY_NAME="示范市")
    short = tmp_path / "pw"
    short.write_text("short\n")
    r = await _aadmin(env, "init", "--password-file", str(short))
    assert r.returncode != 0 and "at least 12 characters" in r.stdout + r.stderr
    r = await _aadmin(env, "init", stdin="")
    assert r.returncode != 0 and "--password-file" in r.stdout + r.stderr


async def test_units_import_diff_and_history(initialised: tuple[dict[str, str], str], tmp_path: Path) -> None:
    env, db = initialised
    bad = await _aadmin(
        env, "import", "units", str(ERRORS), "--crs", "gcj02", "--map", str(tmp_path / "e.png")
    )
    assert bad.returncode == 1 and "nothing written" in bad.stdout
    assert (tmp_path / "e.png").exists()
    r = await _aadmin(env, "import", "units", str(CLEAN), "--crs", "gcj02")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 added, 1 changed, 0 retired, 0 unchanged" not in r.stdout  # the city existed: changed
    assert "8 added, 1 changed, 0 retired" in r.stdout
    again = await _aadmin(env, "import", "units", str(CLEAN), "--crs", "gcj02")
    assert "nothing written" in again.stdout and "0 added, 0 changed, 0 retired, 9 unchanged" in again.stdout
    # move F1's site, drop station L2 (its district keeps the ground: a gap warning)
    doc = json.loads(CLEAN.read_text("utf-8"))
    doc["features"] = [f for f in doc["features"] if f["properties"]["id"] != "L2"]
    for f in doc["features"]:
        if f["properties"]["id"] == "F1-W1":
            f["properties"]["name"] = "福田第1派出所新社区警务室"
    p = tmp_path / "v2.geojson"
    p.write_text(json.dumps(doc, ensure_ascii=False))
    r = await _aadmin(env, "import", "units", str(p), "--crs", "gcj02")
    assert r.returncode == 0, r.stdout
    assert "WARNING gap" in r.stdout and "0 added, 1 changed, 1 retired, 7 unchanged" in r.stdout
    conn = await asyncpg.connect(db)
    try:
        assert await conn.fetchval("SELECT count(*) FROM units WHERE id = 'L2'") == 0
        hist = await conn.fetch(
            "SELECT import_id, unit_id, change, before->>'name' AS before, after->>'name' AS after"
            " FROM unit_history WHERE unit_id IN ('L2', 'F1-W1') ORDER BY import_id, unit_id"
        )
        assert [(h["unit_id"], h["change"]) for h in hist] == [
            ("F1-W1", "added"),
            ("L2", "added"),
            ("F1-W1", "changed"),
            ("L2", "retired"),
        ]
        assert hist[2]["before"] == "福田第1派出所示范社区警务室" and hist[3]["before"] == "罗湖第2派出所"
        assert await conn.fetchval("SELECT count(*) FROM unit_imports") == 2
        with pytest.raises(asyncpg.RaiseError):
            await conn.execute("DELETE FROM unit_history")
    finally:
        await conn.close()


async def test_registries_import_report_and_export_without_secrets(
    initialised: tuple[dict[str, str], str], tmp_path: Path
) -> None:
    env, db = initialised
    assert (await _aadmin(env, "import", "units", str(CLEAN), "--crs", "gcj02")).returncode == 0
    veh = tmp_path / "vehicles.csv"
    veh.write_text(
        "device_id,protocol,plate,auth_code,armed\n"
        "013800138000,jt808,粤B12345,SECRETAUTH,yes\n"
        ",jt808,粤B00000,,no\n"
        "013800138001,jt808,粤B12346,SECRET2,no\n"
    )
    r = await _aadmin(env, "import", "vehicles", str(veh))
    assert r.returncode == 1 and "line 3:" in r.stdout and "nothing written" in r.stdout
    assert (tmp_path / "vehicles.csv.errors.csv").read_text().startswith("line,error\n3,")
    r = await _aadmin(env, "import", "vehicles", str(veh), "--skip-bad-rows")
    assert r.returncode == 0 and "imported 2 vehicles" in r.stdout
    out = await _aadmin(env, "export", "vehicles")
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [x["device_id"] for x in rows] == ["013800138000", "013800138001"]
    assert "auth_code" not in rows[0] and "SECRET" not in out.stdout and rows[0]["armed"] == "true"

    people = tmp_path / "people.csv"
    people.write_text(
        "user,display_name,role,unit\nzhang.wei,张伟,dispatcher,F1\nli.na,李娜,supervisor,440304\n"
    )
    r = await _aadmin(env, "import", "people", str(people), "--passwords-out", str(tmp_path / "pw.csv"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert stat.S_IMODE((tmp_path / "pw.csv").stat().st_mode) == 0o600
    issued = dict(list(csv.reader((tmp_path / "pw.csv").open()))[1:])
    again = await _aadmin(env, "import", "people", str(people))  # a re-import resets nobody's password
    assert again.returncode == 0 and "initial passwords" not in again.stdout
    conn = await asyncpg.connect(db)
    try:
        h = await conn.fetchval("SELECT password_hash FROM people WHERE user_name = 'zhang.wei'")
        assert PasswordHasher().verify(h, issued["zhang.wei"])
    finally:
        await conn.close()
    exported = (await _aadmin(env, "export", "people")).stdout
    assert "argon2" not in exported and "zhang.wei,张伟,dispatcher,F1" in exported

    ext = tmp_path / "ext.csv"
    ext.write_text(
        "id,name,kind,handover,phone\nfire-mc,示范市消防救援支队（119）,fire,fire,119\n"
        "med-mc,示范市急救中心（120）,medical,medical,120\nbad,坏,rescue,earthquake,\n"
    )
    r = await _aadmin(env, "import", "external-units", str(ext))
    assert r.returncode == 1 and "unknown alarm kinds in handover: earthquake" in r.stdout
    assert (await _aadmin(env, "import", "external-units", str(ext), "--skip-bad-rows")).returncode == 0
    units = json.loads((await _aadmin(env, "export", "units")).stdout)
    assert {f["properties"]["id"] for f in units["features"]} == {
        "mc",
        "440303",
        "440304",
        "F1",
        "F2",
        "F3",
        "L1",
        "L2",
        "F1-W1",
    }
    assert "fire-mc" in (await _aadmin(env, "export", "external-units")).stdout


async def test_tree_hands_over_to_imported_external_units(initialised: tuple[dict[str, str], str]) -> None:
    from alarmhub_dispatch.store import Store
    from alarmhub_dispatch.units import UnitTree

    _, db = initialised
    conn = await imports.connect(db)
    try:
        await conn.execute(
            "INSERT INTO units (id, name, tier, kind, properties) VALUES"
            " ('sea-rescue', '海上搜救', 1, 'rescue', '{\"handover\": [\"vehicle_sos\", \"panic\"]}')"
        )
    finally:
        await conn.close()
    store = Store(db)
    await store.start()
    try:
        tree = UnitTree(await store.load_units())
    finally:
        await store.stop()
    assert tree.service_kinds("sea-rescue") == ("vehicle_sos", "panic")
    assert tree.service_kinds("mc") is None and tree.is_root("mc")


async def test_an_export_imported_again_changes_nothing_and_bad_rows_are_one_line(
    initialised: tuple[dict[str, str], str], tmp_path: Path
) -> None:
    """Every column the import reads comes back in the export (units, models, stream URLs, integrators:
    re-importing an export once cleared them), without a secret; a bad row's reason is one line that
    never shows a secret's value."""
    env, db = initialised
    assert (await _aadmin(env, "import", "units", str(CLEAN), "--crs", "gcj02")).returncode == 0
    files = {
        "accounts": "line,account,company,key_hex,encryption_required,site_name,lat,lon,unit\n"
        "1,1234,安保公司甲,00112233445566778899AABBCCDDEEFF,yes,福田某银行,22.54,114.05,F2\n"
        "1,ZZZZ,安保公司甲,,no,坏行,22.54,114.05,F2\n",
        "vehicles": "device_id,protocol,plate,auth_code,armed,model,unit\n"
        "013800138000,jt808,粤B12345,SECRETAUTH,yes,JT808,L1\n",
        "cameras": "id,name,lat,lon,ip,category,onvif_url,stream_url,username,password,unit,integrator\n"
        "cam1,福田口,22.54,114.05,10.0.0.5,main_road,http://u:SECRETCAM@10.0.0.5/onvif,rtsp://10.0.0.5/s1,"
        "admin,SECRETCAM,F2,hik\n",
        "platforms": "user_id,password,gnss_center_id,name\n20001,SECRETPLATFORM9,3001,某运输平台\n",
    }
    for kind, text in files.items():
        (tmp_path / f"{kind}.csv").write_text(text)
    bad = await _aadmin(env, "import", "accounts", str(tmp_path / "accounts.csv"))
    assert "line 3: account: String should match pattern '^[0-9A-Fa-f]+$' (got 'ZZZZ')\n" in bad.stdout
    assert "errors.pydantic.dev" not in bad.stdout
    plat = await _aadmin(env, "import", "platforms", str(tmp_path / "platforms.csv"))
    assert plat.returncode == 1 and "line 2: password: " in plat.stdout
    assert "SECRET" not in plat.stdout + (tmp_path / "platforms.csv.errors.csv").read_text()
    for kind in ("accounts", "vehicles", "cameras"):
        r = await _aadmin(env, "import", kind, str(tmp_path / f"{kind}.csv"), "--skip-bad-rows")
        assert r.returncode == 0, r.stdout + r.stderr
    queries = (
        "SELECT line, account, key_hex, site_name, lat, lon, unit FROM accounts",
        "SELECT device_id, auth_code, armed, model, unit FROM vehicles",
        "SELECT id, password, stream_url, username, integrator, unit FROM cameras",
    )
    conn = await asyncpg.connect(db)
    try:
        before = [[tuple(r) for r in await conn.fetch(q)] for q in queries]
        for kind in ("accounts", "vehicles", "cameras"):
            out = await _aadmin(env, "export", kind)
            assert "SECRET" not in out.stdout and "001122" not in out.stdout, out.stdout
            (tmp_path / f"{kind}.export.csv").write_text(out.stdout)
            again = await _aadmin(env, "import", kind, str(tmp_path / f"{kind}.export.csv"))
            assert again.returncode == 0, again.stdout
        assert [[tuple(r) for r in await conn.fetch(q)] for q in queries] == before
        assert before[0][0][-1] == "F2" and before[1][0][-2:] == ("JT808", "L1")
        assert await conn.fetchval("SELECT onvif_url FROM cameras") == "http://10.0.0.5/onvif"
    finally:
        await conn.close()


async def test_a_file_naming_another_city_is_refused_in_words(stack, empty_db: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """init made the city from ALARMHUB_CITY_ID; a unit file whose city has another id would retire it
    (and strand the supervisor): the report says which ids differ instead of only naming the people."""
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    env = _env(stack, empty_db, ALARMHUB_CITY_ID="440300", ALARMHUB_CITY_NAME="示范市")
    assert (await _aadmin(env, "init", "--password-file", str(pw))).returncode == 0
    r = await _aadmin(env, "import", "units", str(CLEAN), "--crs", "gcj02")
    assert r.returncode == 1
    assert "the file's city is 'mc' but the table's is '440300'" in r.stdout, r.stdout
