"""Dispatch: vehicle tracks from ``telemetry.gps``, partitioned by day.

``tracks`` keeps every fix of the last 24 hours (daily range partitions, created ahead and dropped
by dispatch's maintenance task). Before a partition is dropped, the fixes of vehicles that have an
open incident are copied to ``tracks_kept``, which holds their whole history for the console.
``(device_id, at, event_id)`` makes re-consumed fixes harmless.

Revision ID: dispatch_0003
Revises: dispatch_0002
"""

from alembic import op

revision = "dispatch_0003"
down_revision = "dispatch_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE tracks (
            device_id    text NOT NULL,
            at           timestamptz NOT NULL,
            event_id     uuid NOT NULL,
            lat          double precision NOT NULL,
            lon          double precision NOT NULL,
            speed_kmh    real,
            heading_deg  real,
            valid        boolean NOT NULL DEFAULT true,
            PRIMARY KEY (device_id, at, event_id)
        ) PARTITION BY RANGE (at);
        CREATE TABLE tracks_default PARTITION OF tracks DEFAULT;

        CREATE TABLE tracks_kept (
            device_id    text NOT NULL,
            at           timestamptz NOT NULL,
            event_id     uuid NOT NULL,
            lat          double precision NOT NULL,
            lon          double precision NOT NULL,
            speed_kmh    real,
            heading_deg  real,
            valid        boolean NOT NULL DEFAULT true,
            PRIMARY KEY (device_id, at, event_id)
        );
        CREATE INDEX incidents_open_device_idx ON incidents(source_device_id) WHERE status <> 'closed';
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE tracks_kept, tracks; DROP INDEX IF EXISTS incidents_open_device_idx")
