"""Units: the history of the unit tree, kept by ``alarmhub-admin import units``.

- ``unit_imports``: one row per import that wrote something (who, when, the file's name and SHA-256,
  the counts of units added, changed, retired and unchanged);
- ``unit_history``: one row per unit added, changed or retired by an import, with the unit's row before
  and after (JSON, area included). ``units`` itself holds only the current tree, so the routing and the
  API read one table; an old area stays answerable from here ("whose was this street last spring?").

Both are append-only (a trigger refuses UPDATE and DELETE).

Revision ID: units_0001
Revises: 0001_base
"""

from alembic import op

revision = "units_0001"
down_revision = "0001_base"
branch_labels = ("units",)
depends_on = None


def upgrade() -> None:
    op.execute(
        r"""
        CREATE TABLE unit_imports (
            id          bigserial PRIMARY KEY,
            at          timestamptz NOT NULL DEFAULT now(),
            by          text,
            source      text,
            sha256      text,
            summary     jsonb NOT NULL DEFAULT '{}'::jsonb
        );
        CREATE TABLE unit_history (
            id          bigserial PRIMARY KEY,
            import_id   bigint NOT NULL REFERENCES unit_imports(id),
            unit_id     text NOT NULL,
            change      text NOT NULL CHECK (change IN ('added', 'changed', 'retired')),
            before      jsonb,
            after       jsonb
        );
        CREATE INDEX unit_history_unit_idx ON unit_history(unit_id, import_id);

        CREATE FUNCTION unit_history_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'unit history is append-only';
        END $$;
        CREATE TRIGGER unit_imports_no_change BEFORE UPDATE OR DELETE ON unit_imports
            FOR EACH ROW EXECUTE FUNCTION unit_history_immutable();
        CREATE TRIGGER unit_history_no_change BEFORE UPDATE OR DELETE ON unit_history
            FOR EACH ROW EXECUTE FUNCTION unit_history_immutable();
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE unit_history, unit_imports; DROP FUNCTION unit_history_immutable()")
