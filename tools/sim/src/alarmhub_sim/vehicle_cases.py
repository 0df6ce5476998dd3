"""Labelled vehicle cases as a JT/T 808 terminal reports them: timed 0x0200 location bodies.

One case is one real-world event of one vehicle — what its terminal sends, fix by fix, with the
vehicle's registry state (armed or not). Used by ``bench/eval_vehicle.py`` (through ingest-gps's
sessions into triage) and by the vehicle end-to-end test (over real sockets into the running stack).

==========================  =======  =====  ================================================================
case                        armed    label  what the terminal reports
==========================  =======  =====  ================================================================
``stolen_driven``           yes      theft  parked (ACC off), ignition on, drives off at 30–60 km/h
``towed``                   yes      theft  parked, ACC stays off, moves away at 15–30 km/h (on a truck)
``power_cut_then_moved``    yes      theft  parked, main power cut (alarm bit 8), then driven off
``owner_driving``           no       false  the owner switches on and drives (the car is not armed)
``parked_jitter``           yes      false  parked for an hour: GPS multipath, metres to tens of metres,
                                            spurious speeds now and then, a wild fix once in a while
``sos``                     either   sos    driving, the emergency button (alarm bit 0)
``towed_out_of_area``       yes      theft  towed as above, then leaves the area it was parked in (JT/T 808
                                            alarm bit 20 with item 0x12 "out"; GT06 alarm 0x05; H02 has no
                                            such bit, so there it is a plain tow)
==========================  =======  =====  ================================================================
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from alarmhub_events import ALARMS_RAW, AlarmEvent
from alarmhub_ingest_gps.protocols import gt06, h02, jt808
from alarmhub_ingest_gps.sessions import (
    DictDirectory,
    Gt06Session,
    H02Session,
    Jt808Session,
    SessionConfig,
    VehicleInfo,
)

__all__ = ["CASES", "GENUINE", "PROTOCOLS", "Fix", "VehicleCase", "build_case", "device_id", "run_case"]

#: Tracker protocols a case can be reported in: every one goes through the same vehicle watch
PROTOCOLS = ("jt808", "gt06", "h02")

#: case → label (``theft``, ``sos`` genuine; ``false`` not)
CASES: dict[str, str] = {
    "stolen_driven": "theft",
    "towed": "theft",
    "power_cut_then_moved": "theft",
    "owner_driving": "false",
    "parked_jitter": "false",
    "sos": "sos",
    "towed_out_of_area": "theft",  # last: the cases before it draw the same random numbers as before it came
}
GENUINE = frozenset(c for c, label in CASES.items() if label != "false")

ACC_ON = 0x01
LOCATED = 0x02
ALARM_EMERGENCY = 1 << 0
ALARM_POWER_CUT = 1 << 8
ALARM_AREA = 1 << 20
AREA_ID = 7
#: how far from its parked spot the towed car leaves the area it was parked in (an estate, a street block)
AREA_EXIT_M = 800.0
_M_PER_DEG_LAT = 111_195.0


@dataclass(frozen=True)
class Fix:
    t_s: float
    """seconds from the case's start"""
    lat: float
    lon: float
    speed_kmh: float
    acc: bool
    alarm_bits: int = 0

    def gt06(self, start: datetime, serial: int) -> bytes:
        """This fix as a GT06 packet (UTC): a 0x22 location with the ACC byte, or with an alarm a 0x16
        alarm packet (terminal information with ACC, alarm byte 0x01 SOS / 0x02 power cut / 0x05 fence exit)."""
        t = start + timedelta(seconds=self.t_s)
        stamp = (t.year % 100, t.month, t.day, t.hour, t.minute, t.second)
        block = gt06.encode_gps_content(
            local_time=stamp, lat=self.lat, lon=self.lon, speed_kmh=round(self.speed_kmh), heading=0
        )
        alarm = next((b for bit, b in _GT06_ALARM if self.alarm_bits & bit), 0)
        if not alarm:
            return gt06.encode(gt06.GPS_LBS_2, block + bytes([1 if self.acc else 0, 0, 0]), serial)
        # the cell block of an alarm packet carries its own length byte (which counts itself)
        info = bytes([0x40 | (0x02 if self.acc else 0), 0x04, 0x04, alarm, 0x02])
        return gt06.encode(0x16, block[:18] + b"\x09" + block[18:26] + info, serial)

    def h02(self, start: datetime, device: str) -> bytes:
        """This fix as an H02 ``V1`` text frame (UTC; status bits active low: ACC bit 10, SOS bit 1 for the
        emergency alarm, power cut bit 19)."""
        t = start + timedelta(seconds=self.t_s)
        status = 0xFFFFFFFF & ~(1 << h02.ACC_BIT if self.acc else 0)
        if self.alarm_bits & ALARM_EMERGENCY:
            status &= ~(1 << 1)
        if self.alarm_bits & ALARM_POWER_CUT:
            status &= ~(1 << 19)
        return h02.encode_v1(
            device,
            hms=t.strftime("%H%M%S"),
            dmy=t.strftime("%d%m%y"),
            lat=self.lat,
            lon=self.lon,
            knots=self.speed_kmh / 1.852,
            course=0,
            status=status,
        )

    def body(self, start: datetime, tz_hours: float = 8.0) -> bytes:
        local = (start + timedelta(seconds=self.t_s, hours=tz_hours)).replace(tzinfo=None)
        return jt808.encode_location_body(
            lat=self.lat,
            lon=self.lon,
            alarm_bits=self.alarm_bits,
            status_bits=LOCATED | (ACC_ON if self.acc else 0),
            speed_kmh=round(self.speed_kmh, 1),
            heading_deg=0,
            local_time=local,
            # item 0x12: which area was crossed (7) and which way (1: out)
            extra=bytes([0x12, 6, 1]) + AREA_ID.to_bytes(4, "big") + b"\x01"
            if self.alarm_bits & ALARM_AREA
            else b"",
        )


