"""What the GPS adapters (jt808, gt06, h02, jt809) share: the view of a decoded position in the corpus's
vocabulary, and the alarm names of our decoders translated into the sources' alarm vocabulary.

The corpus states alarms in traccar's vocabulary (``sos``, ``removing``, ``tampering`` …) because that is
what the largest source asserts; our decoders name alarms after their own protocol documents. The
table below only renames: an alarm our decoder did not report cannot appear through it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

#: our decoders' alarm names → the corpus vocabulary
ALARM_VOCABULARY: dict[str, str] = {
    "emergency": "sos",
    "sos": "sos",
    "overspeed": "overspeed",
    "fatigue": "fatigueDriving",
    "danger_warning": "general",
    "gnss_fault": "fault",
    "gnss_antenna_cut": "gpsAntennaCut",
    "gnss_antenna_short": "gpsAntennaCut",
    "power_low": "lowBattery",
    "power_cut": "powerCut",
    "power_off": "powerOff",
    "collision_warning": "accident",
    "rollover_warning": "accident",
    "collision": "accident",
    "area_in_out": "geofence",
    "route_in_out": "geofence",
    "geofence": "geofence",
    "geofence_enter": "geofenceEnter",
    "geofence_exit": "geofenceExit",
    "illegal_door_open": "door",
    "door": "door",
    "illegal_displacement": "movement",
    "displacement": "movement",
    "movement": "movement",
    "vibration": "vibration",
    "removal": "removing",
    "removing": "removing",
    "tamper": "tampering",
    "power_cut_vendor": "powerCut",
    "tampering": "tampering",
    "low_battery": "lowBattery",
    "low_internal_battery": "lowBattery",
    "low_external_battery": "lowPower",
    "harsh_acceleration": "hardAcceleration",
    "harsh_braking": "hardBraking",
    "sharp_turn": "hardCornering",
    "general": "general",
    "jamming": "jamming",
    "fall_down": "fallDown",
    "accident": "accident",
}


def alarm_names(names: Any) -> list[str]:
    return sorted({ALARM_VOCABULARY.get(n, n) for n in names if isinstance(n, str)})


def iso(t: datetime | None) -> str | None:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if t is not None else None


def position_view(pos: Any) -> dict[str, Any]:
    """lat/lon/valid/time/speed/course/altitude of a decoder position, and the attributes we carry."""
    view: dict[str, Any] = {
        "position": True,
        "lat": pos.lat,
        "lon": pos.lon,
        "valid": bool(pos.valid),
        "time": iso(pos.time),
        "speed_kmh": pos.speed_kmh,
    }
    if pos.heading_deg is not None:
        view["course"] = pos.heading_deg
    if pos.altitude_m is not None:
        view["altitude"] = pos.altitude_m
    for key, value in pos.attributes.items():
        view.setdefault(key, value)
    return view
