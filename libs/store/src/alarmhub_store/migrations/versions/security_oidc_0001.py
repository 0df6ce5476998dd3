"""Security: directory sign-ins in progress (OpenID Connect state, nonce and PKCE verifier), shared by
every dispatch replica.

``oidc_logins``: one row per sign-in started with ``GET /login/oidc``, keyed by the SHA-256 of its
``state`` (the state itself travels through the browser and is never stored); taken once by the callback
(``DELETE … RETURNING``), refused after ``expires_at`` (10 minutes). Expired rows are deleted as new
sign-ins start.

Revision ID: security_oidc_0001
Revises: security_totp_0001
"""

from alembic import op

revision = "security_oidc_0001"
down_revision = "security_totp_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE oidc_logins (
            state_sha256 text PRIMARY KEY,
            nonce text NOT NULL,
            code_verifier text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL
        );
        CREATE INDEX oidc_logins_expires_idx ON oidc_logins (expires_at);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE oidc_logins")
