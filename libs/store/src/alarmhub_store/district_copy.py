"""The publication a district platform subscribes to (issue #17, docs/operations.md "District copies").

One publication per district, on the city's PostgreSQL (15+, ``wal_level = logical``):

- filtered by ``district = '<code>'``: ``incidents``, ``incident_events``, ``incident_alarms``,
  ``audit_log``, ``people`` and ``api_tokens`` (sign-in and tokens at the district backup), and the
  registries ``accounts``, ``vehicles``, ``cameras`` — these three with a column list that leaves their
  secrets out (:data:`SECRET_COLUMNS`);
- whole: ``units`` (the unit tree: scoping and the console's areas need every unit, and it holds no
  secret).

Not published: ``platforms`` (JT/T 809 links and their passwords are the city's), webhooks and their
deliveries, the outbox, tracks, device status (high-volume, and the backup serves history, not the live
map). The ``district`` columns are filled on write by the schema (migration ``resilience_0001``).

``python -m alarmhub_store.district_copy --district 440304 --database-url …`` prints the statements;
``--apply`` runs them on the city's database.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

import asyncpg

__all__ = [
    "FILTERED",
    "SECRET_COLUMNS",
    "WHOLE",
    "district_publication_sql",
    "publication_name",
    "subscription_sql",
]

#: tables filtered by their ``district`` column
FILTERED = (
    "incidents",
    "incident_events",
    "incident_alarms",
    "audit_log",
    "people",
    "api_tokens",
    "accounts",
    "vehicles",
    "cameras",
)
#: tables published whole
WHOLE = ("units",)
#: columns a district's copy never receives
SECRET_COLUMNS = {
    "accounts": ("key_hex",),
    "vehicles": ("auth_code",),
    "cameras": ("username", "password", "intake_token_sha256"),
}
_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def publication_name(district: str) -> str:
    return f"district_{district.lower().replace('-', '_')}"


async def district_publication_sql(conn: asyncpg.Connection, district: str) -> list[str]:
    """The statements creating ``district``'s publication (the column lists read from the live schema,
    so a column added later is published unless it is a secret)."""
    if not _CODE.match(district):
        raise ValueError(f"not a district code: {district!r}")
    parts: list[str] = []
    for table in FILTERED:
        columns = ""
        if table in SECRET_COLUMNS:
            names = await conn.fetch(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
                table,
            )
            keep = [r[0] for r in names if r[0] not in SECRET_COLUMNS[table]]
            columns = f" ({', '.join(keep)})"
        parts.append(f"{table}{columns} WHERE (district = '{district}')")
    parts.extend(WHOLE)
    return [
        # a row filter on UPDATE/DELETE may use replica-identity columns only; the migration set the
        # others' identities (FULL, or an index with district)
        "ALTER TABLE incidents REPLICA IDENTITY FULL",
        "ALTER TABLE incident_events REPLICA IDENTITY FULL",
        f"CREATE PUBLICATION {publication_name(district)} FOR TABLE {', '.join(parts)}",
    ]


def subscription_sql(district: str, conninfo: str, name: str = "city") -> str:
    """Run on the district's PostgreSQL (schema migrated first, ``alarmhub-migrate``)."""
    return f"CREATE SUBSCRIPTION {name} CONNECTION '{conninfo}' PUBLICATION {publication_name(district)}"


async def _main(args: argparse.Namespace) -> int:
    conn = await asyncpg.connect(args.database_url)
    try:
        statements = await district_publication_sql(conn, args.district)
        for s in statements:
            print(s + ";")
            if args.apply:
                await conn.execute(s)
    finally:
        await conn.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    import asyncio

    parser = argparse.ArgumentParser(description="The publication of one district's copy (issue #17)")
    parser.add_argument("--district", required=True, help="the district's unit id (tier 2), e.g. 440304")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/alarmhub"),
    )
    parser.add_argument("--apply", action="store_true", help="run the statements (otherwise print them)")
    return asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
