"""The store of a district backup (``backup.py``): every transaction read-only, sessions in memory.

The pool's connections start with ``default_transaction_read_only = on``, so the database refuses any write
this instance might still attempt. What sign-in writes in the primary (a token row, the failure counters,
the last sign-in) lives in the :class:`~..backup.Sessions` of this process instead.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import asyncpg

from ..backup import Sessions
from ._incidents import Store, _init, _keep
from .oidc import OidcLoginStore
from .people import PeopleStore

__all__ = ["ReadOnlyStore"]


class _People(PeopleStore):
    """Sign-in's writes kept in memory (the login guard still limits failures, per process): the TOTP
    steps and recovery codes used here are remembered by this process (a restart forgets them; the
    replicated ones still count)."""

    def __init__(self, owner: Store) -> None:
        super().__init__(owner)
        self._steps: dict[str, int] = {}
        self._recovered: set[tuple[str, str]] = set()

    @property
    def sessions(self) -> Sessions:
        owner = self._owner
        assert isinstance(owner, ReadOnlyStore)
        return owner.sessions

    async def login_failed(self, user: str, max_failed: int, lock_s: int) -> None:
        return None

    async def login_succeeded(self, user: str) -> None:
        return None

    async def revoke_token(self, sha: str) -> None:
        self.sessions.revoke(sha)

    async def totp_use_step(self, user: str, step: int) -> bool:
        """A TOTP step is used once: after the replicated last step and the ones used at this backup."""
        stored = await self.p.fetchval("SELECT totp_last_step FROM people WHERE user_name=$1", user)
        if step <= max(self._steps.get(user, -1), stored if stored is not None else -1):
            return False
        self._steps[user] = step
        return True

    async def totp_use_recovery(self, user: str, sha: str) -> bool:
        """A recovery code is used once: one of the replicated codes not yet used at this backup."""
        if (user, sha) in self._recovered:
            return False
        ok = await self.p.fetchval("SELECT $2 = ANY(totp_recovery) FROM people WHERE user_name=$1", user, sha)
        if ok:
            self._recovered.add((user, sha))
        return bool(ok)


class _OidcLogins(OidcLoginStore):
    """Directory sign-ins in progress, in this backup's memory (one process: its callback comes back here)."""

    def __init__(self, owner: Store) -> None:
        super().__init__(owner)
        self._pending: dict[str, tuple[str, str, float]] = {}

    async def put(self, state: str, nonce: str, verifier: str, ttl_s: float) -> None:
        now = time.monotonic()
        for key in [k for k, v in self._pending.items() if v[2] < now][:1000]:
            del self._pending[key]
        if len(self._pending) < 10_000:
            self._pending[state] = (nonce, verifier, now + ttl_s)

    async def take(self, state: str) -> tuple[str, str] | None:
        held = self._pending.pop(state, None)
        return (held[0], held[1]) if held is not None and held[2] >= time.monotonic() else None


class ReadOnlyStore(Store):
    read_only = True

    def __init__(self, dsn: str, *, max_size: int = 10, sessions: Sessions | None = None) -> None:
        super().__init__(dsn, max_size=max_size)
        self.sessions = sessions or Sessions()
        self.people = _People(self)
        self.oidc_logins = _OidcLogins(self)

    async def start(self) -> None:
        self.pool = await asyncpg.create_pool(
            self._dsn,
            min_size=self._min,
            max_size=self._max,
            init=_init,
            reset=_keep,
            command_timeout=30,
            server_settings={"default_transaction_read_only": "on", "application_name": "dispatch-backup"},
        )

    async def put_token(
        self,
        sha: str,
        user: str,
        role: str,
        unit: str | None,
        company: str | None,
        scope: dict[str, Any],
        created_by: str | None,
        expires_at: datetime | None,
        minted_unit: str | None = None,
    ) -> None:
        record = {"user_name": user, "role": role, "unit": unit, "company": company, "scope": scope}
        self.sessions.put(sha, record, expires_at)

    async def get_token(self, sha: str) -> Mapping[str, Any] | None:
        if self.sessions.revoked(sha):
            return None
        return self.sessions.get(sha) or await super().get_token(sha)
