"""Dispatch: per-person accounts behind the tokens, and the audit log of reads and actions.

- ``people``: one row per person (no shared logins); the password only as an argon2id hash; role, unit
  (or alarm company) and scope are the person's, and every token a login issues carries them; failed
  logins lock the account for a while;
- ``audit_log``: append-only (a trigger refuses UPDATE and DELETE); one row per read of personal data
  (incidents, registries, tracks, the live stream), per action (every non-GET call), per login, failed
  login and logout, with the person, unit, role and address.

Revision ID: dispatch_people_0001
Revises: dispatch_0005
"""

from alembic import op

revision = "dispatch_people_0001"
down_revision = "dispatch_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        r"""
        CREATE TABLE people (
            user_name            text PRIMARY KEY CHECK (user_name ~ '^[A-Za-z0-9._@-]{1,64}$'),
            display_name         text,
            password_hash        text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
            role                 text NOT NULL CHECK (role IN ('dispatcher','supervisor','department','alarm_company')),
            unit                 text,
            company              text,
            scope                jsonb NOT NULL DEFAULT '{}'::jsonb,
            active               boolean NOT NULL DEFAULT true,
            failed_logins        integer NOT NULL DEFAULT 0,
            locked_until         timestamptz,
            created_by           text,
            created_at           timestamptz NOT NULL DEFAULT now(),
            password_changed_at  timestamptz NOT NULL DEFAULT now(),
            last_login_at        timestamptz,
            CHECK ((role = 'alarm_company') = (company IS NOT NULL AND unit IS NULL))
        );

        CREATE TABLE audit_log (
            id         bigserial PRIMARY KEY,
            at         timestamptz NOT NULL DEFAULT now(),
            user_name  text,
            role       text,
            unit       text,
            company    text,
            address    text,
            kind       text NOT NULL CHECK (kind IN ('read','action','login','login_failed','logout')),
            method     text,
            path       text,
            status     smallint,
            detail     jsonb NOT NULL DEFAULT '{}'::jsonb
        );
        CREATE INDEX audit_log_at_idx ON audit_log(at);
        CREATE INDEX audit_log_user_idx ON audit_log(user_name, at);

        CREATE FUNCTION audit_log_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_log is append-only';
        END $$;
        CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
            FOR EACH ROW EXECUTE FUNCTION audit_log_immutable();
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE audit_log, people; DROP FUNCTION audit_log_immutable()")
