"""The words ingest services and triage's rules share in ``AlarmEvent.attributes``.

Defined once here: every tracker protocol path (JT/T 808, GT06, H02) and the JT/T 809 intake write a
vehicle alarm's ``attributes.signal`` and its context keys with these names, ingest-contactid and the
camera ingest write ``attributes.sensor`` with :class:`Sensor`, and triage's rules may name only these
(a contract test fails on a rule that names anything else, or a word no ingest path writes).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = ["SENSOR", "VEHICLE_ATTRIBUTES", "Sensor", "VehicleAttr", "VehicleSignal"]


class VehicleSignal(StrEnum):
    """``attributes.signal`` of a vehicle alarm: what happened to the vehicle, whatever the protocol called it."""

    ARMED_IGNITION = "armed_ignition"
    """Ignition switched on while the owner had the vehicle armed (the vehicle has not moved yet)."""
    ARMED_MOVEMENT = "armed_movement"
    """The armed vehicle is driving: above the parked speed and out of its parked radius, ignition on."""
    PARKED_DISPLACEMENT = "parked_displacement"
    """The armed (or power-cut) vehicle moved out of its parked radius with the ignition off: towed, lifted."""
    POWER_CUT = "power_cut"
    """The terminal lost its main (vehicle) power."""
    TAMPER = "tamper"
    """The terminal was opened or removed."""
    GEOFENCE_EXIT = "geofence_exit"
    """The vehicle left an area or route it is bound to."""
    GEOFENCE_ENTER = "geofence_enter"
    """The vehicle entered an area (or crossed one whose direction the terminal did not say)."""
    SOS = "sos"
    """The driver pressed the emergency button (or a platform forwarded an emergency/hijack alarm)."""
    THEFT_ALARM = "theft_alarm"
    """The terminal's own anti-theft unit (or a platform) declared the vehicle stolen."""
    DOOR_OPEN = "door_open"
    """A door opened while the vehicle was armed (the terminal's own judgement)."""
    VIBRATION = "vibration"
    """Shock or collision sensor."""
    OVERSPEED = "overspeed"
    """Over the speed limit (a driving-behaviour signal, not a police matter on its own)."""


class VehicleAttr:
    """Attribute keys of a vehicle alarm (``AlarmEvent.attributes``)."""

    SIGNAL: Final = "signal"
    """:class:`VehicleSignal` value."""
    ARMED: Final = "armed"
    """bool: the owner had the vehicle armed when the signal arose."""
    IGNITION: Final = "ignition"
    """bool: ignition (ACC) state at the signal, when the terminal reports one."""
    PARKED: Final = "parked"
    """bool: the vehicle was parked (ignition off, inside its parked radius) when the signal arose."""
    SPEED_KMH: Final = "speed_kmh"
    """float: speed at the signal, km/h."""
    MOVED_M: Final = "moved_m"
    """float: distance from where the vehicle was parked, metres (movement signals)."""


#: Every vehicle attribute key, in the order above.
VEHICLE_ATTRIBUTES: Final = (
    VehicleAttr.SIGNAL,
    VehicleAttr.ARMED,
    VehicleAttr.IGNITION,
    VehicleAttr.PARKED,
    VehicleAttr.SPEED_KMH,
    VehicleAttr.MOVED_M,
)

#: Attribute key of a detector's sensing principle (:class:`Sensor`), on panel zones and cameras.
SENSOR: Final = "sensor"


class Sensor(StrEnum):
    """``attributes.sensor``: how a detector senses. Two different principles agreeing confirm an intrusion."""

    PIR = "pir"
    MICROWAVE = "microwave"
    DUAL_TECH = "dual_tech"
    CONTACT = "contact"
    GLASS = "glass"
    VIBRATION = "vibration"
    BEAM = "beam"
    VIDEO = "video"
    SMOKE = "smoke"
    HEAT = "heat"
    MANUAL = "manual"
    OTHER = "other"
