"""Dispatch: ``vehicle_owner`` tokens (a vehicle owner's theft reports).

A ``vehicle_owner`` token has no unit and no company; ``scope.vehicles`` names the registered vehicles
(device ids) it speaks for.

Revision ID: dispatch_0004
Revises: dispatch_0003
"""

from alembic import op

revision = "dispatch_0004"
down_revision = "dispatch_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_role_check;
        ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_role_check
            CHECK (role IN ('dispatcher','supervisor','department','alarm_company','vehicle_owner'));
        ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_owner_check
            CHECK (role <> 'vehicle_owner' OR (unit IS NULL AND company IS NULL AND scope ? 'vehicles'));
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DELETE FROM api_tokens WHERE role = 'vehicle_owner';
        ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_owner_check;
        ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_role_check;
        ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_role_check
            CHECK (role IN ('dispatcher','supervisor','department','alarm_company'));
        """
    )
