"""The vehicle watch: armed state, ignition and parked spot → the shared vehicle signals (pure)."""

from __future__ import annotations

import random

from alarmhub_events import VehicleSignal as S
from alarmhub_ingest_gps.signals import SIGNALS, VehicleWatch, WatchConfig, distance_m, signal_of

PARK = (22.5431, 114.0579)


def _north(m: float) -> tuple[float, float]:
    return PARK[0] + m / 111_195.0, PARK[1]


def _armed_parked() -> VehicleWatch:
    w = VehicleWatch(WatchConfig())
    w.arm(True)
    assert w.ignition_changed(False) == []
    assert w.position(*PARK, 0.0) == []
    return w


def test_ignition_while_armed_then_driving_off() -> None:
    w = _armed_parked()
    [(sig, attrs)] = w.ignition_changed(True)
    assert sig is S.ARMED_IGNITION
    assert attrs == {
        "signal": "armed_ignition",
        "armed": True,
        "ignition": True,
        "parked": True,
        "speed_kmh": 0.0,
    }
    assert w.position(*_north(40), 12.0) == []  # still inside the parked radius
    assert w.position(*_north(250), 40.0) == []  # one fix out at speed: not yet (a wild fix looks the same)
    [(sig, attrs)] = w.position(*_north(600), 45.0)
    assert sig is S.ARMED_MOVEMENT
    assert attrs["parked"] is False and attrs["ignition"] is True and attrs["speed_kmh"] == 45.0
    assert 590 < attrs["moved_m"] < 610
    assert w.position(*_north(900), 50.0) == []  # once per armed period


def test_towed_with_the_ignition_off_is_a_displacement() -> None:
    w = _armed_parked()
    assert w.position(*_north(300), 20.0) == [] and w.position(*_north(500), 22.0) == []
    assert w.position(*_north(450), 22.0) == []  # not farther: scattered fixes, not a tow; counting restarts
    assert w.position(*_north(700), 22.0) == []
    [(sig, attrs)] = w.position(*_north(900), 22.0)  # the ignition off: three fixes, each farther
    assert sig is S.PARKED_DISPLACEMENT and attrs["ignition"] is False and attrs["armed"] is True


def test_gps_jitter_of_a_parked_car_never_alarms() -> None:
    rng = random.Random(20)
    w = _armed_parked()
    for _ in range(2000):
        # multipath: metres to tens of metres off, now and then a spurious speed; now and then one wild fix
        off = rng.gauss(0, 15) if rng.random() > 0.01 else rng.uniform(150, 400)
        speed = abs(rng.gauss(0, 3)) if rng.random() > 0.05 else rng.uniform(10, 25)
        assert w.position(*_north(off), speed) == []
    assert w.parked is True


def test_an_unarmed_car_is_not_watched() -> None:
    w = VehicleWatch()
    assert w.ignition_changed(False) == [] and w.ignition_changed(True) == []
    for m in (0, 300, 900, 1500):
        assert w.position(*_north(m), 50.0) == []
    assert w.context() == {"armed": False, "ignition": True, "parked": False, "speed_kmh": 50.0}


def test_disarming_forgets_the_parked_spot() -> None:
    w = _armed_parked()
    w.arm(False)
    w.ignition_changed(True)
    w.position(*_north(2000), 50.0)
    w.ignition_changed(False)
    w.arm(True)
    w.position(*_north(2000), 0.0)  # parked where the owner left it: the new spot
    assert w.position(*_north(2030), 15.0) == [] and w.position(*_north(2040), 15.0) == []


def test_names_of_every_protocol_map_to_the_vocabulary() -> None:
    assert set(SIGNALS.values()) <= set(S)
    assert signal_of("area_in_out", {"area_direction": "out"}) is S.GEOFENCE_EXIT
    assert signal_of("area_in_out", {"area_direction": "in"}) is S.GEOFENCE_ENTER
    assert signal_of("geofence_exit") is S.GEOFENCE_EXIT and signal_of("area_exit") is S.GEOFENCE_EXIT
    assert signal_of("illegal_ignition") is S.ARMED_IGNITION and signal_of("removal") is S.TAMPER
    assert signal_of("fatigue") is None


def test_distance() -> None:
    assert abs(distance_m(PARK, _north(1000)) - 1000) < 1


def test_every_police_relevant_alarm_name_has_a_signal() -> None:
    # a decoder adding an alarm name that becomes a theft/SOS/tamper/geofence/power alarm must say which
    # vehicle signal it is, or triage's vehicle rules never see it
    from alarmhub_ingest_gps.sessions import ALARM_KINDS

    relevant = {"vehicle_theft", "vehicle_sos", "tamper", "geofence", "power_cut", "vibration"}
    missing = sorted(n for n, k in ALARM_KINDS.items() if k.value in relevant and n not in SIGNALS)
    assert missing == []
