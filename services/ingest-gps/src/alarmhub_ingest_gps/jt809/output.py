"""What the sans-IO JT/T 809 link session hands its server after each read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from alarmhub_events import Event

from ..fastfix import RawFix

__all__ = ["LinkOutput", "SlaveTarget"]


@dataclass(frozen=True, slots=True)
class SlaveTarget:
    ip: str
    port: int
    verify_code: int


@dataclass(slots=True)
class LinkOutput:
    """What one read produced: events to publish durably, then replies to write, then the rest."""

    publish: list[tuple[str, Event | RawFix]] = field(default_factory=list)
    replies: list[bytes] = field(default_factory=list)
    dlq: list[tuple[bytes, str]] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)
    slave: SlaveTarget | None = None
    close: bool = False
    login_result: int | None = None
    #: (stored hash, given password): the server hashes off the event loop, then ``finish_login``
    password_check: tuple[str, str] | None = None
    positions: int = 0
    backfilled: int = 0
    alarms: int = 0
