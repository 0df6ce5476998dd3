"""`make backup-drill`: pgBackRest full backup and point-in-time recovery of alarmhub's PostgreSQL, measured.

Runs on a PRIVATE PostgreSQL 15 cluster of its own (Debian's postgresql-15 binaries; pgBackRest 2.45
supports up to 15), initdb'd into a temporary directory on a free port — never the shared server:

1. initdb, WAL archiving through pgBackRest (``archive_timeout`` ARCHIVE_TIMEOUT_S), alarmhub's schema
   (alembic migrations), ``stanza-create``, ``check``, a full backup;
2. writes incidents and audit rows, one transaction each, noting each row's commit time; a recovery
   target time is taken midway; then the server is killed (``pg_ctl -m immediate``: a crash);
3. restore to the target time into a fresh data directory: every incident and audit row committed up to
   the target is there, none after it; RTO = restore start → verified;
4. restore to the end of the archive into another fresh directory (the disaster case: the primary's
   disk is gone): RPO = last committed row's time − last recovered row's time.

Prints the figures as JSON on the last line. Exit status 0 only if every check passed.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

PG_BIN = Path(os.environ.get("ALARMHUB_DRILL_PG_BIN", "/usr/lib/postgresql/15/bin"))
ARCHIVE_TIMEOUT_S = 5
WRITE_S = 12.0
STANZA = "drill"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Drill:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="alarmhub-backup-drill-"))
        self.root.chmod(0o755)
        self.user = pwd.getpwnam("alarmhub-pg") if os.geteuid() == 0 else None
        if self.user is not None:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        self.conf = self.root / "pgbackrest.conf"
        self.running: list[Path] = []

    def run(self, *argv: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        extra: dict[str, Any] = {}
        if self.user is not None:
            extra = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        return subprocess.run(
            [str(a) for a in argv], check=check, capture_output=True, text=True, cwd=self.root, **extra
        )

    def backrest(self, *args: str) -> None:
        self.run("pgbackrest", f"--config={self.conf}", f"--stanza={STANZA}", *args)

    def start(self, data: Path, port: int, *options: str) -> None:
        opts = " ".join([f"-c port={port}", *options])
        self.run(PG_BIN / "pg_ctl", "-D", data, "-l", data.parent / f"{data.name}.log", "-w", "-t", "120",
                 "-o", opts, "start")  # fmt: skip
        self.running.append(data)

    def stop(self, data: Path, mode: str = "fast") -> None:
        self.run(PG_BIN / "pg_ctl", "-D", data, "-m", mode, "-w", "stop", check=False)
        if data in self.running:
            self.running.remove(data)

    def cleanup(self) -> None:
        for data in list(self.running):
            self.stop(data, "immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def setup(self, port: int) -> Path:
        data = self.root / "primary"
        self.run(PG_BIN / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        with (data / "postgresql.conf").open("a") as f:
            f.write(
                f"listen_addresses = '127.0.0.1'\nunix_socket_directories = '{self.root}'\n"
                "wal_level = replica\narchive_mode = on\n"
                f"archive_command = 'pgbackrest --config={self.conf} --stanza={STANZA} archive-push %p'\n"
                f"archive_timeout = {ARCHIVE_TIMEOUT_S}\n"
            )
        self.conf.write_text(
            "[global]\n"
            f"repo1-path={self.root / 'repo'}\nrepo1-retention-full=2\n"
            f"log-path={self.root / 'log'}\nlock-path={self.root / 'lock'}\nspool-path={self.root / 'spool'}\n"
            "log-level-console=warn\nstart-fast=y\n\n"
            f"[{STANZA}]\npg1-path={data}\npg1-port={port}\npg1-socket-path={self.root}\npg1-user=postgres\n"
        )
        self.run(
            "mkdir", "-p", self.root / "log", self.root / "lock", self.root / "spool", self.root / "repo"
        )
        if self.user is not None:
            os.chown(self.conf, self.user.pw_uid, self.user.pw_gid)
        self.start(data, port)
        return data


async def write_rows(url: str, seconds: float) -> tuple[list[tuple[str, int, float]], datetime]:
    """Incidents and audit rows, one transaction each: [(incident id, audit id, commit time)], target."""
    conn = await asyncpg.connect(url)
    rows: list[tuple[str, int, float]] = []
    target: datetime | None = None
    t0 = time.time()
    try:
        while time.time() - t0 < seconds:
            iid = str(uuid.uuid4())
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO incidents (id, status, decision, priority, score, kind, district, "
                    "opened_at, updated_at) VALUES ($1, 'opened', 'dispatch', 2, 80, 'burglary', 'drill', "
                    "now(), now())",
                    iid,
                )
                aid = await conn.fetchval(
                    "INSERT INTO audit_log (user_name, kind, method, path, detail) VALUES "
                    "('drill', 'action', 'POST', '/api/v1/incidents', $1::jsonb) RETURNING id",
                    json.dumps({"incident": iid}),
                )
            rows.append((iid, int(aid), time.time()))
            if target is None and time.time() - t0 >= seconds / 2:
                await asyncio.sleep(0.3)
                target = await conn.fetchval("SELECT clock_timestamp()")
                await asyncio.sleep(0.3)
            await asyncio.sleep(0.01)
    finally:
        await conn.close()
    assert target is not None
    return rows, target


async def recovered(url: str) -> tuple[set[str], set[int]]:
    deadline = time.monotonic() + 120
    while True:
        try:
            conn = await asyncpg.connect(url)
            break
        except (OSError, asyncpg.PostgresError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
    try:
        while await conn.fetchval("SELECT pg_is_in_recovery()"):  # replaying until the target, then promoted
            if time.monotonic() > deadline:
                raise TimeoutError("recovery did not finish")
            await asyncio.sleep(0.2)
        incidents = {str(r[0]) for r in await conn.fetch("SELECT id FROM incidents WHERE district = 'drill'")}
        audit = {int(r[0]) for r in await conn.fetch("SELECT id FROM audit_log WHERE user_name = 'drill'")}
    finally:
        await conn.close()
    return incidents, audit


async def main() -> int:
    from alarmhub_store import migrate_sync

    if not (PG_BIN / "initdb").exists() or shutil.which("pgbackrest") is None:
        print(
            "backup-drill: needs postgresql-15 and pgbackrest (bash scripts/install-system.sh)",
            file=sys.stderr,
        )
        return 2
    drill = Drill()
    ok = True
    try:
        port = free_port()
        primary = drill.setup(port)
        admin = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        conn = await asyncpg.connect(admin)
        await conn.execute("CREATE DATABASE alarmhub")
        await conn.close()
        url = f"postgresql://postgres@127.0.0.1:{port}/alarmhub"
        migrate_sync(url)
        drill.backrest("stanza-create")
        drill.backrest("check")
        t = time.monotonic()
        drill.backrest("backup", "--type=full")
        backup_s = time.monotonic() - t
        rows, target = await write_rows(url, WRITE_S)
        last_commit = rows[-1][2]
        drill.stop(primary, "immediate")  # the crash
        crashed_at = time.time()

        # point in time: everything committed by the target, nothing after
        pitr = drill.root / "pitr"
        port_a = free_port()
        t = time.monotonic()
        drill.backrest("restore", f"--pg1-path={pitr}", "--type=time", f"--target={target.strftime('%Y-%m-%d %H:%M:%S.%f')[:-3]}+00",
                       "--target-action=promote")  # fmt: skip
        drill.start(pitr, port_a, "-c archive_mode=off")
        inc, aud = await recovered(f"postgresql://postgres@127.0.0.1:{port_a}/alarmhub")
        rto_pitr = time.monotonic() - t
        before = [r for r in rows if r[2] <= target.timestamp()]
        after = [r for r in rows if r[2] > target.timestamp() + 0.25]
        want_inc, want_aud = {r[0] for r in before}, {r[1] for r in before}
        missing = len(want_inc - inc) + len(want_aud - aud)
        extra = len({r[0] for r in after} & inc) + len({r[1] for r in after} & aud)
        ok &= missing == 0 and extra == 0 and len(before) > 0
        print(f"pitr: target {target.isoformat()}: {len(before)} incidents + audit rows expected, "
              f"{len(inc)} incidents / {len(aud)} audit rows restored, missing {missing}, after-target {extra}, "
              f"RTO {rto_pitr:.1f} s")  # fmt: skip
        drill.stop(pitr)

        # the disaster: the primary's disk is gone, recover from the archive as far as it goes
        latest = drill.root / "latest"
        port_b = free_port()
        t = time.monotonic()
        drill.backrest("restore", f"--pg1-path={latest}", "--type=default")
        drill.start(latest, port_b, "-c archive_mode=off")
        inc_b, _aud_b = await recovered(f"postgresql://postgres@127.0.0.1:{port_b}/alarmhub")
        rto_latest = time.monotonic() - t
        got = [r for r in rows if r[0] in inc_b]
        prefix_ok = all(r[0] in inc_b for r in rows[: len(got)])  # recovered rows are a prefix of commits
        last_recovered = got[-1][2] if got else rows[0][2]
        rpo = last_commit - last_recovered
        ok &= prefix_ok and len(got) >= len(before)
        print(f"latest: {len(got)} of {len(rows)} committed incidents recovered (a prefix: {prefix_ok}), "
              f"RPO {rpo:.1f} s (archive_timeout {ARCHIVE_TIMEOUT_S} s), RTO {rto_latest:.1f} s")  # fmt: skip
        drill.stop(latest)
        figures = {
            "ok": bool(ok),
            "rows_written": len(rows),
            "full_backup_s": round(backup_s, 1),
            "pitr_rows_expected": len(before),
            "pitr_missing": missing,
            "pitr_after_target": extra,
            "rto_pitr_s": round(rto_pitr, 1),
            "rpo_s": round(rpo, 1),
            "rto_latest_s": round(rto_latest, 1),
            "archive_timeout_s": ARCHIVE_TIMEOUT_S,
            "crash_to_end_s": round(time.time() - crashed_at, 1),
        }
        print(json.dumps(figures))
    except subprocess.CalledProcessError as exc:
        print(f"backup-drill: {exc.cmd} failed:\n{exc.stdout}\n{exc.stderr}", file=sys.stderr)
        ok = False
    finally:
        drill.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
