"""Dispatch: the last status of every device (from ``devices.status``), for the online-rate reports.

Revision ID: dispatch_0005
Revises: dispatch_0004
"""

from alembic import op

revision = "dispatch_0005"
down_revision = "dispatch_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE device_status (
            device_id   text PRIMARY KEY,
            kind        text NOT NULL,            -- camera | alarm_panel | vehicle | platform | other
            protocol    text NOT NULL,
            online      boolean NOT NULL,
            status      text NOT NULL,            -- the last DeviceStatusKind
            status_at   timestamptz NOT NULL,     -- its occurred_at
            station     text,
            district    text,
            updated_at  timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX device_status_district_idx ON device_status(district, kind);
        CREATE INDEX device_status_station_idx ON device_status(station, kind);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE device_status")
