"""Position fixes (``telemetry.gps``) and device status (``devices.status``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import Field

from ._alarm import Protocol
from ._common import Event, Timestamp

__all__ = [
    "DEVICE_STATUS_SCHEMA",
    "GPS_SCHEMA",
    "SUPERVISION_ANSWER",
    "DeviceStatus",
    "DeviceStatusKind",
    "GpsFix",
]

GPS_SCHEMA: Final = "alarmhub.gps.v1"
DEVICE_STATUS_SCHEMA: Final = "alarmhub.device_status.v1"
#: ``DeviceStatus.attributes`` key of a JT/T 809 platform's supervision answer (0x1401) that nobody waited
#: for: ingest-gps writes it (``status=other``), dispatch puts it on the vehicle's incident. Not a link state.
SUPERVISION_ANSWER: Final = "jt809_supervision_answer"


class GpsFix(Event):
    """Every position a terminal reports, alarm or not. Keyed by ``device_id``."""

    schema_: Literal["alarmhub.gps.v1"] = Field(default=GPS_SCHEMA, alias="schema")
    device_id: str = Field(min_length=1, max_length=128)
    protocol: Protocol
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    crs: Literal["WGS84"] = "WGS84"
    speed_kmh: float | None = Field(default=None, ge=0)
    heading_deg: float | None = Field(default=None, ge=0, le=360)
    altitude_m: float | None = None
    valid: bool = True
    occurred_at: Timestamp
    received_at: Timestamp
    attributes: dict[str, Any] = Field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.device_id


class DeviceStatusKind(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"
    SUPERVISION_MISSED = "supervision_missed"
    SUPERVISION_RESTORED = "supervision_restored"
    LOW_BATTERY = "low_battery"
    BATTERY_RESTORED = "battery_restored"
    TAMPER = "tamper"
    TAMPER_RESTORE = "tamper_restore"
    POWER_CUT = "power_cut"
    POWER_RESTORED = "power_restored"
    ACC_ON = "acc_on"
    ACC_OFF = "acc_off"
    OTHER = "other"


class DeviceStatus(Event):
    """A device's state change: link up/down, supervision, battery, tamper, ignition. Keyed by ``device_id``."""

    schema_: Literal["alarmhub.device_status.v1"] = Field(default=DEVICE_STATUS_SCHEMA, alias="schema")
    device_id: str = Field(min_length=1, max_length=128)
    protocol: Protocol
    status: DeviceStatusKind
    occurred_at: Timestamp
    received_at: Timestamp
    peer: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.device_id
