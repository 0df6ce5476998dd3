"""Security: per-camera intake tokens (docs/security.md).

``cameras.intake_token_sha256``: the SHA-256 of a token that a camera (or the NVR or platform pushing
for it) presents on ISAPI/ONVIF pushes; the token itself is shown once by
``python -m alarmhub_ingest_camera.intake_tokens issue <camera id>`` and never stored.

Revision ID: security_0001
Revises: 0001_base
"""

from alembic import op

revision = "security_0001"
down_revision = "0001_base"
branch_labels = ("security",)
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE cameras ADD COLUMN intake_token_sha256 text
            CHECK (intake_token_sha256 IS NULL OR intake_token_sha256 ~ '^[0-9a-f]{64}$');
        CREATE UNIQUE INDEX cameras_intake_token_idx ON cameras(intake_token_sha256)
            WHERE intake_token_sha256 IS NOT NULL;
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE cameras DROP COLUMN intake_token_sha256")
