"""Dispatch: the cameras' stream URL (live view and snapshots) and a position index for "cameras near".

Revision ID: dispatch_live_0001
Revises: dispatch_people_0001
"""

from alembic import op

revision = "dispatch_live_0001"
down_revision = "dispatch_people_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- rtsp://host:554/... as the camera (or its ONVIF GetStreamUri / ISAPI channel) gives it; the
        -- registry's username/password are added when the relay connects, never shown
        ALTER TABLE cameras ADD COLUMN stream_url text;
        CREATE INDEX cameras_position_idx ON cameras (lat, lon) WHERE lat IS NOT NULL;
        """
    )


def downgrade() -> None:
    op.execute("DROP INDEX cameras_position_idx; ALTER TABLE cameras DROP COLUMN stream_url")
