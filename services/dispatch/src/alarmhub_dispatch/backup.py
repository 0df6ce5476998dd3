"""Read-only district backup (issue #17): a dispatch instance pointed at a district's copy of the data.

``ALARMHUB_DISPATCH_MODE=district_backup`` with ``ALARMHUB_BACKUP_DISTRICT=<district unit id>``. The
district's PostgreSQL holds that district's rows only (logical replication with row filters,
``alarmhub_store.district_copy``); this instance serves its console and API read-only while the city
centre is unreachable:

- **writes nothing**: no migrations, no producer, no Kafka consumer, no escalation or outbox timers, no
  webhooks, no track partitions; every PostgreSQL transaction is read-only
  (``default_transaction_read_only``), so a write that slipped past the gate fails in the database;
- **refuses every write route** before authentication: 503 with ``detail`` "read-only district backup: …"
  (:func:`refused`; the only writes answered are sign-in and sign-out, :data:`ALLOWED_WRITES`);
- **says it is the backup** on every response (header :data:`HEADER`), on every console view (a banner in
  the page, ``routes/console.py``) and in ``GET /api/v1/me`` (``backup``);
- **scopes every caller to the district**: a token whose unit is not the district or below it is refused
  (403) — the copy only holds the district's people and tokens anyway;
- **sign-in**: people and tokens reach the copy by replication (their ``district`` column); a password
  sign-in here issues a token held in this process's memory (:class:`Sessions`, lost on restart: sign in
  again), sign-out revokes it (a replicated token is revoked in memory); failed sign-ins are limited by
  the in-memory login guard as usual; audit rows become ``audit`` log lines (JSON, with ``event_id``).
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime
from typing import Any, Literal

from alarmhub_runtime import BaseServiceSettings, get_logger
from pydantic import Field, model_validator

__all__ = [
    "ALLOWED_WRITES",
    "HEADER",
    "REASON",
    "BackupSettings",
    "ReadOnlyGate",
    "Sessions",
    "refused",
]

log = get_logger("alarmhub.dispatch.backup")

REASON = "read-only district backup"
HEADER = "X-Alarmhub-Backup"
#: the writes a district backup answers (method, path): sessions live in this process's memory
ALLOWED_WRITES = frozenset({("POST", "/api/v1/login"), ("POST", "/api/v1/logout")})
_READS = frozenset({"GET", "HEAD", "OPTIONS"})

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]


class BackupSettings(BaseServiceSettings):
    """The dispatch mode (a mixin of :class:`~.config.DispatchSettings`)."""

    mode: Literal["primary", "district_backup"] = Field(
        default="primary",
        alias="ALARMHUB_DISPATCH_MODE",
        description="district_backup: serve ALARMHUB_BACKUP_DISTRICT's copy of the data read-only "
        "(docs/operations.md, 'District copies'); nothing is written, no Kafka",
    )
    backup_district: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{1,32}$",
        alias="ALARMHUB_BACKUP_DISTRICT",
        description="the district (tier-2 unit id, e.g. 440304) whose copy a district_backup serves",
    )

    @model_validator(mode="after")
    def _backup_needs_district(self) -> BackupSettings:
        if self.mode == "district_backup":
            if not self.backup_district:
                raise ValueError("ALARMHUB_DISPATCH_MODE=district_backup needs ALARMHUB_BACKUP_DISTRICT")
            if getattr(self, "dev_token", None):
                raise ValueError("a district backup writes nothing: ALARMHUB_DEV_TOKEN is refused there")
        elif self.backup_district:
            raise ValueError(
                "ALARMHUB_BACKUP_DISTRICT is only read with ALARMHUB_DISPATCH_MODE=district_backup"
            )
        return self

    @property
    def read_only(self) -> bool:
        return self.mode == "district_backup"


def refused(method: str, path: str) -> bool:
    """Whether a district backup refuses this call (every write but sign-in and sign-out)."""
    return method.upper() not in _READS and (method.upper(), path.rstrip("/")) not in ALLOWED_WRITES


class ReadOnlyGate:
    """Outermost ASGI middleware of a district backup: the header on every response, writes refused."""

    def __init__(self, app: Callable[..., Awaitable[None]], district: str) -> None:
        self.app = app
        self.district = district
        self.value = f"district={district}; read-only".encode()

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (HEADER.lower().encode(), self.value)]
            await send(message)

        if refused(scope.get("method", ""), scope.get("path", "")):
            log.info("backup_write_refused", method=scope.get("method"), path=scope.get("path"))
            body = json.dumps(
                {
                    "detail": f"{REASON}: the city centre's dispatch takes changes; this copy of district "
                    f"{self.district} is read-only",
                    "district": self.district,
                }
            ).encode()
            await send_marked(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [(b"content-type", b"application/json"), (b"retry-after", b"60")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send_marked)


class Sessions:
    """Sign-ins at the backup: token SHA-256 → the token's record, in memory, expiring, bounded."""

    def __init__(self, max_entries: int = 50_000) -> None:
        self.max_entries = max_entries
        self._tokens: OrderedDict[str, tuple[dict[str, Any], float]] = OrderedDict()
        self._revoked: set[str] = set()

    def put(self, sha: str, record: dict[str, Any], expires_at: datetime | None) -> None:
        until = expires_at.timestamp() if expires_at is not None else float("inf")
        self._tokens[sha] = (record, until)
        self._tokens.move_to_end(sha)
        self._revoked.discard(sha)
        while len(self._tokens) > self.max_entries:
            self._tokens.popitem(last=False)

    def get(self, sha: str) -> dict[str, Any] | None:
        hit = self._tokens.get(sha)
        if hit is None:
            return None
        if hit[1] <= time.time():
            del self._tokens[sha]
            return None
        return hit[0]

    def revoke(self, sha: str) -> None:
        self._tokens.pop(sha, None)
        if len(self._revoked) < self.max_entries:
            self._revoked.add(sha)

    def revoked(self, sha: str) -> bool:
        return sha in self._revoked
