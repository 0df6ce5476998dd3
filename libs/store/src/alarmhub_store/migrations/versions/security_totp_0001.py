"""Security: the second factor of personal accounts (TOTP, RFC 6238) and recovery codes.

``people.totp_secret``: the base32 secret of a confirmed enrolment (write-only: no API returns it);
``totp_pending``: a secret shown but not yet confirmed with a code; ``totp_enabled_at``: when it was
confirmed; ``totp_last_step``: the last 30 s step whose code was used (a code is accepted only for a later
step: no replay within its window); ``totp_recovery``: SHA-256 of the unused one-time recovery codes.

Revision ID: security_totp_0001
Revises: security_0005
"""

from alembic import op

revision = "security_totp_0001"
down_revision = "security_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE people
            ADD COLUMN totp_secret text,
            ADD COLUMN totp_pending text,
            ADD COLUMN totp_enabled_at timestamptz,
            ADD COLUMN totp_last_step bigint NOT NULL DEFAULT 0,
            ADD COLUMN totp_recovery text[] NOT NULL DEFAULT '{}';
        """
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE people DROP COLUMN totp_secret, DROP COLUMN totp_pending, DROP COLUMN totp_enabled_at,"
        " DROP COLUMN totp_last_step, DROP COLUMN totp_recovery"
    )
