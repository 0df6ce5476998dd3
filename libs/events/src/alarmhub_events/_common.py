"""Building blocks shared by every event model."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer

__all__ = ["Event", "Timestamp", "new_event_id", "utcnow"]


def _iso_z(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix and millisecond precision, as in the contract."""
    value = value.astimezone(UTC)
    text = value.isoformat(timespec="milliseconds")
    if text.endswith(".000+00:00"):
        text = text[: -len(".000+00:00")] + "+00:00"
    return text.replace("+00:00", "Z")


#: A timezone-aware instant, serialized as RFC 3339 UTC (``2026-01-01T08:00:00.120Z``).
Timestamp = Annotated[AwareDatetime, PlainSerializer(_iso_z, return_type=str, when_used="json")]


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_event_id() -> uuid.UUID:
    return uuid.uuid4()


class Event(BaseModel):
    """Base of every message on a topic: immutable, strict about unknown top-level fields.

    ``schema`` is a reserved name on pydantic's BaseModel, so the field is ``schema_``
    in Python and ``schema`` on the wire.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, serialize_by_alias=True)

    event_id: uuid.UUID = Field(default_factory=new_event_id, description="Unique id of this message (UUID)")

    def to_bytes(self) -> bytes:
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes | str) -> Any:
        return cls.model_validate_json(data)
