"""Security: refused calls (401 and 403) in the audit log as ``kind = 'denied'``.

Revision ID: security_0003
Revises: security_0002
"""

from alembic import op

revision = "security_0003"
down_revision = "security_0002"
branch_labels = None
depends_on = "dispatch_people_0001"


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE audit_log DROP CONSTRAINT audit_log_kind_check;
        ALTER TABLE audit_log ADD CONSTRAINT audit_log_kind_check
            CHECK (kind IN ('read','action','login','login_failed','logout','denied'));
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DELETE FROM audit_log WHERE kind = 'denied';
        ALTER TABLE audit_log DROP CONSTRAINT audit_log_kind_check;
        ALTER TABLE audit_log ADD CONSTRAINT audit_log_kind_check
            CHECK (kind IN ('read','action','login','login_failed','logout'));
        """
    )
