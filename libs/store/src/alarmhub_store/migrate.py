"""Apply the schema: ``alembic upgrade heads`` under a PostgreSQL advisory lock.

Every service calls :func:`migrate` at start-up (and ``make run`` runs ``alarmhub-migrate`` first),
so whichever starts first creates the schema and the others wait on the lock. The database named in
the URL is created when missing, which keeps ``make run`` a one-command start on a fresh server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text

__all__ = ["ensure_database", "migrate", "migrate_sync", "sqlalchemy_url"]

_MIGRATIONS = Path(__file__).with_name("migrations")
_LOCK_ID = 0x616C61726D  # 'alarm'


def sqlalchemy_url(database_url: str) -> str:
    """``postgresql://…`` → ``postgresql+psycopg://…`` for alembic's synchronous engine."""
    scheme, rest = database_url.split("://", 1)
    return f"postgresql+psycopg://{rest}" if scheme in ("postgresql", "postgres") else database_url


def ensure_database(database_url: str) -> None:
    parts = urlsplit(database_url)
    name = parts.path.lstrip("/") or "postgres"
    admin = urlunsplit(parts._replace(path="/postgres"))
    engine = create_engine(sqlalchemy_url(admin), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar()
            if not exists:
                try:
                    conn.execute(text(f'CREATE DATABASE "{name}"'))
                except Exception as exc:  # another process created it meanwhile
                    if "already exists" not in str(exc):
                        raise
    finally:
        engine.dispose()


def migrate_sync(database_url: str) -> None:
    ensure_database(database_url)
    engine = create_engine(sqlalchemy_url(database_url))
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _LOCK_ID})
            try:
                cfg = Config()
                cfg.set_main_option("script_location", str(_MIGRATIONS))
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "heads")
                conn.commit()
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _LOCK_ID})
                conn.commit()
    finally:
        engine.dispose()


async def migrate(database_url: str) -> None:
    await asyncio.to_thread(migrate_sync, database_url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Apply alarmhub's PostgreSQL schema (alembic upgrade heads)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/alarmhub"),
    )
    args = parser.parse_args(argv)
    migrate_sync(args.database_url)
    print(f"schema up to date: {args.database_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
