"""Security: a camera's webhook integrator (docs/security.md, "Camera intake").

``cameras.integrator``: the name (as in ``ALARMHUB_WEBHOOK_SECRETS``) of the only webhook integrator whose
signature may push events for this camera. With ``ALARMHUB_CAMERA_INTAKE_AUTH=registered`` a webhook for a
camera without one, or with another integrator's, is refused 403.

Revision ID: security_0004
Revises: security_0003
"""

from alembic import op

revision = "security_0004"
down_revision = "security_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE cameras ADD COLUMN integrator text
            CHECK (integrator IS NULL OR integrator ~ '^[A-Za-z0-9_.-]{1,64}$');
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE cameras DROP COLUMN integrator")
