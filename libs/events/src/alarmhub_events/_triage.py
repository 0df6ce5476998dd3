"""Triage decisions (``alarms.triaged``)."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Final, Literal

from pydantic import ConfigDict, Field

from ._alarm import AlarmEvent
from ._common import Event, Timestamp
from ._text import CleanText

__all__ = ["TRIAGED_SCHEMA", "Decision", "Reason", "TriagedAlarm"]

TRIAGED_SCHEMA: Final = "alarmhub.triaged.v1"


class Decision(StrEnum):
    DISPATCH = "dispatch"
    VERIFY = "verify"
    SUPPRESS = "suppress"
    TROUBLE = "trouble"


class Reason(CleanText):
    """One explanation of a score or decision: a stable code, and text a dispatcher can read."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(min_length=1, max_length=64)
    text: str = Field(description="English sentence")
    text_zh: str | None = Field(default=None, description="Chinese sentence")
    weight: float | None = Field(default=None, description="contribution to the score, in points")


class TriagedAlarm(Event):
    """A decision about one event of an incident. Keyed by ``incident_id``; triage owns incident identity."""

    schema_: Literal["alarmhub.triaged.v1"] = Field(default=TRIAGED_SCHEMA, alias="schema")
    incident_id: uuid.UUID
    event: AlarmEvent
    decision: Decision
    score: int = Field(ge=0, le=100)
    priority: int = Field(default=3, ge=1, le=5, description="1 highest … 5 lowest")
    reasons: list[Reason] = Field(default_factory=list)
    rule_version: str
    major_event: bool = Field(default=False, description="part of a spike raised to district and city tiers")
    decided_at: Timestamp

    @property
    def key(self) -> str:
        return str(self.incident_id)
