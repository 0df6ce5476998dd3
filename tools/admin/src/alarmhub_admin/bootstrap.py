"""``alarmhub-admin init``: schema, topics and the first city supervisor — idempotent, so compose and
Kubernetes run it on every start and only the first run changes anything.

1. ``alembic upgrade heads`` (``alarmhub_store.migrate``, under its advisory lock);
2. the contract's topics with the configured replication and ``min.insync.replicas``;
3. the city unit (tier 1, no area yet: ``import units`` gives it one) when there is none;
4. the first supervisor at the city when no active supervisor exists there: the password is read from
   ``--password-file`` / ``ALARMHUB_ADMIN_PASSWORD_FILE`` (a mounted secret) or prompted for twice on a
   terminal — never taken from the command line, where ``ps`` and shell history would keep it.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

import asyncpg
from alarmhub_kafka import KafkaSecurity, ensure_topics
from alarmhub_store import migrate

from .config import AdminSettings
from .registries import hash_password

__all__ = ["read_password", "run_init"]


def read_password(path: str | None, user: str) -> str:
    """The password from a file (first line) or, on a terminal, from two prompts."""
    if path:
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise SystemExit(f"cannot read the password file {path}: {exc.strerror}") from None
        pw = text.splitlines()[0] if text else ""
    elif sys.stdin.isatty():
        pw = getpass.getpass(f"password for {user}: ")
        if getpass.getpass("again: ") != pw:
            raise SystemExit("the two passwords differ")
    else:
        raise SystemExit(
            "no terminal to ask for a password: give --password-file (a file readable only by you)"
        )
    if len(pw) < 12 or pw.strip().lower() == user.lower():
        raise SystemExit("a password has at least 12 characters and is not the user name")
    return pw


async def run_init(s: AdminSettings, *, password_file: str | None, out: list[str]) -> int:
    await migrate(s.database_url)
    out.append("schema: up to date (alembic heads)")
    created = await ensure_topics(
        s.kafka_bootstrap,
        prefix=s.topic_prefix,
        replication=s.topic_replication,
        min_insync=s.topic_min_insync,
        security=KafkaSecurity.from_settings(s),
    )
    out.append(
        f"topics: {len(created)} created" + (f" ({', '.join(created)})" if created else ", all present")
    )
    conn = await asyncpg.connect(s.database_url)
    try:
        city = await conn.fetchrow("SELECT id, name FROM units WHERE id = $1", s.city_id)
        if city is None:
            roots = await conn.fetch("SELECT id FROM units WHERE parent_id IS NULL AND kind = 'police'")
            if roots:
                out.append(
                    f"city unit {s.city_id!r} not found; the police root(s) here are "
                    f"{', '.join(r['id'] for r in roots)}: set ALARMHUB_CITY_ID"
                )
                return 2
            if not s.city_name:
                out.append("no city unit yet: set ALARMHUB_CITY_NAME (or --city-name) to create it")
                return 2
            await conn.execute(
                "INSERT INTO units (id, name, tier, parent_id, kind) VALUES ($1, $2, 1, NULL, 'police')",
                s.city_id,
                s.city_name,
            )
            out.append(f"city unit: {s.city_id} ({s.city_name}) created")
        else:
            out.append(f"city unit: {city['id']} ({city['name']}) present")
        have = await conn.fetchval(
            "SELECT user_name FROM people WHERE role = 'supervisor' AND unit = $1 AND active ORDER BY created_at LIMIT 1",
            s.city_id,
        )
        if have:
            out.append(f"city supervisor: {have} present (nothing to do)")
            return 0
        exists = await conn.fetchval("SELECT 1 FROM people WHERE user_name = $1", s.admin_user)
        if exists:
            out.append(f"user {s.admin_user} exists but is not an active city supervisor: fix it by hand")
            return 2
        pw = read_password(password_file or s.admin_password_file, s.admin_user)
        await conn.execute(
            "INSERT INTO people (user_name, display_name, password_hash, role, unit, created_by)"
            " VALUES ($1, $2, $3, 'supervisor', $4, 'alarmhub-admin init')",
            s.admin_user,
            "first city supervisor",
            hash_password(pw),
            s.city_id,
        )
        out.append(f"city supervisor: {s.admin_user} created; sign in at the console and create the others")
        return 0
    finally:
        await conn.close()
