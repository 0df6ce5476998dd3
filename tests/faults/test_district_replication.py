"""District copies through PostgreSQL logical replication with row filters (PostgreSQL 15): two private
PostgreSQL 15 clusters (Debian's binaries, never the shared server), alarmhub's schema on both; the city
publishes one district's incidents and incident events (row filter on ``district``) and the registries
whole; the district subscribes. It receives its district's rows and none of another's, and catches up
after being stopped.

Replica identity: a row filter on a published UPDATE/DELETE must use replica-identity columns, and
``district`` is not in the incidents' primary key, so the publication sets ``REPLICA IDENTITY FULL`` on
the filtered tables (incident_events is append-only; incidents are updated as they progress)."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

PG_BIN = Path("/usr/lib/postgresql/15/bin")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (PG_BIN / "initdb").exists(), reason="postgresql-15 (Debian) not installed"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    def __init__(self, root: Path, name: str, run_as: dict[str, Any]) -> None:
        self.data = root / name
        self.port = _free_port()
        self.run_as = run_as
        self.root = root

    def pg(self, *argv: str | Path) -> None:
        subprocess.run([str(a) for a in argv], check=True, capture_output=True, cwd=self.root, **self.run_as)

    def init(self) -> Cluster:
        self.pg(PG_BIN / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        with (self.data / "postgresql.conf").open("a") as f:
            f.write(f"listen_addresses = '127.0.0.1'\nunix_socket_directories = '{self.root}'\n"
                    "wal_level = logical\nmax_wal_senders = 4\nmax_replication_slots = 4\n")  # fmt: skip
        return self.start()

    def start(self) -> Cluster:
        self.pg(PG_BIN / "pg_ctl", "-D", self.data, "-l", f"{self.data}.log", "-w", "-o", f"-c port={self.port}",
                "start")  # fmt: skip
        return self

    def stop(self) -> None:
        subprocess.run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
                       capture_output=True, cwd=self.root, **self.run_as)  # fmt: skip

    def url(self, db: str = "alarmhub") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"


@pytest.fixture
def clusters() -> Iterator[tuple[Cluster, Cluster]]:
    root = Path(tempfile.mkdtemp(prefix="alarmhub-district-"))
    root.chmod(0o755)
    run_as: dict[str, Any] = {}
    if os.geteuid() == 0:
        u = pwd.getpwnam("alarmhub-pg")
        os.chown(root, u.pw_uid, u.pw_gid)
        run_as = {"user": u.pw_uid, "group": u.pw_gid, "extra_groups": []}
    city, district = Cluster(root, "city", run_as), Cluster(root, "district", run_as)
    try:
        city.init()
        district.init()
        yield city, district
    finally:
        city.stop()
        district.stop()
        shutil.rmtree(root, ignore_errors=True)


async def _incident(conn: asyncpg.Connection, district: str) -> str:
    iid = str(uuid.uuid4())
    await conn.execute(
        "INSERT INTO incidents (id, status, decision, priority, score, kind, district, opened_at, updated_at) "
        "VALUES ($1, 'opened', 'dispatch', 2, 80, 'burglary', $2, now(), now())",
        iid,
        district,
    )
    await conn.execute(
        "INSERT INTO incident_events (event_id, incident_id, type, status, actor_user, at, district) "
        "VALUES ($1, $2, 'opened', 'opened', 'triage', now(), $3)",
        str(uuid.uuid4()),
        iid,
        district,
    )
    return iid


async def _wait_rows(url: str, want: set[str], timeout: float = 30.0) -> set[str]:
    deadline = time.monotonic() + timeout
    conn = await asyncpg.connect(url)
    try:
        while True:
            got = {str(r[0]) for r in await conn.fetch("SELECT id FROM incidents")}
            if want <= got or time.monotonic() > deadline:
                return got
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def test_district_copy_receives_its_rows_only_and_catches_up(clusters: tuple[Cluster, Cluster]) -> None:
    from alarmhub_store import migrate_sync

    city, district = clusters
    for c in clusters:
        conn = await asyncpg.connect(c.url("postgres"))
        await conn.execute("CREATE DATABASE alarmhub")
        await conn.close()
        await asyncio.to_thread(migrate_sync, c.url())
    conn = await asyncpg.connect(city.url())
    await conn.execute("ALTER TABLE incidents REPLICA IDENTITY FULL")
    await conn.execute("ALTER TABLE incident_events REPLICA IDENTITY FULL")
    await conn.execute(
        "CREATE PUBLICATION district_futian FOR TABLE incidents WHERE (district = 'futian'), "
        "incident_events WHERE (district = 'futian'), accounts, units"
    )
    ours = {await _incident(conn, "futian") for _ in range(5)}
    theirs = {await _incident(conn, "nanshan") for _ in range(5)}
    await conn.execute("INSERT INTO accounts (line, account, company) VALUES ('L1', '7001', 'Reg Co')")
    dconn = await asyncpg.connect(district.url())
    await dconn.execute(
        f"CREATE SUBSCRIPTION city CONNECTION 'host=127.0.0.1 port={city.port} user=postgres dbname=alarmhub' "
        "PUBLICATION district_futian"
    )
    await dconn.close()
    got = await _wait_rows(district.url(), ours)
    assert got == ours, "the district's incidents and none of another district's"
    assert not (got & theirs)
    # an update of one of ours reaches the copy (replica identity full)
    first = sorted(ours)[0]
    await conn.execute("UPDATE incidents SET status = 'acknowledged' WHERE id = $1", first)

    district.stop()  # the district platform is down for a while
    more = {await _incident(conn, "futian") for _ in range(3)}
    await _incident(conn, "nanshan")
    await conn.close()
    district.start()
    got = await _wait_rows(district.url(), ours | more)
    assert got == ours | more, "caught up after being stopped"
    dconn = await asyncpg.connect(district.url())
    try:
        assert await dconn.fetchval("SELECT status FROM incidents WHERE id = $1", first) == "acknowledged"
        assert await dconn.fetchval("SELECT count(*) FROM incident_events") == len(ours | more)
        assert await dconn.fetchval("SELECT count(*) FROM accounts WHERE account = '7001'") == 1
    finally:
        await dconn.close()
