"""Dispatch: outgoing webhooks to stations' systems and alarm companies, their deliveries and dead letters.

A delivery row is written in the same transaction as the audit row it carries, so a notification is
never lost; ``idempotency_key`` (webhook id + audit event id) is sent with every attempt so receivers
can drop duplicates. ``status = 'dead'`` rows are the dead-letter list shown to operators.

Revision ID: dispatch_0002
Revises: dispatch_0001
"""

from alembic import op

revision = "dispatch_0002"
down_revision = "dispatch_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE webhooks (
            id           bigserial PRIMARY KEY,
            target_kind  text NOT NULL CHECK (target_kind IN ('unit', 'company')),
            target       text NOT NULL,
            url          text NOT NULL,
            secret       text NOT NULL,
            active       boolean NOT NULL DEFAULT true,
            created_by   text,
            created_at   timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE webhook_deliveries (
            id               bigserial PRIMARY KEY,
            webhook_id       bigint NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
            idempotency_key  text NOT NULL UNIQUE,
            incident_id      uuid NOT NULL,
            payload          jsonb NOT NULL,
            status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
            attempts         integer NOT NULL DEFAULT 0,
            next_attempt_at  timestamptz NOT NULL DEFAULT now(),
            last_status      integer,
            last_error       text,
            created_at       timestamptz NOT NULL DEFAULT now(),
            delivered_at     timestamptz
        );
        CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries(next_attempt_at) WHERE status = 'pending';
        CREATE INDEX webhook_deliveries_dead_idx ON webhook_deliveries(id) WHERE status = 'dead';
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE webhook_deliveries, webhooks")
