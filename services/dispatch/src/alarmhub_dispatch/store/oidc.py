"""Directory sign-ins in progress (``oidc_logins``): what ``..oidc.OidcClient`` keeps between the redirect
to the provider and its callback, in PostgreSQL so that any replica can take the callback."""

from __future__ import annotations

import hashlib

from ._base import TableStore

__all__ = ["OidcLoginStore"]


def _key(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8", "surrogatepass")).hexdigest()


class OidcLoginStore(TableStore):
    async def put(self, state: str, nonce: str, verifier: str, ttl_s: float) -> None:
        """Keep a new sign-in for ``ttl_s`` seconds; sign-ins past their expiry are deleted meanwhile."""
        async with self.p.acquire() as conn, conn.transaction():
            await conn.execute(
                "DELETE FROM oidc_logins WHERE state_sha256 IN (SELECT state_sha256 FROM oidc_logins"
                " WHERE expires_at < now() ORDER BY expires_at LIMIT 1000)"
            )
            await conn.execute(
                "INSERT INTO oidc_logins (state_sha256, nonce, code_verifier, expires_at)"
                " VALUES ($1, $2, $3, now() + make_interval(secs => $4))",
                _key(state),
                nonce,
                verifier,
                float(ttl_s),
            )

    async def take(self, state: str) -> tuple[str, str] | None:
        """(nonce, code verifier) of the sign-in ``state`` names, once: the row is deleted as it is read;
        None when unknown, already taken or expired."""
        row = await self.p.fetchrow(
            "DELETE FROM oidc_logins WHERE state_sha256 = $1 RETURNING nonce, code_verifier,"
            " expires_at > now() AS live",
            _key(state),
        )
        if row is None or not row["live"]:
            return None
        return str(row["nonce"]), str(row["code_verifier"])
