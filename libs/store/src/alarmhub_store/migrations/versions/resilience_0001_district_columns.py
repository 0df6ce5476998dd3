"""District copies (issue #17): a ``district`` column on every table a district's copy filters by.

A district platform subscribes to a publication of its own district's rows (logical replication with row
filters, ``alarmhub_store.district_copy``). ``incidents`` and ``incident_events`` carry ``district``
already; these tables gain it, filled by the database on write so that no writer can forget it:

- ``incident_alarms``: the incident's district when the alarm is attached, and moved with the incident
  when it is re-routed to another district (``incidents`` AFTER UPDATE OF district);
- ``audit_log``, ``people``, ``api_tokens``: the district of the row's ``unit`` (the tier-2 unit above it;
  '' for the city tier, companies and vehicle owners — they are in no district's copy). Audit rows
  written before this migration keep '' (the log is append-only; they are not back-filled);
- ``accounts``, ``vehicles``, ``cameras``: the district of the row's ``unit``; these are published with a
  column list that leaves their secrets out (DC-09 keys, terminal auth codes, camera credentials and
  intake tokens), and a column list needs a replica identity the list contains: a unique index over
  the key and ``district`` (hence NOT NULL, '' for none).

``district`` is '' rather than NULL everywhere, so a row filter ``district = '<code>'`` is the whole rule.
On the subscriber, replication applies rows without firing these triggers (session_replication_role is
``replica`` there): the copy keeps the city's values.

Revision ID: resilience_0001
Revises: 0001_base
"""

from alembic import op

revision = "resilience_0001"
down_revision = "0001_base"
branch_labels = ("resilience",)
depends_on = ("dispatch_people_0001", "security_0002", "dispatch_0005")

_BY_UNIT = ("audit_log", "people", "api_tokens", "accounts", "vehicles", "cameras")
_KEYED = {"accounts": "line, account", "vehicles": "device_id", "cameras": "id"}


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION unit_district(u text) RETURNS text LANGUAGE sql STABLE AS $$
            WITH RECURSIVE up(id, tier, parent_id, depth) AS (
                SELECT id, tier, parent_id, 0 FROM units WHERE id = u
                UNION ALL
                SELECT p.id, p.tier, p.parent_id, up.depth + 1 FROM units p JOIN up ON p.id = up.parent_id
                WHERE up.tier > 2 AND up.depth < 8
            )
            SELECT COALESCE((SELECT id FROM up WHERE tier = 2 LIMIT 1), '')
        $$;
        CREATE FUNCTION district_from_unit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.district := unit_district(NEW.unit);
            RETURN NEW;
        END $$;
        CREATE FUNCTION district_from_incident() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.district := COALESCE((SELECT district FROM incidents WHERE id = NEW.incident_id), '');
            RETURN NEW;
        END $$;
        CREATE FUNCTION incident_alarms_follow_district() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE incident_alarms SET district = COALESCE(NEW.district, '') WHERE incident_id = NEW.id;
            RETURN NULL;
        END $$;

        ALTER TABLE incident_alarms ADD COLUMN district text NOT NULL DEFAULT '';
        UPDATE incident_alarms a SET district = i.district FROM incidents i
            WHERE i.id = a.incident_id AND i.district IS NOT NULL;
        CREATE TRIGGER incident_alarms_district BEFORE INSERT ON incident_alarms
            FOR EACH ROW EXECUTE FUNCTION district_from_incident();
        CREATE TRIGGER incidents_district_moves AFTER UPDATE OF district ON incidents
            FOR EACH ROW WHEN (OLD.district IS DISTINCT FROM NEW.district)
            EXECUTE FUNCTION incident_alarms_follow_district();
        ALTER TABLE incident_alarms REPLICA IDENTITY FULL;
        """
    )
    for table in _BY_UNIT:
        backfill = "" if table == "audit_log" else f"UPDATE {table} SET district = unit_district(unit);"
        events = "INSERT" if table == "audit_log" else "INSERT OR UPDATE OF unit"
        op.execute(
            f"""
            ALTER TABLE {table} ADD COLUMN district text NOT NULL DEFAULT '';
            {backfill}
            CREATE TRIGGER {table}_district BEFORE {events} ON {table}
                FOR EACH ROW EXECUTE FUNCTION district_from_unit();
            """
        )
    op.execute("ALTER TABLE audit_log REPLICA IDENTITY FULL; ALTER TABLE people REPLICA IDENTITY FULL;")
    op.execute("ALTER TABLE api_tokens REPLICA IDENTITY FULL")
    for table, key in _KEYED.items():
        op.execute(
            f"""
            CREATE UNIQUE INDEX {table}_district_identity ON {table} ({key}, district);
            ALTER TABLE {table} REPLICA IDENTITY USING INDEX {table}_district_identity;
            """
        )


def downgrade() -> None:
    for table in _KEYED:
        op.execute(f"ALTER TABLE {table} REPLICA IDENTITY DEFAULT; DROP INDEX {table}_district_identity")
    for table in (*_BY_UNIT, "incident_alarms"):
        op.execute(f"ALTER TABLE {table} REPLICA IDENTITY DEFAULT")
        op.execute(
            f"DROP TRIGGER IF EXISTS {table}_district ON {table}; ALTER TABLE {table} DROP COLUMN district"
        )
    op.execute(
        "DROP TRIGGER incidents_district_moves ON incidents;"
        "DROP FUNCTION incident_alarms_follow_district(), district_from_incident(), district_from_unit(),"
        " unit_district(text)"
    )
