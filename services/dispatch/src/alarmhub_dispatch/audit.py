"""The audit log: every read of personal data and every action, with who, from where, and the outcome.

:class:`AuditMiddleware` (pure ASGI, so the SSE stream passes untouched) writes one ``audit_log`` row
for each authenticated ``/api/v1`` call when its response starts — before anything is disclosed:

- ``action``: every call that is not a GET (incident actions, vehicle commands, registry edits, tokens,
  webhooks, accounts…), whatever its status, so refused attempts are recorded too;
- ``read``: every GET except the aggregates that name no person (``/units``, ``/reports/*``), i.e.
  incidents (sites, addresses, owners), tracks, registries (accounts' contacts, vehicles' owners),
  the live stream (one row per connection), CAP, devices, the audit log itself;
- ``login``, ``login_failed``, ``logout``: written by ``accounts.py``.

The caller is the :class:`~.auth.Principal` the ``principal`` dependency left in ``request.state``; calls
refused before authentication (401) carry none and are not audited here (the access log and the
``login_failed`` rows cover them). A failed audit write is logged (``audit_write_failed``) and counted,
and the call goes on: the audit table lives in the same PostgreSQL, so a call that could read data
could also have written its audit row. The table is append-only (a trigger refuses UPDATE/DELETE).
"""

# no "from __future__ import annotations": FastAPI resolves the route annotations at definition time

import re
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime
from typing import Any

from alarmhub_runtime import get_logger

from .auth import Principal

__all__ = ["AuditMiddleware", "AuditWriter", "audited_kind"]

log = get_logger("alarmhub.dispatch.audit")

_NOT_PERSONAL = re.compile(r"^/api/v1/(units|reports/[^/]+|login|logout)/?$")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


def audited_kind(method: str, path: str) -> str | None:
    """``action``, ``read`` or None (not audited by the middleware) for an ``/api/v1`` call."""
    if not path.startswith("/api/v1/") or _NOT_PERSONAL.match(path):
        return None
    return "read" if method in ("GET", "HEAD") else "action"


class AuditWriter:
    """Inserts audit rows through the store's pool."""

    def __init__(self, store: Any, metrics: Any = None) -> None:
        self.store = store
        self.metrics = metrics

    async def write(
        self,
        kind: str,
        who: Principal | None,
        *,
        method: str | None,
        path: str | None,
        status: int | None,
        address: str | None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        if getattr(
            self.store, "read_only", False
        ):  # a district backup writes nothing: the row as a JSON log line
            log.info("audit", kind=kind, user=who.user if who else None, role=who.role if who else None,
                     unit=who.unit if who else None, address=(who.address if who else None) or address,
                     method=method, path=path, status=status, detail=detail or {})  # fmt: skip
            return
        try:
            await self.store.audit.insert(
                (
                    who.user if who else None,
                    who.role if who else None,
                    who.unit if who else None,
                    who.company if who else None,
                    (who.address if who else None) or address,
                    kind,
                    method,
                    path,
                    status,
                    detail or {},
                )
            )
        except Exception as exc:
            log.error(
                "audit_write_failed", kind=kind, path=path, user=who.user if who else None, error=repr(exc)
            )
            if self.metrics is not None:
                self.metrics.audit_failures.inc()

    async def for_request(
        self,
        kind: str,
        who: Principal | None,
        request: Any,
        status: int,
        detail: dict[str, Any] | None = None,
    ) -> None:
        await self.write(
            kind,
            who,
            method=request.method,
            path=request.url.path,
            status=status,
            address=request.client.host if request.client else None,
            detail=detail,
        )

    async def query(self, where: str, args: list[Any], limit: int) -> list[dict[str, Any]]:
        rows = await self.store.audit.page(where, args, limit)
        return [{**r, "at": r["at"].isoformat()} for r in rows]


class AuditMiddleware:
    def __init__(self, app: Callable[..., Awaitable[None]], writer: AuditWriter) -> None:
        self.app = app
        self.writer = writer

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        kind = audited_kind(scope.get("method", ""), scope.get("path", ""))

        async def send_audited(message: Message) -> None:
            if message["type"] == "http.response.start":
                who = (scope.get("state") or {}).get("principal")
                if message["status"] in (401, 403) and not (kind is not None and isinstance(who, Principal)):
                    await self._denied(scope, who if isinstance(who, Principal) else None, message["status"])
                elif kind is not None and isinstance(who, Principal):
                    query = scope.get("query_string", b"").decode("latin-1")
                    detail = {"query": _redact(query)} if query else {}
                    client = scope.get("client")
                    await self.writer.write(
                        kind,
                        who,
                        method=scope["method"],
                        path=scope["path"],
                        status=message["status"],
                        address=client[0] if client else None,
                        detail=detail,
                    )
            await send(message)

        await self.app(scope, receive, send_audited)

    async def _denied(self, scope: Scope, who: Principal | None, status: int) -> None:
        await _write_denied(self.writer, scope, who, status)


def _is_login(path: str) -> bool:
    return path.rstrip("/").endswith(("/api/v1/login",))


async def _write_denied(writer: AuditWriter, scope: Scope, who: Principal | None, status: int) -> None:
    """A refused call (no or a bad token: 401; a token without the right: 403) — who tried what, from
    where. The login route records its own failures (``login_failed``)."""
    path = scope.get("path", "")
    if _is_login(path):
        return
    client = scope.get("client")
    query = scope.get("query_string", b"").decode("latin-1")
    await writer.write(
        "denied",
        who,
        method=scope.get("method"),
        path=path,
        status=status,
        address=client[0] if client else None,
        detail={"query": _redact(query)} if query else {},
    )


def _redact(query: str) -> str:
    """The query string without a token in it (``?access_token=`` is how EventSource authenticates)."""
    return re.sub(r"(access_token=)[^&]*", r"\1…", query)[:500]


def since_clause(since: datetime | None, args: list[Any]) -> str:
    if since is None:
        return ""
    args.append(since)
    return f" AND at >= ${len(args)}"
