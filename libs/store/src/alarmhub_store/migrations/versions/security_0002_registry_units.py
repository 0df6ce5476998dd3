"""Security: registry rows belong to a unit, so reads and writes are scoped to the caller's subtree.

``accounts.unit`` and ``vehicles.unit``: the police unit responsible for the site or vehicle (cameras
already have ``unit``). A row without a unit is the city's: only the city tier sees or changes it.

Revision ID: security_0002
Revises: security_0001
"""

from alembic import op

revision = "security_0002"
down_revision = "security_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE accounts ADD COLUMN unit text;
        ALTER TABLE vehicles ADD COLUMN unit text;
        CREATE INDEX accounts_unit_idx ON accounts(unit);
        CREATE INDEX vehicles_unit_idx ON vehicles(unit);
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE accounts DROP COLUMN unit; ALTER TABLE vehicles DROP COLUMN unit")
