"""The topics of the contract, their keys and models, in one table."""

from __future__ import annotations

from dataclasses import dataclass

from ._alarm import AlarmEvent
from ._common import Event
from ._dlq import DlqRecord
from ._gps import DeviceStatus, GpsFix
from ._incident import IncidentEvent
from ._triage import TriagedAlarm

__all__ = [
    "ALARMS_DLQ",
    "ALARMS_RAW",
    "ALARMS_TRIAGED",
    "DEVICES_STATUS",
    "INCIDENTS_EVENTS",
    "TELEMETRY_GPS",
    "TOPICS",
    "TopicSpec",
]

ALARMS_RAW = "alarms.raw"
TELEMETRY_GPS = "telemetry.gps"
DEVICES_STATUS = "devices.status"
ALARMS_TRIAGED = "alarms.triaged"
INCIDENTS_EVENTS = "incidents.events"
ALARMS_DLQ = "alarms.dlq"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    model: type[Event]
    key: str
    producers: tuple[str, ...]
    description: str
    #: partitions in the dev stack; production sizing is in docs/capacity.md
    partitions: int


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        ALARMS_RAW,
        AlarmEvent,
        "source device id",
        ("ingest-contactid", "ingest-gps", "ingest-camera"),
        "one normalized alarm event per alarm-bearing signal",
        6,
    ),
    TopicSpec(TELEMETRY_GPS, GpsFix, "device id", ("ingest-gps",), "every position fix", 12),
    TopicSpec(
        DEVICES_STATUS,
        DeviceStatus,
        "device id",
        ("ingest-contactid", "ingest-gps", "ingest-camera"),
        "online/offline, supervision, battery, tamper, ignition",
        6,
    ),
    TopicSpec(
        ALARMS_TRIAGED,
        TriagedAlarm,
        "incident id",
        ("triage",),
        "decisions with score, reasons and rule version",
        6,
    ),
    TopicSpec(INCIDENTS_EVENTS, IncidentEvent, "incident id", ("dispatch",), "incident lifecycle", 6),
    TopicSpec(
        ALARMS_DLQ, DlqRecord, "source id", ("any",), "unparseable or unprocessable input with raw bytes", 3
    ),
)
