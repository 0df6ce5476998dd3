"""alarmhub event models: one pydantic model per topic message, as in docs/contract.md.

These models are the source of truth for ``proto/`` (``alarmhub-proto`` regenerates it).
"""

from ._alarm import (
    ALARM_SCHEMA,
    LIFE_SAFETY_KINDS,
    AlarmEvent,
    AlarmKind,
    Location,
    Protocol,
    Qualifier,
    Source,
)
from ._common import Event, Timestamp, new_event_id, utcnow
from ._dlq import DLQ_SCHEMA, DlqRecord
from ._gps import DEVICE_STATUS_SCHEMA, GPS_SCHEMA, SUPERVISION_ANSWER, DeviceStatus, DeviceStatusKind, GpsFix
from ._incident import INCIDENT_EVENT_SCHEMA, Actor, IncidentEvent, IncidentEventType, IncidentStatus, Verdict
from ._text import RAW_ESCAPED, CleanText, clean_attributes, clean_text, escape_raw, unescape_raw
from ._topics import (
    ALARMS_DLQ,
    ALARMS_RAW,
    ALARMS_TRIAGED,
    DEVICES_STATUS,
    INCIDENTS_EVENTS,
    TELEMETRY_GPS,
    TOPICS,
    TopicSpec,
)
from ._triage import TRIAGED_SCHEMA, Decision, Reason, TriagedAlarm
from ._vocabulary import SENSOR, VEHICLE_ATTRIBUTES, Sensor, VehicleAttr, VehicleSignal

__all__ = [
    "ALARMS_DLQ",
    "ALARMS_RAW",
    "ALARMS_TRIAGED",
    "ALARM_SCHEMA",
    "DEVICES_STATUS",
    "DEVICE_STATUS_SCHEMA",
    "DLQ_SCHEMA",
    "GPS_SCHEMA",
    "INCIDENTS_EVENTS",
    "INCIDENT_EVENT_SCHEMA",
    "LIFE_SAFETY_KINDS",
    "RAW_ESCAPED",
    "SENSOR",
    "SUPERVISION_ANSWER",
    "TELEMETRY_GPS",
    "TOPICS",
    "TRIAGED_SCHEMA",
    "VEHICLE_ATTRIBUTES",
    "Actor",
    "AlarmEvent",
    "AlarmKind",
    "CleanText",
    "Decision",
    "DeviceStatus",
    "DeviceStatusKind",
    "DlqRecord",
    "Event",
    "GpsFix",
    "IncidentEvent",
    "IncidentEventType",
    "IncidentStatus",
    "Location",
    "Protocol",
    "Qualifier",
    "Reason",
    "Sensor",
    "Source",
    "Timestamp",
    "TopicSpec",
    "TriagedAlarm",
    "VehicleAttr",
    "VehicleSignal",
    "Verdict",
    "clean_attributes",
    "clean_text",
    "escape_raw",
    "new_event_id",
    "unescape_raw",
    "utcnow",
]
