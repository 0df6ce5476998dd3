"""The tracker sessions' data: configuration, the registry view, what one read produces, alarm kinds."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol as TypingProtocol

from alarmhub_events import (
    AlarmKind,
    Event,
)

from ..fastfix import RawFix
from ..protocols._common import Position


class UnregisteredPolicy(StrEnum):
    REJECT = "reject"
    ACCEPT = "accept"
    """Accept, and write the terminal to the registry with ``flagged = true``."""


@dataclass(frozen=True, slots=True)
class VehicleInfo:
    device_id: str
    protocol: str = ""
    plate: str | None = None
    plate_colour: int | None = None
    armed: bool = False
    flagged: bool = False
    auth_code: str | None = None


class Directory(TypingProtocol):
    def get(self, device_id: str) -> VehicleInfo | None: ...


class DictDirectory(dict[str, VehicleInfo]):
    """The simplest :class:`Directory` (tests, and the app's in-memory registry view)."""


@dataclass(frozen=True, slots=True)
class RegistryWrite:
    """A row the server upserts into ``vehicles`` before the reply that depends on it."""

    device_id: str
    protocol: str
    flagged: bool
    auth_code: str | None = None
    plate: str | None = None
    plate_colour: int | None = None
    description: str | None = None
    reset_auth: bool = False
    """Clear the stored authentication code (the terminal logged out): it may register again."""


@dataclass(frozen=True, slots=True)
class CommandResult:
    """A terminal's answer to an operator command (0x0001 for 0x8202/0x8300, 0x0201 for 0x8201; a GT06's
    0x15/0x21 text for its 0x80, an H02's V4 for its ``S20``): ``result`` 0 carried out, else refused."""

    device_id: str
    serial: int
    command: int | str
    """The message id answered (JT/T 808, GT06), or the H02 command name (``S20``)."""
    result: int
    position: Position | None = None
    text: str | None = None
    """The terminal's own words (GT06 text answer, H02 result word)."""


@dataclass(slots=True)
class Output:
    publish: list[tuple[str, Event | RawFix]] = field(default_factory=list)
    """Events to publish; a JT/T 808 fix already written as JSON (``RawFix``, ``.model()`` parses it)."""
    reply: bytearray = field(default_factory=bytearray)
    registry: list[RegistryWrite] = field(default_factory=list)
    dlq: list[tuple[bytes, str]] = field(default_factory=list)
    commands: list[CommandResult] = field(default_factory=list)
    frames: int = 0
    refused: int = 0
    reregistrations: int = 0
    """0x0100 refused with result 3: the terminal already holds a code (reflashed tracker or an impostor)."""
    tolerated: int = 0
    """Frames decoded although their check code (or JT/T 808 body length) did not match."""
    close: bool = False


#: the development default of ``ALARMHUB_GPS_AUTH_SECRET``: anyone who reads this file can mint codes with it
DEV_AUTH_SECRET = "alarmhub-dev-secret"


@dataclass(frozen=True, slots=True)
class SessionConfig:
    policy: UnregisteredPolicy = UnregisteredPolicy.ACCEPT  # the service's setting defaults to reject
    auth_secret: bytes = DEV_AUTH_SECRET.encode()
    jt808_tz_hours: float = 8.0
    gt06_tz_hours: float = 0.0
    h02_tz_hours: float = 0.0
    max_refused: int = 5
    armed_speed_kmh: float = 10.0
    """Speed at which an armed vehicle counts as moving (GPS noise stays below it when parked)."""
    parked_radius_m: float = 100.0
    """Distance from where an armed vehicle was parked beyond which it has moved (jitter stays inside)."""
    gt06_password: str = "000000"
    """The password GT06N text commands carry (``DYD,<password>#``)."""
    max_future_s: float = 86_400.0
    """Device times further ahead of the receive time are replaced by it (bad RTC, wrong zone)."""


def derive_auth_code(secret: bytes, device: str) -> str:
    """The JT/T 808 authentication code this gateway issues: stable per device, verifiable anywhere."""
    return hmac.new(secret, device.encode(), hashlib.sha256).hexdigest()[:16].upper()


#: Alarm names from every protocol → the contract's kind. Names absent here stay in attributes only
#: (driving-behaviour warnings such as fatigue are not police matters).
ALARM_KINDS: dict[str, AlarmKind] = {
    "emergency": AlarmKind.VEHICLE_SOS,
    "sos": AlarmKind.VEHICLE_SOS,
    "vehicle_stolen": AlarmKind.VEHICLE_THEFT,
    "illegal_ignition": AlarmKind.VEHICLE_THEFT,
    "illegal_displacement": AlarmKind.VEHICLE_THEFT,
    "illegal_door_open": AlarmKind.VEHICLE_THEFT,
    "displacement": AlarmKind.VEHICLE_THEFT,
    "removal": AlarmKind.TAMPER,
    "tamper": AlarmKind.TAMPER,
    "movement": AlarmKind.VEHICLE_THEFT,
    "tow": AlarmKind.VEHICLE_THEFT,
    "door": AlarmKind.VEHICLE_THEFT,
    "armed_ignition": AlarmKind.VEHICLE_THEFT,
    "armed_movement": AlarmKind.VEHICLE_THEFT,
    "parked_displacement": AlarmKind.VEHICLE_THEFT,
    "vibration": AlarmKind.VIBRATION,
    "collision_warning": AlarmKind.VIBRATION,
    "rollover_warning": AlarmKind.OTHER,
    "collision": AlarmKind.VIBRATION,
    "power_cut": AlarmKind.POWER_CUT,
    "power_off": AlarmKind.POWER_CUT,
    "area_in_out": AlarmKind.GEOFENCE,
    "route_in_out": AlarmKind.GEOFENCE,
    "route_deviation": AlarmKind.GEOFENCE,
    "geofence": AlarmKind.GEOFENCE,
    "geofence_enter": AlarmKind.GEOFENCE,
    "geofence_exit": AlarmKind.GEOFENCE,
    "overspeed": AlarmKind.OVERSPEED,
    "gnss_fault": AlarmKind.TROUBLE,
    "gnss_antenna_cut": AlarmKind.TROUBLE,
    "gnss_antenna_short": AlarmKind.TROUBLE,
    "power_low": AlarmKind.TROUBLE,
    "low_battery": AlarmKind.TROUBLE,
    "low_external_battery": AlarmKind.TROUBLE,
    "low_internal_battery": AlarmKind.TROUBLE,
    "vss_fault": AlarmKind.TROUBLE,
    "fuel_abnormal": AlarmKind.TROUBLE,
    "danger_warning": AlarmKind.OTHER,
}
