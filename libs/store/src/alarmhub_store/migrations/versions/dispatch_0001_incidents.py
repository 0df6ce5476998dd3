"""Dispatch: incidents, their contributing alarms, the immutable audit timeline, the outbox, API tokens.

- ``incidents``: one row per ``incident_id`` (triage owns identity), the current state.
- ``incident_alarms``: every ``alarms.triaged`` record applied to an incident, keyed by
  (incident_id, event_id): the primary key *is* the idempotency check, so replays never double.
- ``incident_events``: the lifecycle as immutable audit rows (who, from which address, when); a
  trigger refuses UPDATE and DELETE.
- ``incident_outbox``: audit rows not yet acknowledged by Kafka; written in the same transaction
  and deleted once ``incidents.events`` has them (at-least-once publication across crashes).
- ``escalate_at`` lives on the incident, so escalation timers survive a restart.
- ``api_tokens``: only the SHA-256 of each bearer token is stored.

Revision ID: dispatch_0001
Revises: 0001_base
"""

from alembic import op

revision = "dispatch_0001"
down_revision = "0001_base"
branch_labels = ("dispatch",)
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE incidents (
            id                uuid PRIMARY KEY,
            status            text NOT NULL CHECK (status IN
                                  ('opened','routed','escalated','acknowledged','on_scene','closed')),
            decision          text NOT NULL,
            priority          smallint NOT NULL CHECK (priority BETWEEN 1 AND 5),
            score             smallint NOT NULL CHECK (score BETWEEN 0 AND 100),
            reasons           jsonb NOT NULL DEFAULT '[]'::jsonb,
            kind              text NOT NULL,
            station           text,
            district          text,
            lat               double precision,
            lon               double precision,
            location          jsonb,
            route             jsonb NOT NULL DEFAULT '{}'::jsonb,
            source_device_id  text,
            protocol          text,
            account           text,
            company           text,
            major_event       boolean NOT NULL DEFAULT false,
            rule_version      text,
            verdict           text CHECK (verdict IS NULL OR verdict IN ('genuine','false_alarm','test')),
            verification      text CHECK (verification IS NULL OR verification IN ('confirmed','false','unreachable')),
            escalation_level  smallint NOT NULL DEFAULT 0,   -- 0 station, 1 district, 2 city
            escalate_at       timestamptz,
            opened_at         timestamptz NOT NULL,
            updated_at        timestamptz NOT NULL,
            acknowledged_at   timestamptz,
            on_scene_at       timestamptz,
            closed_at         timestamptz,
            alarm_count       integer NOT NULL DEFAULT 1
        );
        CREATE INDEX incidents_station_idx ON incidents(station, opened_at DESC);
        CREATE INDEX incidents_district_idx ON incidents(district, opened_at DESC);
        CREATE INDEX incidents_company_idx ON incidents(company, opened_at DESC);
        CREATE INDEX incidents_opened_idx ON incidents(opened_at DESC);
        CREATE INDEX incidents_escalate_idx ON incidents(escalate_at) WHERE escalate_at IS NOT NULL;

        CREATE TABLE incident_alarms (
            incident_id  uuid NOT NULL REFERENCES incidents(id),
            event_id     uuid NOT NULL,
            decision     text NOT NULL,
            score        smallint NOT NULL,
            triaged      jsonb NOT NULL,
            received_at  timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (incident_id, event_id)
        );

        CREATE TABLE incident_events (
            seq          bigserial PRIMARY KEY,
            event_id     uuid NOT NULL UNIQUE,
            incident_id  uuid NOT NULL REFERENCES incidents(id),
            type         text NOT NULL,
            status       text NOT NULL,
            actor_user   text NOT NULL,
            actor_unit   text,
            actor_role   text,
            address      text,
            at           timestamptz NOT NULL,
            station      text,
            district     text,
            verdict      text,
            data         jsonb NOT NULL DEFAULT '{}'::jsonb
        );
        CREATE INDEX incident_events_incident_idx ON incident_events(incident_id, seq);

        CREATE FUNCTION incident_events_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'incident_events is an append-only audit log';
        END $$;
        CREATE TRIGGER incident_events_no_change BEFORE UPDATE OR DELETE ON incident_events
            FOR EACH ROW EXECUTE FUNCTION incident_events_immutable();

        CREATE TABLE incident_outbox (
            seq  bigint PRIMARY KEY REFERENCES incident_events(seq)
        );

        CREATE TABLE api_tokens (
            token_sha256  text PRIMARY KEY,
            user_name     text NOT NULL,
            role          text NOT NULL CHECK (role IN ('dispatcher','supervisor','department','alarm_company')),
            unit          text,
            company       text,
            scope         jsonb NOT NULL DEFAULT '{}'::jsonb,
            created_by    text,
            created_at    timestamptz NOT NULL DEFAULT now(),
            expires_at    timestamptz,
            revoked_at    timestamptz,
            CHECK ((role = 'alarm_company') = (company IS NOT NULL AND unit IS NULL))
        );
        """
    )


def downgrade() -> None:
    op.execute(
        "DROP TABLE api_tokens, incident_outbox, incident_events, incident_alarms, incidents CASCADE;"
        "DROP FUNCTION incident_events_immutable()"
    )
