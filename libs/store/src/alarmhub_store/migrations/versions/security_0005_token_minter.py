"""Security: the unit that minted a token (docs/security.md, "Tokens").

``api_tokens.minted_unit``: the unit of the supervisor who minted the token with ``POST /tokens``; the
token is listed and revoked by that unit's supervisors and those above it (``GET /tokens``,
``DELETE /tokens/{id}``). Sessions (login) and the dev token have none. Tokens minted before this revision
are given the city's root unit: only the city tier sees and revokes them.

Revision ID: security_0005
Revises: security_0004
"""

from alembic import op

revision = "security_0005"
down_revision = "security_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE api_tokens ADD COLUMN minted_unit text;
        UPDATE api_tokens SET minted_unit = (SELECT id FROM units WHERE parent_id IS NULL ORDER BY id LIMIT 1)
         WHERE created_by IS NOT NULL AND created_by NOT IN ('login', 'ALARMHUB_DEV_TOKEN');
        CREATE INDEX api_tokens_minted_unit_idx ON api_tokens (minted_unit) WHERE minted_unit IS NOT NULL;
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE api_tokens DROP COLUMN minted_unit")
