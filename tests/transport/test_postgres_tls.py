"""PostgreSQL over TLS with ``sslmode=verify-full``, reached through the services' settings.

A private PostgreSQL 15 cluster (Debian's binaries, made with initdb like tests/faults' district test;
never the shared server) with ``ssl = on`` and this test's server certificate, and a ``pg_hba.conf`` whose
only TCP lines are ``hostssl … cert``: a client must speak TLS and show a certificate our CA signed whose
CN is the role. It listens on 127.0.0.1 (in the certificate) and 127.0.0.2 (not in it).

``BaseServiceSettings`` with ``DATABASE_SSLMODE=verify-full`` and the root and client certificates gives
the DSN that alarmhub_store's migration engine (SQLAlchemy, psycopg/libpq: ``ensure_database``) and the
services' asyncpg connections both use; the database is created through it and queries run over it. A plain
connection, a server checked against another CA, and a server reached under a name its certificate does
not carry are refused.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
import pytest
from alarmhub_devstack import free_port
from alarmhub_runtime import BaseServiceSettings

from .conftest import make_pki

PG_BIN = Path("/usr/lib/postgresql/15/bin")
pytestmark = pytest.mark.skipif(
    not (PG_BIN / "initdb").exists(), reason="postgresql-15 (Debian) not installed"
)


def _run_as() -> dict[str, Any]:
    """PostgreSQL refuses to run as root: run it as the dev stack's unprivileged user (made if missing)."""
    if os.geteuid() != 0:
        return {}
    try:
        user = pwd.getpwnam("alarmhub-pg")
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "alarmhub-pg"],
            check=True,
            capture_output=True,
        )
        user = pwd.getpwnam("alarmhub-pg")
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


@pytest.fixture(scope="module")
def tls_postgres() -> Iterator[dict[str, Any]]:
    root = Path(tempfile.mkdtemp(prefix="alarmhub-pgtls-"))
    root.chmod(0o755)
    pki = make_pki(root / "client")  # the test's side: CA, client certificate and key (owned by us)
    run_as = _run_as()
    data, server = root / "data", root / "server"
    server.mkdir()
    for name in ("server.crt", "server.key", "ca.crt"):
        shutil.copy(pki.dir / name, server / name)
    (server / "server.key").chmod(0o600)
    if run_as:
        os.chown(root, run_as["user"], run_as["group"])
        for path in (server, *server.iterdir()):
            os.chown(path, run_as["user"], run_as["group"])
    port = free_port()

    def pg(*argv: str | Path) -> None:
        subprocess.run([str(a) for a in argv], check=True, capture_output=True, cwd=root, **run_as)

    pg(
        PG_BIN / "initdb",
        "-D",
        data,
        "-U",
        "postgres",
        "--auth=trust",
        "-E",
        "UTF8",
        "--no-instructions",
        "--no-sync",
    )
    with (data / "postgresql.conf").open("a") as f:
        f.write(
            f"listen_addresses = '127.0.0.1,127.0.0.2'\nport = {port}\nunix_socket_directories = '{root}'\n"
            f"ssl = on\nssl_cert_file = '{server / 'server.crt'}'\nssl_key_file = '{server / 'server.key'}'\n"
            f"ssl_ca_file = '{server / 'ca.crt'}'\nssl_min_protocol_version = 'TLSv1.2'\nfsync = off\n"
        )
    (data / "pg_hba.conf").write_text(
        "local all postgres trust\nhostssl all alarmhub 127.0.0.1/32 cert\nhostssl all alarmhub 127.0.0.2/32 cert\n"
    )
    try:
        pg(PG_BIN / "pg_ctl", "-D", data, "-l", root / "pg.log", "-w", "start")
        pg(PG_BIN / "psql", "-h", root, "-p", str(port), "-U", "postgres", "-d", "postgres", "-c",
           "CREATE ROLE alarmhub LOGIN CREATEDB")  # fmt: skip
        yield {"port": port, "pki": pki}
    finally:
        subprocess.run([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, cwd=root, **run_as)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


def _settings(
    pg: dict[str, Any], host: str = "127.0.0.1", db: str = "alarmhub", **over: Any
) -> BaseServiceSettings:
    pki = pg["pki"]
    env: dict[str, Any] = {
        "DATABASE_URL": f"postgresql://alarmhub@{host}:{pg['port']}/{db}",
        "DATABASE_SSLMODE": "verify-full",
        "DATABASE_SSLROOTCERT": str(pki.ca),
        "DATABASE_SSLCERT": str(pki.client_cert),
        "DATABASE_SSLKEY": str(pki.client_key),
    }
    env.update(over)
    return BaseServiceSettings(**{k: v for k, v in env.items() if v is not None})


async def test_database_and_queries_over_verify_full(tls_postgres: dict[str, Any]) -> None:
    from alarmhub_store import ensure_database

    settings = _settings(tls_postgres)
    assert "sslmode=verify-full" in settings.database_url
    # alarmhub_store's helper through SQLAlchemy and psycopg/libpq (the engine alembic uses) creates the
    # database over TLS; the whole migration is not run here (it takes ~10 s and adds nothing to TLS)
    ensure_database(settings.database_url)
    with psycopg.connect(settings.database_url, connect_timeout=10) as pconn:
        got = pconn.execute("SELECT ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
        assert got == (True, "/CN=alarmhub")
    # the services' asyncpg connections read the same DSN
    conn = await asyncpg.connect(settings.database_url, timeout=10)
    try:
        row = await conn.fetchrow(
            "SELECT ssl, version, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        )
        assert row is not None and row["ssl"] is True
        assert row["version"] in ("TLSv1.2", "TLSv1.3")
        assert row["client_dn"] == "/CN=alarmhub"
        assert await conn.fetchval("SELECT current_database()") == "alarmhub"
    finally:
        await conn.close()


async def test_plain_wrong_ca_and_wrong_name_are_refused(tls_postgres: dict[str, Any]) -> None:
    pki = tls_postgres["pki"]
    # plain: pg_hba has no line for an unencrypted TCP connection
    plain = _settings(
        tls_postgres, DATABASE_SSLMODE="disable", DATABASE_SSLROOTCERT=None, DATABASE_SSLCERT=None,
        DATABASE_SSLKEY=None,
    )  # fmt: skip
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError, match="no encryption"):
        await asyncpg.connect(plain.database_url, timeout=10)
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(plain.database_url, connect_timeout=10).close()

    # the server's certificate checked against a CA that did not sign it
    wrong_ca = _settings(tls_postgres, DATABASE_SSLROOTCERT=str(pki.other_ca))
    with pytest.raises(Exception, match="certificate verify failed"):
        await asyncpg.connect(wrong_ca.database_url, timeout=10)
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(wrong_ca.database_url, connect_timeout=10).close()

    # the right CA, but 127.0.0.2 is not a name in the certificate: verify-full refuses, verify-ca would not
    wrong_name = _settings(tls_postgres, host="127.0.0.2")
    with pytest.raises(Exception, match=r"(?i)hostname|IP address mismatch|does not match"):
        await asyncpg.connect(wrong_name.database_url, timeout=10)
    with pytest.raises(psycopg.OperationalError, match="does not match"):
        psycopg.connect(wrong_name.database_url, connect_timeout=10).close()
    only_ca = _settings(tls_postgres, host="127.0.0.2", db="postgres", DATABASE_SSLMODE="verify-ca")
    conn = await asyncpg.connect(only_ca.database_url, timeout=10)
    await conn.close()