_GT06_ALARM = ((ALARM_EMERGENCY, 0x01), (ALARM_POWER_CUT, 0x02), (ALARM_AREA, 0x05))


@dataclass
class VehicleCase:
    name: str
    phone: str
    armed: bool
    fixes: list[Fix] = field(default_factory=list)

    @property
    def label(self) -> str:
        return CASES[self.name]


def _at(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    return lat + north_m / _M_PER_DEG_LAT, lon + east_m / (_M_PER_DEG_LAT * math.cos(math.radians(lat)))


def _distance_m(lat: float, lon: float, fix: Fix) -> float:
    north = (fix.lat - lat) * _M_PER_DEG_LAT
    east = (fix.lon - lon) * _M_PER_DEG_LAT * math.cos(math.radians(lat))
    return math.hypot(north, east)


def _parked(
    rng: random.Random, lat: float, lon: float, t: float, n: int, every_s: float, *, acc: bool = False
) -> tuple[list[Fix], float]:
    """``n`` fixes of a parked vehicle with realistic jitter (a few metres; a spurious speed now and then)."""
    out = []
    for _ in range(n):
        plat, plon = _at(lat, lon, rng.gauss(0, 6), rng.gauss(0, 6))
        speed = abs(rng.gauss(0, 1.5)) if rng.random() > 0.05 else rng.uniform(8, 20)
        out.append(Fix(t, plat, plon, round(speed, 1), acc))
        t += every_s
    return out, t


def _drive(
    rng: random.Random,
    lat: float,
    lon: float,
    t: float,
    n: int,
    every_s: float,
    speed: tuple[float, float],
    *,
    acc: bool,
    alarm_bits: int = 0,
) -> tuple[list[Fix], float]:
    """``n`` fixes driving away at ``speed`` (km/h), heading roughly one way."""
    out = []
    heading = rng.uniform(0, 2 * math.pi)
    north = east = 0.0
    for _ in range(n):
        v = rng.uniform(*speed)
        step = v / 3.6 * every_s
        heading += rng.gauss(0, 0.2)
        north += step * math.cos(heading)
        east += step * math.sin(heading)
        plat, plon = _at(lat, lon, north, east)
        out.append(Fix(t, plat, plon, round(v, 1), acc, alarm_bits))
        t += every_s
    return out, t


def build_case(name: str, phone: str, rng: random.Random, lat: float, lon: float) -> VehicleCase:
    """One labelled case of ``name`` for the terminal ``phone``, parked (or starting) at ``lat``/``lon``."""
    every = rng.choice((10.0, 15.0, 30.0))  # a terminal's reporting interval while driving
    park_every = rng.choice((30.0, 60.0))
    fixes: list[Fix] = []
    if name == "stolen_driven":
        fixes, t = _parked(rng, lat, lon, 0.0, rng.randint(3, 6), park_every)
        fixes.append(Fix(t, lat, lon, 0.0, True))  # ignition on, where it stood
        t += rng.uniform(5, 40)
        drive, t = _drive(rng, lat, lon, t, rng.randint(4, 8), every, (30, 60), acc=True)
        fixes += drive
        return VehicleCase(name, phone, True, fixes)
    if name == "towed":
        fixes, t = _parked(rng, lat, lon, 0.0, rng.randint(3, 6), park_every)
        drive, t = _drive(rng, lat, lon, t, rng.randint(5, 9), every, (15, 30), acc=False)
        return VehicleCase(name, phone, True, fixes + drive)
    if name == "towed_out_of_area":
        fixes, t = _parked(rng, lat, lon, 0.0, rng.randint(3, 6), park_every)
        drive, t = _drive(rng, lat, lon, t, 30, every, (15, 30), acc=False)
        out = next((i for i, f in enumerate(drive) if _distance_m(lat, lon, f) > AREA_EXIT_M), len(drive) - 2)
        left = [replace(f, alarm_bits=ALARM_AREA) for f in drive[out : out + 2]]  # out of the area, on
        return VehicleCase(name, phone, True, fixes + drive[:out] + left)
    if name == "power_cut_then_moved":
        fixes, t = _parked(rng, lat, lon, 0.0, rng.randint(3, 6), park_every)
        cut = ALARM_POWER_CUT
        fixes.append(Fix(t, lat, lon, 0.0, False, cut))  # the main power wire cut (backup battery reports)
        t += rng.uniform(20, 120)
        acc = rng.random() < 0.5  # hot-wired, or pushed/towed with the ignition off
        drive, t = _drive(rng, lat, lon, t, rng.randint(5, 9), every, (20, 50), acc=acc, alarm_bits=cut)
        return VehicleCase(name, phone, True, fixes + drive)
    if name == "owner_driving":
        fixes, t = _parked(rng, lat, lon, 0.0, rng.randint(2, 4), park_every)
        fixes.append(Fix(t, lat, lon, 0.0, True))
        t += rng.uniform(5, 30)
        drive, t = _drive(rng, lat, lon, t, rng.randint(6, 12), every, (20, 70), acc=True)
        return VehicleCase(name, phone, False, fixes + drive)
    if name == "parked_jitter":
        t = 0.0
        for _ in range(rng.randint(60, 120)):
            if rng.random() < 0.01:  # a wild fix: multipath off a tower, hundreds of metres, at "speed"
                plat, plon = _at(lat, lon, rng.uniform(150, 400), rng.uniform(-200, 200))
                fixes.append(Fix(t, plat, plon, round(rng.uniform(10, 30), 1), False))
            else:
                plat, plon = _at(lat, lon, rng.gauss(0, 12), rng.gauss(0, 12))
                speed = abs(rng.gauss(0, 2)) if rng.random() > 0.08 else rng.uniform(5, 25)
                fixes.append(Fix(t, plat, plon, round(speed, 1), False))
            t += park_every
        return VehicleCase(name, phone, True, fixes)
    if name == "sos":
        armed = rng.random() < 0.3
        drive, t = _drive(rng, lat, lon, 0.0, rng.randint(2, 4), every, (20, 60), acc=True)
        last = drive[-1]
        drive.append(Fix(t, last.lat, last.lon, last.speed_kmh, True, ALARM_EMERGENCY))
        return VehicleCase(name, phone, armed, drive)
    raise ValueError(f"unknown vehicle case {name!r}")


def device_id(phone: str, protocol: str = "jt808") -> str:
    """The terminal id a case's vehicle has in ``protocol``: its JT/T 808 phone, a 15-digit GT06 IMEI."""
    return "864" + phone[-12:].rjust(12, "0") if protocol == "gt06" else phone


def run_case(case: VehicleCase, start: datetime, protocol: str = "jt808") -> list[AlarmEvent]:
    """The alarms ingest-gps's own session of ``protocol`` publishes for ``case``'s reports, in order: a
    JT/T 808 terminal registers and authenticates, a GT06 logs in, an H02 just reports; the vehicle is in
    the registry, armed or not."""
    dev = device_id(case.phone, protocol)
    plate = f"粤B{case.phone[-5:]}"
    directory = DictDirectory({dev: VehicleInfo(dev, protocol, plate, 1, case.armed)})
    if protocol == "jt808":
        return _run_jt808(case, start, directory)
    session: Any
    if protocol == "gt06":
        session = Gt06Session(directory, SessionConfig(), peer="127.0.0.1:1")
        frames = [gt06.encode(gt06.LOGIN, bytes.fromhex("0" + dev), 1)]
        prev = 0
        for n, fix in enumerate(case.fixes, start=2):
            # a GT06 sends its alarm packet once, when the alarm arises; later fixes are plain locations
            frames.append((fix if fix.alarm_bits != prev else replace(fix, alarm_bits=0)).gt06(start, n))
            prev = fix.alarm_bits
    elif protocol == "h02":
        session = H02Session(directory, SessionConfig(), peer="127.0.0.1:1")
        frames = [fix.h02(start, dev) for fix in case.fixes]
    else:
        raise ValueError(f"unknown tracker protocol {protocol!r}")
    times = [start] * (len(frames) - len(case.fixes)) + [
        start + timedelta(seconds=f.t_s + 0.3) for f in case.fixes
    ]
    alarms: list[AlarmEvent] = []
    for frame, now in zip(frames, times, strict=True):
        out = session.feed(frame, now)
        alarms += [ev for topic, ev in out.publish if topic == ALARMS_RAW and isinstance(ev, AlarmEvent)]
    if not session.authenticated:
        raise RuntimeError(f"the {protocol} terminal was not admitted")
    return alarms


def _run_jt808(case: VehicleCase, start: datetime, directory: DictDirectory) -> list[AlarmEvent]:
    session = Jt808Session(directory, SessionConfig(), peer="127.0.0.1:1")
    out = session.feed(jt808.encode(jt808.T_REGISTER, case.phone, 1, bytes(37)), start)
    reply = jt808.decode(bytes(out.reply).strip(b"\x7e"))
    session.feed(jt808.encode(jt808.T_AUTH, case.phone, 2, reply.body[3:]), start)
    if not session.authenticated:
        raise RuntimeError("the terminal did not authenticate")
    alarms: list[AlarmEvent] = []
    for serial, fix in enumerate(case.fixes, start=3):
        now = start + timedelta(seconds=fix.t_s + 0.3)
        out = session.feed(jt808.encode(jt808.T_LOCATION, case.phone, serial & 0xFFFF, fix.body(start)), now)
        alarms += [ev for topic, ev in out.publish if topic == ALARMS_RAW and isinstance(ev, AlarmEvent)]
    return alarms
