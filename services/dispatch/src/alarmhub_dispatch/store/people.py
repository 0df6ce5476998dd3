"""Personal accounts (``people``) and the tokens they hold (``api_tokens``)."""

from __future__ import annotations

from typing import Any

import asyncpg

from ._base import TableStore, changed_none

__all__ = ["PeopleStore"]


class PeopleStore(TableStore):
    async def get(self, user: str) -> asyncpg.Record | None:
        return await self.p.fetchrow("SELECT * FROM people WHERE user_name=$1", user)

    async def brief(self, user: str) -> asyncpg.Record | None:
        return await self.p.fetchrow(
            "SELECT user_name, role, unit, company FROM people WHERE user_name=$1", user
        )

    async def password_hash(self, user: str) -> asyncpg.Record | None:
        return await self.p.fetchrow("SELECT password_hash FROM people WHERE user_name=$1", user)

    async def all(self) -> list[dict[str, Any]]:
        rows = await self.p.fetch(
            "SELECT user_name, display_name, role, unit, company, active, last_login_at,"
            " locked_until FROM people ORDER BY user_name"
        )
        return [dict(r) for r in rows]

    async def login_failed(self, user: str, max_failed: int, lock_s: int) -> None:
        await self.p.execute(
            "UPDATE people SET failed_logins = failed_logins + 1, locked_until = CASE"
            " WHEN failed_logins + 1 >= $2 THEN now() + make_interval(secs => $3) END WHERE user_name=$1",
            user,
            max_failed,
            lock_s,
        )

    async def login_succeeded(self, user: str) -> None:
        await self.p.execute(
            "UPDATE people SET failed_logins=0, locked_until=NULL, last_login_at=now() WHERE user_name=$1",
            user,
        )

    async def minted_tokens(self, units: list[str] | None, limit: int) -> list[dict[str, Any]]:
        """Tokens minted by these units (None: by any), newest first; never the hash itself."""
        rows = await self.p.fetch(
            "SELECT left(token_sha256, 16) AS id, user_name, role, unit, company, scope, created_by,"
            " minted_unit, created_at, expires_at, revoked_at FROM api_tokens WHERE minted_unit IS NOT NULL"
            " AND ($1::text[] IS NULL OR minted_unit = ANY($1::text[])) ORDER BY created_at DESC LIMIT $2",
            units,
            limit,
        )
        return [dict(r) for r in rows]

    async def revoke_minted(self, token_id: str, units: list[str] | None) -> dict[str, Any] | None:
        """Revoke the token whose hash starts with ``token_id`` if these units (None: any) minted it; the
        token's row (user, role, unit), or None when there is no such token for them."""
        row = await self.p.fetchrow(
            "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE token_sha256 = ("
            " SELECT token_sha256 FROM api_tokens WHERE token_sha256 LIKE $1 || '%' AND minted_unit IS NOT NULL"
            " AND ($2::text[] IS NULL OR minted_unit = ANY($2::text[])) LIMIT 1)"
            " RETURNING user_name, role, unit, company, minted_unit",
            token_id,
            units,
        )
        return dict(row) if row else None

    async def revoke_token(self, sha: str) -> None:
        await self.p.execute("UPDATE api_tokens SET revoked_at=now() WHERE token_sha256=$1", sha)

    async def create(
        self,
        user: str,
        display_name: str | None,
        password_hash: str,
        role: str,
        unit: str | None,
        company: str | None,
        scope: dict[str, Any],
        created_by: str,
    ) -> bool:
        """Insert a person; False when the user name is taken."""
        res = await self.p.execute(
            "INSERT INTO people (user_name, display_name, password_hash, role, unit, company, scope, created_by)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT DO NOTHING",
            user,
            display_name,
            password_hash,
            role,
            unit,
            company,
            scope,
            created_by,
        )
        return not changed_none(res)

    async def set_password(self, user: str, password_hash: str, *, end_sessions: bool) -> None:
        async with self.p.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE people SET password_hash=$2, password_changed_at=now(), failed_logins=0,"
                " locked_until=NULL WHERE user_name=$1",
                user,
                password_hash,
            )
            if end_sessions:
                await conn.execute(
                    "UPDATE api_tokens SET revoked_at=now() WHERE user_name=$1 AND revoked_at IS NULL", user
                )

    async def disable(self, user: str) -> None:
        async with self.p.acquire() as conn, conn.transaction():
            await conn.execute("UPDATE people SET active=false WHERE user_name=$1", user)
            await conn.execute(
                "UPDATE api_tokens SET revoked_at=now() WHERE user_name=$1 AND revoked_at IS NULL", user
            )

    # ------------------------------------------------------------ second factor (totp.py, routes/totp.py)

    async def totp_begin(self, user: str, secret: str) -> bool:
        """Keep a shown secret until it is confirmed; False when a second factor is already enrolled."""
        res = await self.p.execute(
            "UPDATE people SET totp_pending=$2 WHERE user_name=$1 AND totp_enabled_at IS NULL", user, secret
        )
        return not changed_none(res)

    async def totp_confirm(self, user: str, secret: str, step: int, recovery: list[str]) -> bool:
        """The pending secret (still ``secret``) becomes the person's second factor, with its recovery codes."""
        res = await self.p.execute(
            "UPDATE people SET totp_secret=totp_pending, totp_pending=NULL, totp_enabled_at=now(),"
            " totp_last_step=$3, totp_recovery=$4 WHERE user_name=$1 AND totp_pending=$2"
            " AND totp_enabled_at IS NULL",
            user,
            secret,
            step,
            recovery,
        )
        return not changed_none(res)

    async def totp_use_step(self, user: str, step: int) -> bool:
        """Atomically: the code of ``step`` is used now, unless a code of this step or a later one was."""
        res = await self.p.execute(
            "UPDATE people SET totp_last_step=$2 WHERE user_name=$1 AND totp_last_step < $2", user, step
        )
        return not changed_none(res)

    async def totp_use_recovery(self, user: str, sha: str) -> bool:
        res = await self.p.execute(
            "UPDATE people SET totp_recovery=array_remove(totp_recovery, $2)"
            " WHERE user_name=$1 AND $2 = ANY(totp_recovery)",
            user,
            sha,
        )
        return not changed_none(res)

    async def totp_reset(self, user: str) -> None:
        """A supervisor's reset: no second factor (the person enrols again) and every session ends."""
        async with self.p.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE people SET totp_secret=NULL, totp_pending=NULL, totp_enabled_at=NULL,"
                " totp_last_step=0, totp_recovery='{}' WHERE user_name=$1",
                user,
            )
            await conn.execute(
                "UPDATE api_tokens SET revoked_at=now() WHERE user_name=$1 AND revoked_at IS NULL", user
            )
