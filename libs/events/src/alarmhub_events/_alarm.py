"""The normalized alarm event carried on ``alarms.raw``."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ._common import Event, Timestamp
from ._text import RAW_ESCAPED, CleanText, escape_raw

__all__ = [
    "ALARM_SCHEMA",
    "LIFE_SAFETY_KINDS",
    "AlarmEvent",
    "AlarmKind",
    "Location",
    "Protocol",
    "Qualifier",
    "Source",
]

ALARM_SCHEMA: Final = "alarmhub.alarm.v1"


class AlarmKind(StrEnum):
    PANIC = "panic"
    DURESS = "duress"
    BURGLARY = "burglary"
    FIRE = "fire"
    MEDICAL = "medical"
    TAMPER = "tamper"
    VEHICLE_THEFT = "vehicle_theft"
    VEHICLE_SOS = "vehicle_sos"
    VIBRATION = "vibration"
    POWER_CUT = "power_cut"
    GEOFENCE = "geofence"
    OVERSPEED = "overspeed"
    MOTION = "motion"
    INTRUSION = "intrusion"
    LINE_CROSSING = "line_crossing"
    TROUBLE = "trouble"
    SUPERVISION = "supervision"
    OPEN_CLOSE = "open_close"
    TEST = "test"
    CANCEL = "cancel"
    OTHER = "other"


#: kinds where a person may be in danger: one of them lost (dead-lettered) pages an operator at once
LIFE_SAFETY_KINDS: Final = frozenset(
    {AlarmKind.PANIC, AlarmKind.DURESS, AlarmKind.FIRE, AlarmKind.MEDICAL, AlarmKind.VEHICLE_SOS}
)


class Qualifier(StrEnum):
    NEW = "new"
    RESTORE = "restore"
    STATUS = "status"


class Protocol(StrEnum):
    DC09_CID = "dc09-cid"
    DC09_SIA = "dc09-sia"
    JT808 = "jt808"
    JT809 = "jt809"
    GT06 = "gt06"
    H02 = "h02"
    ISAPI = "isapi"
    ONVIF = "onvif"
    GB28181 = "gb28181"
    WEBHOOK = "webhook"


class Source(CleanText):
    """Where a signal came from. ``device_id`` is the stable key of the source on Kafka."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    protocol: Protocol
    device_id: str = Field(min_length=1, max_length=128)
    account: str | None = None
    receiver: str | None = None
    line: str | None = None
    path: str | None = Field(default=None, description="transmission path of a dual-path communicator")
    peer: str | None = Field(default=None, description="remote address:port the signal arrived from")
    platform: str | None = Field(default=None, description="JT/T 809 platform that forwarded the event")


class Location(BaseModel):
    """A WGS-84 position. ``source`` says where it came from when not from the signal itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    crs: Literal["WGS84"] = "WGS84"
    source: Literal["device", "registry"] | None = None
    accuracy_m: float | None = Field(default=None, ge=0)


class AlarmEvent(Event):
    """One alarm-bearing signal, normalized. Value of ``alarms.raw``, keyed by ``source.device_id``."""

    schema_: Literal["alarmhub.alarm.v1"] = Field(default=ALARM_SCHEMA, alias="schema")
    kind: AlarmKind
    qualifier: Qualifier = Qualifier.NEW
    source: Source
    code: str | None = Field(default=None, description="the original event code, e.g. Contact ID E120")
    zone: str | None = Field(default=None, description="zone, user or channel number as sent")
    occurred_at: Timestamp
    received_at: Timestamp
    location: Location | None = None
    attributes: dict[str, Any] = Field(
        default_factory=dict,
        description="protocol details and the shared words triage reads: vehicle alarms' signal, armed, "
        "ignition, parked, speed_kmh, moved_m; detectors' sensor (proto/vocabulary.json)",
    )
    raw: str = Field(
        default="",
        description="the original frame, text or hex; escaped (reversibly) when it holds control characters,"
        " then attributes.raw_escaped is true",
    )

    @model_validator(mode="after")
    def _escape_raw(self) -> AlarmEvent:
        """A frame holding control characters is kept reversibly escaped (``alarmhub_events.unescape_raw``)."""
        escaped = escape_raw(self.raw)
        if escaped is not None:
            object.__setattr__(self, "raw", escaped)
            object.__setattr__(self, "attributes", {**self.attributes, RAW_ESCAPED: True})
        return self

    @property
    def key(self) -> str:
        return self.source.device_id
