"""What every table store shares: the pool of the :class:`~._incidents.Store` that owns it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg

if TYPE_CHECKING:
    from ._incidents import Store

__all__ = ["TableStore", "changed_none"]


class TableStore:
    def __init__(self, owner: Store) -> None:
        self._owner = owner

    @property
    def p(self) -> asyncpg.Pool:
        return self._owner.p


def changed_none(status: str) -> bool:
    """Whether an ``INSERT/UPDATE/DELETE`` status string (``"UPDATE 0"``) reports no row changed."""
    return status.endswith(" 0")
