"""The vehicle watch: armed state, ignition and parked spot → the shared vehicle signals (pure)."""

from __future__ import annotations

import random

from alarmhub_events import VehicleSignal as S
from alarmhub_ingest_gps.protocols import jt808
from alarmhub_ingest_gps.signals import SIGNALS, VehicleWatch, WatchBook, WatchConfig, distance_m, signal_of

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


def _stolen_across_a_reconnect(book: WatchBook | None) -> list[str | None]:
    """An armed car's JT/T 808 terminal: parked, ignition on, then the connection drops (a new session) and
    the car drives off on the new one. The signals the two sessions publish, in order."""
    from datetime import UTC, datetime, timedelta

    from alarmhub_events import ALARMS_RAW
    from alarmhub_ingest_gps.sessions import DictDirectory, Jt808Session, SessionConfig, VehicleInfo
    from alarmhub_sim.vehicle_cases import build_case

    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    case = build_case("stolen_driven", "013500000001", random.Random(3), *PARK)
    directory = DictDirectory({case.phone: VehicleInfo(case.phone, "jt808", "粤B1", 1, True)})

    def session() -> Jt808Session:
        s = Jt808Session(directory, SessionConfig(), "127.0.0.1:1", watches=book)
        out = s.feed(jt808.encode(jt808.T_REGISTER, case.phone, 1, bytes(37)), t0)
        reply = jt808.decode(bytes(out.reply).strip(b"\x7e"))
        s.feed(jt808.encode(jt808.T_AUTH, case.phone, 2, reply.body[3:]), t0)
        assert s.authenticated
        return s

    s = session()
    on = next(i for i, f in enumerate(case.fixes) if f.acc)
    signals = []
    for n, fix in enumerate(case.fixes):
        if n == on + 1:
            s = session()  # the terminal reconnects between the ignition and the drive-off
        at = t0 + timedelta(seconds=fix.t_s)
        out = s.feed(jt808.encode(jt808.T_LOCATION, case.phone, 3 + n, fix.body(t0)), at)
        signals += [e.attributes.get("signal") for t, e in out.publish if t == ALARMS_RAW]
    return signals


def test_a_reconnect_between_ignition_and_drive_off_keeps_the_parked_spot() -> None:
    # with the gateway's watch book the new session still knows where the car was parked: the drive is
    # armed_movement (dispatch); the ignition is not reported twice
    assert _stolen_across_a_reconnect(WatchBook()) == ["armed_ignition", "armed_movement"]
    # each session on its own (before): the new one saw a car already moving, set no parked spot and
    # never reported the drive — the stolen car stayed a "verify" with its owner
    assert _stolen_across_a_reconnect(None) == ["armed_ignition", "armed_ignition"]


def test_the_watch_book_is_bounded_and_keeps_the_recent() -> None:
    book = WatchBook(max_vehicles=2)
    a = book.get("a")
    assert book.get("a") is a
    book.get("b")
    book.get("a")  # a heard from again: b is now the oldest
    book.get("c")
    assert len(book) == 2 and book.get("a") is a
