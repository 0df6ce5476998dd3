"""From decoded tracker signals to the shared vehicle vocabulary (``alarmhub_events.VehicleSignal``).

Two pure pieces, used by every tracker session (JT/T 808, GT06, H02) and by the JT/T 809 intake:

- :func:`signal_of` names what an alarm means for the vehicle, whatever the protocol called it
  (``illegal_ignition``, GT06 ``displacement``, 809 ``area_exit``…); ``attributes.signal`` carries it.
- :class:`VehicleWatch` is one vehicle's armed-state machine: it remembers where an armed vehicle was
  parked and its ignition, and turns positions and ignition edges into the vehicle's own signals:

  ================================  =========================================================
  armed, ignition rises             ``armed_ignition`` (parked: the vehicle has not moved yet)
  armed, ``moving_fixes`` fixes in  ``armed_movement`` when the ignition is on (or unknown),
  a row above the parked speed,     ``parked_displacement`` when it is off (towed, lifted);
  beyond the parked radius from     each once per armed period
  where it was parked, each farther
  away than the one before (one fix
  more with the ignition off)
  anything else                     nothing: GPS jitter of a parked vehicle (a few metres, a
                                    spurious speed now and then) never leaves the radius
                                    at speed, so it never alarms
  ================================  =========================================================

  Disarming forgets the parked spot; the next armed, parked fix sets it again.

  A vehicle's watch outlives its connection: the gateway keeps it in a :class:`WatchBook` by device, so a
  tracker that reconnects (they do, every few minutes to hours; a thief's power cut or jammer causes it)
  between the ignition and the drive-off still has its parked spot, and the drive is ``armed_movement``.

Every vehicle alarm carries the watch's context too (:meth:`VehicleWatch.context`): ``armed``,
``ignition``, ``parked``, ``speed_kmh``. Names are ``alarmhub_events.VehicleAttr``'s.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from alarmhub_events import VehicleAttr, VehicleSignal

__all__ = ["SIGNALS", "VehicleWatch", "WatchBook", "WatchConfig", "signal_of"]

S = VehicleSignal

#: Alarm names of every protocol (and of JT/T 809 warnings) → the shared signal. Names absent here carry
#: no ``signal`` (faults, driving behaviour).
SIGNALS: dict[str, VehicleSignal] = {
    # JT/T 808 alarm word (table 24)
    "emergency": S.SOS,
    "vehicle_stolen": S.THEFT_ALARM,
    "illegal_ignition": S.ARMED_IGNITION,
    "illegal_displacement": S.PARKED_DISPLACEMENT,
    "illegal_door_open": S.DOOR_OPEN,
    "power_cut": S.POWER_CUT,
    "area_in_out": S.GEOFENCE_ENTER,  # direction from the 0x12 item when present (see signal_of)
    "route_in_out": S.GEOFENCE_ENTER,
    "route_deviation": S.GEOFENCE_EXIT,
    "collision_warning": S.VIBRATION,
    "overspeed": S.OVERSPEED,
    # GT06 alarm byte / terminal information
    "sos": S.SOS,
    "power_off": S.POWER_CUT,
    "vibration": S.VIBRATION,
    "collision": S.VIBRATION,
    "geofence": S.GEOFENCE_EXIT,
    "geofence_enter": S.GEOFENCE_ENTER,
    "geofence_exit": S.GEOFENCE_EXIT,
    "displacement": S.PARKED_DISPLACEMENT,
    "removal": S.TAMPER,
    "tamper": S.TAMPER,
    "movement": S.PARKED_DISPLACEMENT,  # the terminal's own "moved while fortified" judgement
    "tow": S.PARKED_DISPLACEMENT,
    "door": S.DOOR_OPEN,
    # the watch's own
    "armed_ignition": S.ARMED_IGNITION,
    "armed_movement": S.ARMED_MOVEMENT,
    "parked_displacement": S.PARKED_DISPLACEMENT,
    # JT/T 809 warnings (0x1402 warn types, by the link's names)
    "theft": S.THEFT_ALARM,
    "hijack": S.SOS,
    "area_exit": S.GEOFENCE_EXIT,
    "area_enter": S.GEOFENCE_ENTER,
    "out_of_bounds": S.GEOFENCE_EXIT,
    "vehicle_moved": S.PARKED_DISPLACEMENT,
}


def signal_of(name: str, attributes: dict[str, Any] | None = None) -> VehicleSignal | None:
    """The shared signal of a decoded alarm ``name``; an area crossing says its direction when the
    terminal sent one (JT/T 808 item 0x12 ``area_direction``)."""
    sig = SIGNALS.get(name)
    if sig is S.GEOFENCE_ENTER and attributes and attributes.get("area_direction") == "out":
        return S.GEOFENCE_EXIT
    return sig


@dataclass(frozen=True, slots=True)
class WatchConfig:
    parked_speed_kmh: float = 10.0
    """At or above this speed an armed vehicle may be moving; GPS noise of a parked one stays below."""
    parked_radius_m: float = 100.0
    """Farther than this from where it was parked an armed vehicle has moved; jitter stays inside."""
    moving_fixes: int = 2
    """Fixes in a row that must be beyond the radius at speed, each farther: one wild fix (multipath) is
    not a drive. With the ignition off (or unknown) one more is needed: only the positions speak then."""


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine), metres."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6_371_000.0 * math.asin(min(1.0, math.sqrt(h)))


class VehicleWatch:
    """One vehicle's armed state, ignition, parked spot and last speed (see the module docstring)."""

    __slots__ = (
        "_beyond",
        "_beyond_m",
        "_config",
        "_reported",
        "anchor",
        "armed",
        "ignition",
        "moved_m",
        "speed_kmh",
    )

    def __init__(self, config: WatchConfig | None = None) -> None:
        self._config = config or WatchConfig()
        self.armed = False
        self.ignition: bool | None = None
        self.anchor: tuple[float, float] | None = None
        self.speed_kmh: float | None = None
        self.moved_m: float | None = None
        self._reported: set[VehicleSignal] = set()
        self._beyond = 0
        self._beyond_m = 0.0

    def arm(self, armed: bool) -> None:
        if armed != self.armed:
            self.armed = armed
            self.anchor = None
            self.moved_m = None
            self._beyond = 0
            self._reported.clear()

    @property
    def parked(self) -> bool | None:
        """Parked: ignition not on, not beyond the parked radius. None while nothing is known."""
        if self.anchor is None and self.ignition is None:
            return None
        if self.ignition:
            return False
        return self.moved_m is None or self.moved_m <= self._config.parked_radius_m

    def context(self) -> dict[str, Any]:
        """The watch's keys for any alarm of this vehicle."""
        ctx: dict[str, Any] = {VehicleAttr.ARMED: self.armed}
        if self.ignition is not None:
            ctx[VehicleAttr.IGNITION] = self.ignition
        parked = self.parked
        if parked is not None:
            ctx[VehicleAttr.PARKED] = parked
        if self.speed_kmh is not None:
            ctx[VehicleAttr.SPEED_KMH] = self.speed_kmh
        return ctx

    def ignition_changed(self, on: bool) -> list[tuple[VehicleSignal, dict[str, Any]]]:
        """An ignition (ACC) state; an edge to on while armed is ``armed_ignition``."""
        rose = on and self.ignition is not None and not self.ignition
        first = self.ignition is None
        was_parked = self.parked is not False
        self.ignition = on
        if self.armed and on and (rose or first) and was_parked:
            ctx = self.context()
            ctx[VehicleAttr.PARKED] = True  # switched on where it stood: nothing has moved yet
            return [(S.ARMED_IGNITION, {VehicleAttr.SIGNAL: S.ARMED_IGNITION.value, **ctx})]
        return []

    def position(
        self, lat: float, lon: float, speed_kmh: float
    ) -> list[tuple[VehicleSignal, dict[str, Any]]]:
        """A valid fix. Sets the parked spot of an armed, stationary vehicle; reports it leaving at speed."""
        self.speed_kmh = speed_kmh
        if not self.armed:
            return []
        cfg = self._config
        here = (lat, lon)
        if self.anchor is None:
            if speed_kmh < cfg.parked_speed_kmh and not self.ignition:
                self.anchor = here
                self.moved_m = 0.0
            return []
        self.moved_m = round(distance_m(self.anchor, here), 1)
        if speed_kmh < cfg.parked_speed_kmh or self.moved_m <= cfg.parked_radius_m:
            self._beyond = 0
            return []
        # a vehicle driving away gets farther fix by fix; multipath scatters around the spot
        self._beyond = self._beyond + 1 if self._beyond and self.moved_m > self._beyond_m + 10.0 else 1
        self._beyond_m = self.moved_m
        # with the ignition off a move needs one fix more: nothing but the positions says the car moves
        if self._beyond < cfg.moving_fixes + (not self.ignition):
            return []
        sig = S.PARKED_DISPLACEMENT if self.ignition is False else S.ARMED_MOVEMENT
        if sig in self._reported:
            return []
        self._reported.add(sig)
        ctx = self.context()
        ctx[VehicleAttr.PARKED] = False
        return [(sig, {VehicleAttr.SIGNAL: sig.value, **ctx, VehicleAttr.MOVED_M: self.moved_m})]


class WatchBook:
    """Each vehicle's :class:`VehicleWatch` by device id, shared by the sessions of one gateway process so
    the armed state, ignition and parked spot survive a reconnect. Bounded: past ``max_vehicles`` the
    vehicle heard from longest ago is forgotten (its next session starts a fresh watch, as before)."""

    __slots__ = ("_config", "_max", "_watches")

    def __init__(self, config: WatchConfig | None = None, max_vehicles: int = 200_000) -> None:
        self._config = config or WatchConfig()
        self._max = max(1, max_vehicles)
        self._watches: OrderedDict[str, VehicleWatch] = OrderedDict()

    def __len__(self) -> int:
        return len(self._watches)

    def get(self, device_id: str) -> VehicleWatch:
        """The device's watch (a new one the first time)."""
        w = self._watches.get(device_id)
        if w is None:
            w = self._watches[device_id] = VehicleWatch(self._config)
            if len(self._watches) > self._max:
                self._watches.popitem(last=False)
        else:
            self._watches.move_to_end(device_id)
        return w
