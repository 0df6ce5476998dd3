"""Dispatch console: the cameras' stream URL (live view and snapshots), a position index for "cameras
near", the incidents' manual hand-offs (to 119/120), and the indexes the queue's search uses.

Revision ID: dispatch_console_0001
Revises: dispatch_people_0001
"""

from alembic import op

revision = "dispatch_console_0001"
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
        -- the external services (fire-119, medical-120) a dispatcher handed the incident to
        ALTER TABLE incidents ADD COLUMN handed_to text[] NOT NULL DEFAULT '{}';
        CREATE INDEX incidents_handed_to_idx ON incidents USING gin (handed_to) WHERE handed_to <> '{}';
        CREATE INDEX incidents_account_idx ON incidents (account);
        """
    )


def downgrade() -> None:
    op.execute(
        "DROP INDEX incidents_account_idx; DROP INDEX incidents_handed_to_idx;"
        " ALTER TABLE incidents DROP COLUMN handed_to;"
        " DROP INDEX cameras_position_idx; ALTER TABLE cameras DROP COLUMN stream_url"
    )
