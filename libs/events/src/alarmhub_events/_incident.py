"""Incident lifecycle events (``incidents.events``) published by dispatch."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import ConfigDict, Field

from ._common import Event, Timestamp
from ._text import CleanText

__all__ = [
    "INCIDENT_EVENT_SCHEMA",
    "Actor",
    "IncidentEvent",
    "IncidentEventType",
    "IncidentStatus",
    "Verdict",
]

INCIDENT_EVENT_SCHEMA: Final = "alarmhub.incident_event.v1"


class IncidentEventType(StrEnum):
    OPENED = "opened"
    ROUTED = "routed"
    ESCALATED = "escalated"
    ACKNOWLEDGED = "acknowledged"
    ON_SCENE = "on_scene"
    VERIFIED = "verified"
    CLOSED = "closed"
    UPDATED = "updated"


class IncidentStatus(StrEnum):
    OPENED = "opened"
    ROUTED = "routed"
    ESCALATED = "escalated"
    ACKNOWLEDGED = "acknowledged"
    ON_SCENE = "on_scene"
    CLOSED = "closed"


class Verdict(StrEnum):
    GENUINE = "genuine"
    FALSE_ALARM = "false_alarm"
    TEST = "test"


class Actor(CleanText):
    """Who caused a transition: a person's token, or the system itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user: str
    unit: str | None = None
    role: str | None = None
    address: str | None = None


class IncidentEvent(Event):
    """One transition of an incident. Keyed by ``incident_id``."""

    schema_: Literal["alarmhub.incident_event.v1"] = Field(default=INCIDENT_EVENT_SCHEMA, alias="schema")
    incident_id: uuid.UUID
    type: IncidentEventType
    status: IncidentStatus
    station: str | None = None
    district: str | None = None
    verdict: Verdict | None = None
    actor: Actor
    at: Timestamp
    source_device_id: str | None = Field(default=None, description="device/account the incident started from")
    data: dict[str, Any] = Field(default_factory=dict)
    seq: int | None = Field(
        default=None,
        ge=1,
        description="the event's place in the incident's history: a later event of the incident has a larger"
        " seq (dispatch's audit sequence); a consumer ignores an event older than the one it holds",
    )

    @property
    def key(self) -> str:
        return str(self.incident_id)
