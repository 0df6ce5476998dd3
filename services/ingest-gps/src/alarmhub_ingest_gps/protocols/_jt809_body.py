"""JT/T 809 message bodies (private to :mod:`.jt809`: its ``read`` calls the ``decode_*`` by business type,
and it re-exports the types and the ``encode_*``): login and link messages,
the vehicle head of 0x1200/0x1400/0x9200/0x9400, registrations, positions (2011 GNSS_DATA and the 2019
embedded JT/T 808 0x0200), alarms (0x1402 both editions, 0x1401/0x9401 supervision) — a ``decode_*`` for
what a lower platform sends, an ``encode_*`` for what we and the simulator send.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from ._common import FrameError


class Edition:
    V2011 = 2011
    V2019 = 2019


UP_EXG_MSG_RETURN_STARTUP_ACK = 0x1205
UP_EXG_MSG_RETURN_END_ACK = 0x1206
UP_WARN_MSG_ADPT_INFO = 0x1402
DOWN_WARN_MSG_URGE_TODO_REQ = 0x9401

#: WARN_TYPE of 0x1402/0x9401 (2011 table; the 2019 edition keeps these codes) → names.
WARN_TYPES: dict[int, str] = {
    0x0001: "overspeed",
    0x0002: "fatigue",
    0x0003: "emergency",
    0x0004: "area_enter",
    0x0005: "area_exit",
    0x0006: "road_blocked",
    0x0007: "dangerous_road",
    0x0008: "out_of_bounds",
    0x0009: "theft",
    0x000A: "hijack",
    0x000B: "route_deviation",
    0x000C: "vehicle_moved",
    0x000D: "overtime_driving",
    0x000E: "other",
    0x0010: "illegal_driving",
    0x0011: "forward_collision",
    0x0012: "lane_departure",
    0x0013: "tyre_pressure",
    0x0014: "dynamic_info_abnormal",
    0x00FF: "other",
    # 2019: platform-side warnings (table of JT/T 809-2019 UP_WARN_MSG_ADPT_INFO)
    0xA001: "parking_overtime",
    0xA002: "report_interval_abnormal",
    0xA003: "report_distance_abnormal",
    0xA004: "platform_disconnected",
    0xA005: "platform_transfer_abnormal",
    0xA006: "road_blocked",
    0xA007: "dangerous_road",
    0xA008: "rain_snow",
    0xA009: "driver_identity_abnormal",
    0xA00A: "terminal_abnormal",
    0xA00B: "platform_access_abnormal",
    0xA00C: "core_data_abnormal",
    0xA0FF: "other",
}


def _gbk(data: bytes) -> str:
    return data.split(b"\x00", 1)[0].decode("gbk", errors="replace").strip()


def _fixed(text: str, n: int) -> bytes:
    return text.encode("gbk")[:n].ljust(n, b"\x00")


def _need(body: bytes, n: int, what: str) -> None:
    if len(body) < n:
        raise FrameError(f"{what}: {len(body)} bytes, need {n}")


@dataclass(frozen=True, slots=True)
class Login:
    user_id: int
    password: str
    down_link_ip: str
    down_link_port: int
    gnss_center_id: int | None = None  # 2019 repeats it in the body


def decode_login(body: bytes, edition: int = Edition.V2011) -> Login:
    if edition == Edition.V2019:
        _need(body, 50, "0x1001")
        uid, pw, center, ip, port = struct.unpack_from(">I8sI32sH", body)
        return Login(uid, _gbk(pw), _gbk(ip), port, center)
    _need(body, 46, "0x1001")
    uid, pw, ip, port = struct.unpack_from(">I8s32sH", body)
    return Login(uid, _gbk(pw), _gbk(ip), port)


def encode_login(login: Login, edition: int = Edition.V2011) -> bytes:
    if edition == Edition.V2019:
        return struct.pack(
            ">I8sI32sH",
            login.user_id,
            _fixed(login.password, 8),
            login.gnss_center_id or 0,
            _fixed(login.down_link_ip, 32),
            login.down_link_port,
        )
    return struct.pack(
        ">I8s32sH",
        login.user_id,
        _fixed(login.password, 8),
        _fixed(login.down_link_ip, 32),
        login.down_link_port,
    )


def encode_login_reply(result: int, verify_code: int) -> bytes:
    """0x1002: result (1 byte) and the verify code the lower platform must present on the slave link."""
    return struct.pack(">BI", result, verify_code)


class LoginReply(NamedTuple):
    """0x1002 (a tuple: ``result, verify_code = reply``)."""

    result: int
    verify_code: int


def decode_login_reply(body: bytes) -> LoginReply:
    _need(body, 5, "0x1002")
    return LoginReply(*struct.unpack_from(">BI", body))


def encode_logout(user_id: int, password: str) -> bytes:
    return struct.pack(">I8s", user_id, _fixed(password, 8))


class Logout(NamedTuple):
    """0x1003."""

    user_id: int
    password: str


def decode_logout(body: bytes) -> Logout:
    _need(body, 12, "0x1003")
    uid, pw = struct.unpack_from(">I8s", body)
    return Logout(uid, _gbk(pw))


def encode_slave_login(verify_code: int) -> bytes:
    """0x9001: the verify code issued in 0x1002."""
    return struct.pack(">I", verify_code)


def decode_slave_login(body: bytes) -> int:
    _need(body, 4, "0x9001")
    return int.from_bytes(body[:4], "big")


@dataclass(frozen=True, slots=True)
class VehicleMessage:
    """The common head of 0x1200/0x1400/0x9200/0x9400: plate, plate colour, sub-type and its data."""

    plate: str
    colour: int
    sub_type: int
    data: bytes
    device_id: str = ""  # ``plate:colour``, filled in by ``decode_vehicle``

    def __post_init__(self) -> None:
        if not self.device_id:
            object.__setattr__(self, "device_id", f"{self.plate}:{self.colour}")


#: 2019 answers whose sub-type is followed by the request's sub-type and serial before the length
_ANSWERS_2019 = (UP_EXG_MSG_RETURN_STARTUP_ACK, UP_EXG_MSG_RETURN_END_ACK)


def decode_vehicle(body: bytes) -> VehicleMessage:
    """The 0x1200/0x9200 head. A 2019 0x1205/0x1206 puts the source sub-type (2) and serial (4) between
    the sub-type and the length; their data is then those six bytes and what the length counts."""
    _need(body, 28, "vehicle message")
    plate, colour, sub, ln = struct.unpack_from(">21sBHI", body)
    data = body[28 : 28 + ln]
    if len(data) != ln and sub in _ANSWERS_2019 and len(body) >= 34:
        ln = int.from_bytes(body[30:34], "big") + 10
        data = body[24 : 24 + ln]
    if len(data) != ln:
        raise FrameError(f"sub-message 0x{sub:04x} says {ln} bytes, has {len(data)}")
    name = _gbk(plate)
    if not name:
        raise FrameError("empty plate")
    return VehicleMessage(name, colour, sub, data, f"{name}:{colour}")


def _is_2019_warn(body: bytes) -> bool:
    """A 2019 0x1400/0x9400 body starts with the sub-type and the length of what follows (no plate)."""
    return len(body) >= 6 and body[0] in (0x14, 0x94) and int.from_bytes(body[2:6], "big") == len(body) - 6


def decode_warn_message(body: bytes, edition: int = Edition.V2011) -> VehicleMessage:
    """The head of 0x1400 (and 0x9400): the 2011 vehicle head, or the 2019 one without a plate.

    JT/T 809-2019 moved the plate into each alarm body, so a 2019 head is only the sub-type and the
    length. Platforms mix editions (a 2011 header around a 2019 body is common), so the layout is
    recognised from the bytes, not taken from the header. For a 2019 0x1402/0x1403 the plate and its
    colour are read from the alarm body; other 2019 sub-types carry none (``plate`` stays empty and the
    device id is the sub-type's).
    """
    if not _is_2019_warn(body):
        return decode_vehicle(body)
    sub = int.from_bytes(body[:2], "big")
    data = body[6:]
    plate, colour = "", 0
    if sub in (UP_WARN_MSG_ADPT_INFO, 0x1403) and len(data) >= 59:
        plate, colour = _gbk(data[37:58]), data[58]
    return VehicleMessage(plate, colour, sub, data, f"{plate}:{colour}" if plate else f"warn:{sub:04x}")


def encode_vehicle(plate: str, colour: int, sub_type: int, data: bytes) -> bytes:
    return struct.pack(">21sBHI", _fixed(plate, 21), colour, sub_type, len(data)) + data


@dataclass(frozen=True, slots=True)
class Registration:
    platform_id: str
    producer_id: str
    terminal_model: str
    terminal_id: str
    sim: str
    imei: str | None = None


def decode_1201(data: bytes, edition: int = Edition.V2011) -> Registration:
    if edition == Edition.V2019:
        _need(data, 110, "0x1201")
        p, m, model, imei, tid, sim = struct.unpack_from(">11s11s30s15s30s13s", data)
        return Registration(_gbk(p), _gbk(m), _gbk(model), _gbk(tid), _gbk(sim), _gbk(imei))
    _need(data, 61, "0x1201")
    p, m, model, tid, sim = struct.unpack_from(">11s11s20s7s12s", data)
    return Registration(_gbk(p), _gbk(m), _gbk(model), _gbk(tid), _gbk(sim))


@dataclass(frozen=True, slots=True)
class Position:
    """One forwarded fix. Coordinates as sent (``offset`` says whether they are GCJ-02)."""

    lat: float
    lon: float
    offset: bool
    time: datetime | None
    speed_kmh: float
    heading_deg: float | None
    altitude_m: float | None
    status_bits: int
    alarm_bits: int
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return bool(self.status_bits & 0b10)  # JT/T 808 status bit 1: positioned


_POS_2011 = struct.Struct(">BBBHBBBIIHHIHHII")
_CN = timedelta(hours=8)


def local_time(y: int, mo: int, d: int, h: int, mi: int, s: int) -> datetime | None:
    """A 2011 GNSS_DATA date and time (Beijing time) as UTC; None when it is not a date."""
    try:
        return datetime(y, mo, d, h, mi, s, tzinfo=UTC) - _CN  # the standard's times are Beijing time
    except ValueError:
        return None


def _position_2011(data: bytes, off: int = 0) -> Position:
    _need(data, off + 36, "GNSS_DATA")
    (enc, day, month, year, hh, mm, ss, lon, lat, vec1, vec2, vec3, direction, alt, state, alarm) = (
        _POS_2011.unpack_from(data, off)
    )
    return Position(
        lat / 1e6,
        lon / 1e6,
        enc == 1,
        local_time(year, month, day, hh, mm, ss),
        float(vec1),
        float(direction) if direction <= 360 else None,
        float(alt),
        state,
        alarm,
        {"vec2_kmh": vec2, "mileage_km": vec3},
    )


def _looks_2011(data: bytes, off: int) -> bool:
    """Whether the bytes at ``off`` start a 2011 GNSS_DATA date (day, month, 2-byte year, h, m, s)."""
    day, month, year, hh, mm, ss = struct.unpack_from(">BBHBBB", data, off)
    return 1 <= day <= 31 and 1 <= month <= 12 and 2000 <= year <= 2099 and hh < 24 and mm < 60 and ss < 61


def _position_2019(data: bytes, off: int = 0) -> tuple[Position, int]:
    from . import jt808  # the 2019 GNSS data is a JT/T 808 0x0200 body

    _need(data, off + 5, "GNSS data 2019")
    enc = data[off]
    ln = int.from_bytes(data[off + 1 : off + 5], "big")
    end = off + 5 + ln
    _need(data, end + 45, "GNSS data 2019")
    if ln == 35 and _looks_2011(data, off + 5):
        # a 2019 head around the 2011 GNSS_DATA (without its encrypt byte): seen from platforms that
        # upgraded their header only
        old = _position_2011(bytes([enc]) + data[off + 5 : end])
        return old, end + 45
    try:
        pos = jt808.decode_location(data[off + 5 : end])
    except FrameError:
        raise
    except Exception as exc:  # a malformed embedded 808 body is the peer's error
        raise FrameError(f"embedded 0x0200: {exc}") from exc
    extra: dict[str, Any] = dict(pos.attributes)
    alarms = {}
    p = end
    for i in range(3):
        pid, al = struct.unpack_from(">11sI", data, p)
        p += 15
        if _gbk(pid) or al:
            alarms[f"platform_{i + 1}"] = {"id": _gbk(pid), "alarm": al}
    if alarms:
        extra["platform_alarms"] = alarms
    return Position(
        pos.lat,
        pos.lon,
        enc == 1,
        pos.time,
        pos.speed_kmh,
        pos.heading_deg,
        pos.altitude_m,
        pos.status_bits,
        pos.alarm_bits,
        extra,
    ), p


def decode_1202(data: bytes, edition: int = Edition.V2011) -> Position:
    if edition == Edition.V2019:
        return _position_2019(data)[0]
    return _position_2011(data)


def decode_1203(data: bytes, edition: int = Edition.V2011) -> list[Position]:
    _need(data, 1, "0x1203")
    count = data[0]
    out: list[Position] = []
    if edition == Edition.V2019:
        p = 1
        for _ in range(count):
            pos, p = _position_2019(data, p)
            out.append(pos)
        return out
    _need(data, 1 + 36 * count, "0x1203")
    return [_position_2011(data, 1 + 36 * i) for i in range(count)]


def encode_position_2011(
    lat: float,
    lon: float,
    when: datetime,
    *,
    speed: int = 0,
    heading: int = 0,
    altitude: int = 0,
    status: int = 0b11,
    alarm: int = 0,
    offset: bool = False,
    vec2: int | None = None,
    mileage: int = 0,
) -> bytes:
    """A 36-byte 2011 GNSS_DATA (simulator/tests). ``when`` is converted to Beijing time; VEC2 defaults to VEC1."""
    t = when.astimezone(UTC) + _CN
    return _POS_2011.pack(
        int(offset),
        t.day,
        t.month,
        t.year,
        t.hour,
        t.minute,
        t.second,
        round(lon * 1e6),
        round(lat * 1e6),
        speed,
        speed if vec2 is None else vec2,
        mileage,
        heading,
        altitude,
        status,
        alarm,
    )


@dataclass(frozen=True, slots=True)
class Alarm:
    """0x1402 alarm report (UP_WARN_MSG_ADPT_INFO)."""

    warn_src: int
    warn_type: int
    time: datetime | None
    info_id: int
    content: str
    source_platform: str | None = None  # 2019
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return WARN_TYPES.get(self.warn_type, f"warn_{self.warn_type:04x}")


def _utc(seconds: int) -> datetime | None:
    try:
        return datetime.fromtimestamp(seconds, UTC) if 0 < seconds < 1 << 34 else None
    except (OverflowError, OSError, ValueError):
        return None


def _layout_1402(data: bytes, edition: int) -> int:
    """Which edition's 0x1402 layout the bytes follow: the one whose INFO_LENGTH ends the body."""
    fits_2011 = len(data) >= 19 and 19 + int.from_bytes(data[15:19], "big") == len(data)
    fits_2019 = len(data) >= 78 and 78 + int.from_bytes(data[74:78], "big") == len(data)
    if fits_2011 != fits_2019:
        return Edition.V2011 if fits_2011 else Edition.V2019
    return edition


def decode_1402(data: bytes, edition: int = Edition.V2011) -> Alarm:
    """0x1402 alarm: the 2011 layout (source, type, time, info id, text) or the 2019 one (source
    platform, type, time, start, end, plate, colour, destination platform, line, text), told apart by
    which one's length field fits, since platforms put either under either header."""
    if _layout_1402(data, edition) == Edition.V2019:
        _need(data, 78, "0x1402")
        src, wtype, wtime, start, end, plate, colour, dest, line, ln = struct.unpack_from(
            ">11sHQQQ21sB11sII", data
        )
        content = data[78 : 78 + ln]
        return Alarm(
            0,
            wtype,
            _utc(wtime),
            0,
            content.decode("gbk", errors="replace"),
            _gbk(src),
            {
                "start": start,
                "end": end,
                "plate": _gbk(plate),
                "colour": colour,
                "dest": _gbk(dest),
                "line_id": line,
            },
        )
    _need(data, 19, "0x1402")
    src, wtype, wtime, info_id, ln = struct.unpack_from(">BHQII", data)
    content = data[19 : 19 + ln]
    return Alarm(src, wtype, _utc(wtime), info_id, content.decode("gbk", errors="replace"))


def encode_1402(warn_type: int, when: datetime, info_id: int, content: str, *, warn_src: int = 1) -> bytes:
    raw = content.encode("gbk")
    return struct.pack(">BHQII", warn_src, warn_type, int(when.timestamp()), info_id, len(raw)) + raw


# ---------------------------------------------------------------- requests down and their answers


def encode_return_startup(reason: int = 0) -> bytes:
    """0x9205 start forwarding a vehicle's positions (reason: 0 entering area, 1 manual, 2 emergency …)."""
    return bytes([reason & 0xFF])


def encode_return_end(reason: int = 0) -> bytes:
    """0x9206 stop forwarding."""
    return bytes([reason & 0xFF])


@dataclass(frozen=True, slots=True)
class Supervision:
    """0x9401 alarm supervision request (DOWN_WARN_MSG_URGE_TODO_REQ)."""

    warn_src: int
    warn_type: int
    warn_time: datetime | None
    supervision_id: int
    end_time: datetime | None
    level: int
    supervisor: str
    tel: str
    email: str


_SUP = struct.Struct(">BHQIQB16s20s32s")


def encode_9401(s: Supervision) -> bytes:
    return _SUP.pack(
        s.warn_src,
        s.warn_type,
        int(s.warn_time.timestamp()) if s.warn_time else 0,
        s.supervision_id,
        int(s.end_time.timestamp()) if s.end_time else 0,
        s.level,
        _fixed(s.supervisor, 16),
        _fixed(s.tel, 20),
        _fixed(s.email, 32),
    )


def decode_9401(data: bytes) -> Supervision:
    _need(data, _SUP.size, "0x9401")
    src, wt, t, sid, end, lvl, who, tel, mail = _SUP.unpack_from(data)
    return Supervision(src, wt, _utc(t), sid, _utc(end), lvl, _gbk(who), _gbk(tel), _gbk(mail))


class SupervisionAnswer(NamedTuple):
    """0x1401 answer to a supervision: its id and the result, 0 processing / 1 handled / 2 no action / 3 later."""

    supervision_id: int
    result: int


def decode_1401(data: bytes) -> SupervisionAnswer:
    _need(data, 5, "0x1401")
    return SupervisionAnswer(int.from_bytes(data[:4], "big"), data[4])


def encode_1401(supervision_id: int, result: int) -> bytes:
    return struct.pack(">IB", supervision_id, result)
