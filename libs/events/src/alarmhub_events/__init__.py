"""alarmhub event models: one pydantic model per topic message, as in CONTRACT.md.

These models are the source of truth for ``proto/`` (``alarmhub-proto`` regenerates it).
"""

from ._alarm import ALARM_SCHEMA, AlarmEvent, AlarmKind, Location, Protocol, Qualifier, Source
from ._common import Event, Timestamp, new_event_id, utcnow
from ._dlq import DLQ_SCHEMA, DlqRecord
from ._gps import DEVICE_STATUS_SCHEMA, GPS_SCHEMA, SUPERVISION_ANSWER, DeviceStatus, DeviceStatusKind, GpsFix
from ._incident import INCIDENT_EVENT_SCHEMA, Actor, IncidentEvent, IncidentEventType, IncidentStatus, Verdict
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
    "SUPERVISION_ANSWER",
    "TELEMETRY_GPS",
    "TOPICS",
    "TRIAGED_SCHEMA",
    "Actor",
    "AlarmEvent",
    "AlarmKind",
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
    "Source",
    "Timestamp",
    "TopicSpec",
    "TriagedAlarm",
    "Verdict",
    "new_event_id",
    "utcnow",
]
