"""Dispatch: an index on ``accounts.account`` alone.

Routing a batch of triaged alarms looks up every registered site of their account numbers on any line
(``IncidentStore.account_sites``: ``WHERE account = ANY($1)``). The primary key is ``(line, account)``,
so that lookup scanned the whole registry once per batch: 1–4 ms per batch at 6,000 accounts in
``bench/e2e.py``, and growing with the city's registry.

Revision ID: dispatch_0006
Revises: dispatch_console_0002
"""

from alembic import op

revision = "dispatch_0006"
down_revision = "dispatch_console_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX IF NOT EXISTS accounts_account_idx ON accounts (account)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS accounts_account_idx")
