"""Dead letters (``alarms.dlq``): what could not be parsed or processed, with the raw bytes."""

from __future__ import annotations

import base64
from typing import Final, Literal

from pydantic import Field

from ._common import Event, Timestamp

__all__ = ["DLQ_SCHEMA", "DlqRecord"]

DLQ_SCHEMA: Final = "alarmhub.dlq.v1"


class DlqRecord(Event):
    """Raw input that was rejected, kept byte for byte (base64) with the reason. Keyed by ``source_id``."""

    schema_: Literal["alarmhub.dlq.v1"] = Field(default=DLQ_SCHEMA, alias="schema")
    service: str
    stage: str = Field(description="where it failed: decode, validate, process …")
    source_id: str = Field(description="device, peer or topic/partition/offset the bytes came from")
    error: str
    raw_b64: str = Field(description="the raw bytes, base64")
    source_topic: str | None = None
    source_partition: int | None = None
    source_offset: int | None = None
    source_key: str | None = Field(default=None, description="the source record's key (for a replay)")
    kind: str | None = Field(
        default=None, description="the alarm kind the record carried, when it was an alarm"
    )
    protocol: str | None = None
    peer: str | None = None
    occurred_at: Timestamp

    @classmethod
    def encode_raw(cls, raw: bytes) -> str:
        return base64.b64encode(raw).decode("ascii")

    def raw_bytes(self) -> bytes:
        return base64.b64decode(self.raw_b64)

    @property
    def key(self) -> str:
        return self.source_id
