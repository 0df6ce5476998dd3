"""Dispatch console: the vehicles' terminal model (which cut-off a terminal takes, ingest-gps's table).

Revision ID: dispatch_console_0002
Revises: dispatch_console_0001
"""

from alembic import op

revision = "dispatch_console_0002"
down_revision = "dispatch_console_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE vehicles ADD COLUMN model text")


def downgrade() -> None:
    op.execute("ALTER TABLE vehicles DROP COLUMN model")
