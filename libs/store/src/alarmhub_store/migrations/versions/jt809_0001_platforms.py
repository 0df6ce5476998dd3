"""JT/T 809 platforms managed through the dispatch API: disable without deleting, link-state time.

- ``disabled``: a disabled platform's logins are refused (0x1002 result 0x06) and its live link is
  closed at ingest-gps's next registry refresh; the row (and its history) stays.
- ``link_changed_at``: when ingest-gps last wrote ``link_status``.
- ``password`` holds a PBKDF2-SHA256 hash when written through the API (``alarmhub_store.hash_password``).

Revision ID: jt809_0001
Revises: 0001_base
"""

from alembic import op

revision = "jt809_0001"
down_revision = "0001_base"
branch_labels = ("jt809",)
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE platforms
            ADD COLUMN disabled boolean NOT NULL DEFAULT false,
            ADD COLUMN link_changed_at timestamptz;
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE platforms DROP COLUMN disabled, DROP COLUMN link_changed_at")
