"""The ``audit_log`` table (append-only: a trigger refuses UPDATE/DELETE); the rules are in ``audit.py``."""

from __future__ import annotations

from typing import Any

from ._base import TableStore

__all__ = ["AuditStore"]


class AuditStore(TableStore):
    async def insert(self, row: tuple[Any, ...]) -> None:
        """One audit row: user, role, unit, company, address, kind, method, path, status, detail."""
        await self.p.execute(
            "INSERT INTO audit_log (user_name, role, unit, company, address, kind, method, path, status, detail)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
            *row,
        )

    async def page(self, where: str, args: list[Any], limit: int) -> list[dict[str, Any]]:
        """The newest rows matching ``where`` (the caller's filter over ``args``), newest first."""
        rows = await self.p.fetch(
            "SELECT id, at, user_name, role, unit, company, address, kind, method, path, status, detail"
            f" FROM audit_log WHERE {where} ORDER BY id DESC LIMIT {int(limit)}",
            *args,
        )
        return [dict(r) for r in rows]
