"""JT/T 809 (2011 and 2019) platform-to-platform frames: pure bytes in, dataclasses out.

A frame is ``0x5b | header | body | crc16 | 0x5d`` with the flags escaped inside
(0x5b→5a 01, 0x5a→5a 02, 0x5d→5e 01, 0x5e→5e 02). The header is 22 bytes in the 2011 edition
(length, serial, message id, GNSS centre id, version, encrypt flag, key) and 30 in 2019 (an 8-byte
UTC time follows). The CRC is CRC-16/CCITT (poly 0x1021, init 0xFFFF, the "FALSE" variant) over header
and body as sent (after encryption, before escaping). With the encrypt flag set the body is xored with
the standard's linear-congruential stream keyed by M1/IA1/IC1 and the header's key.

The edition is not marked reliably in the frame (implementations send version 1.0.0 with a 2019
header), so decoding takes it as a parameter; ``detect_edition`` guesses it from the login frame's
length, and the link session keeps what the login showed.

``encode_frame`` and the body builders exist for replies, down-link requests, the simulator and tests.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ._common import FrameError

__all__ = [
    "MAX_FRAME",
    "Alarm",
    "Cipher",
    "Framer",
    "Header",
    "Login",
    "Position",
    "Registration",
    "VehicleMessage",
    "crc16_ccitt",
    "decode_1202",
    "decode_1203",
    "decode_1402",
    "decode_frame",
    "decode_login",
    "decode_vehicle",
    "decode_warn_message",
    "detect_edition",
    "encode_frame",
    "escape",
    "local_time",
    "unescape",
]

MAX_FRAME = 64 * 1024  # the standard sets no cap; a 0x1203 batch of a few hundred fixes fits easily

# Main link (lower → upper) and its answers
UP_CONNECT_REQ = 0x1001
UP_CONNECT_RSP = 0x1002
UP_DISCONNECT_REQ = 0x1003
UP_DISCONNECT_RSP = 0x1004
UP_LINKTEST_REQ = 0x1005
UP_LINKTEST_RSP = 0x1006
UP_DISCONNECT_INFORM = 0x1007
UP_CLOSELINK_INFORM = 0x1008
UP_EXG_MSG = 0x1200
UP_WARN_MSG = 0x1400
# Slave link (upper → lower)
DOWN_CONNECT_REQ = 0x9001
DOWN_CONNECT_RSP = 0x9002
DOWN_DISCONNECT_REQ = 0x9003
DOWN_DISCONNECT_RSP = 0x9004
DOWN_LINKTEST_REQ = 0x9005
DOWN_LINKTEST_RSP = 0x9006
DOWN_EXG_MSG = 0x9200
DOWN_WARN_MSG = 0x9400

# 0x1200 sub-types
UP_EXG_MSG_REGISTER = 0x1201
UP_EXG_MSG_REAL_LOCATION = 0x1202
UP_EXG_MSG_HISTORY_LOCATION = 0x1203
UP_EXG_MSG_RETURN_STARTUP_ACK = 0x1205
UP_EXG_MSG_RETURN_END_ACK = 0x1206
# 0x1400 sub-types
UP_WARN_MSG_URGE_TODO_ACK = 0x1401
UP_WARN_MSG_ADPT_INFO = 0x1402
# 0x9200 sub-types
DOWN_EXG_MSG_CAR_LOCATION = 0x9201
DOWN_EXG_MSG_RETURN_STARTUP = 0x9205
DOWN_EXG_MSG_RETURN_END = 0x9206
# 0x9400 sub-types
DOWN_WARN_MSG_URGE_TODO_REQ = 0x9401
DOWN_WARN_MSG_INFORM_TIPS = 0x9402

#: 0x1002 result codes (JT/T 809-2011 §4.5.1.2).
LOGIN_OK = 0x00
LOGIN_BAD_IP = 0x01
LOGIN_BAD_ACCESS_CODE = 0x02
LOGIN_UNKNOWN_USER = 0x03
LOGIN_BAD_PASSWORD = 0x04
LOGIN_BUSY = 0x05
LOGIN_OTHER = 0x06

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

_HEADER_2011 = struct.Struct(">IIHIBBBBI")
_HEADER_2019 = struct.Struct(">IIHIBBBBIQ")
_FLAGS = b"\x5b\x5d"


class Edition:
    V2011 = 2011
    V2019 = 2019


# ------------------------------------------------------------------------------------------- escaping


def escape(data: bytes) -> bytes:
    """Escape the payload between the flags (0x5a, 0x5b, 0x5d, 0x5e)."""
    if not any(b in data for b in (0x5A, 0x5B, 0x5D, 0x5E)):
        return data
    return (
        data.replace(b"\x5a", b"\x5a\x02")
        .replace(b"\x5b", b"\x5a\x01")
        .replace(b"\x5e", b"\x5e\x02")
        .replace(b"\x5d", b"\x5e\x01")
    )


def unescape(data: bytes) -> bytes:
    """Undo ``escape``. An escape byte followed by anything but 01/02 is kept as it is: platforms in the
    field send unescaped 0x5a/0x5e bytes (in a timestamp or an encrypted body, say) and the deployed
    decoders keep them; the CRC then tells whether the frame is whole. ``bytes.replace`` (C speed) is
    exact because every real escape pair is non-overlapping.
    """
    if 0x5A not in data and 0x5E not in data:
        return data
    return (
        data.replace(b"\x5a\x01", b"\x5b")
        .replace(b"\x5a\x02", b"\x5a")
        .replace(b"\x5e\x01", b"\x5d")
        .replace(b"\x5e\x02", b"\x5e")
    )


def crc16_ccitt(data: bytes, init: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor (``crc_hqx`` is exactly that).
    Over a frame and its own CRC it is 0."""
    return binascii.crc_hqx(data, init)


@dataclass(frozen=True, slots=True)
class Cipher:
    """The standard's stream cipher constants for one platform (M1, IA1, IC1)."""

    m1: int
    ia1: int
    ic1: int

    def apply(self, key: int, data: bytes) -> bytes:
        """Encrypt or decrypt (the same operation): ``key ← IA1·(key mod M1) + IC1``, xor byte with key>>20."""
        m1 = self.m1 or 1
        key = key or 1
        out = bytearray(data)
        ia1, ic1 = self.ia1, self.ic1
        for i in range(len(out)):
            key = (ia1 * (key % m1) + ic1) & 0xFFFFFFFF
            out[i] ^= (key >> 20) & 0xFF
        return bytes(out)


# ------------------------------------------------------------------------------------------- framing


class Framer:
    """Splits a TCP byte stream into unescaped frames (header … crc, flags removed).

    Bytes before a 0x5b are garbage and dropped (counted in ``discarded``); a frame longer than
    ``max_frame`` without its 0x5d is dropped and the search restarts at the next 0x5b. Some platforms
    do not escape at all: when the length field puts the end further than the first 0x5d and a 0x5d
    is there, the frame ends there (``decode_frame`` then finds the CRC matching the bytes as sent).
    """

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._buf = bytearray()
        self.max_frame = max_frame
        self.discarded = 0

    def feed(self, data: bytes) -> list[bytes]:
        """The complete frames in what arrived so far. Scans an immutable copy with ``find`` and slices
        each frame out once (hot path: a read holds thousands of frames); only an incomplete tail is
        kept for the next read."""
        buf = self._buf
        if buf:
            buf += data
            data = bytes(buf)
            buf.clear()
        elif type(data) is not bytes:
            data = bytes(data)
        frames: list[bytes] = []
        find, pos, n = data.find, 0, len(data)
        while True:
            start = find(b"\x5b", pos)
            if start < 0:
                self.discarded += n - pos
                pos = n
                break
            self.discarded += start - pos
            end = find(b"\x5d", start + 1)
            if end < 0:
                if n - start > self.max_frame:
                    self.discarded += n - start
                    pos = n
                else:
                    pos = start
                break
            stop = start + int.from_bytes(data[start + 1 : start + 5], "big") - 1
            if stop == end:  # the length field agrees (no escapes inside): the common case
                frames.append(data[start + 1 : end])
                pos = end + 1
                continue
            if end < stop and stop - start <= self.max_frame:
                # a 0x5d before where the length field puts the end: a platform that does not escape
                if stop >= n:
                    pos = start
                    break
                if data[stop] == 0x5D:
                    frames.append(data[start + 1 : stop])
                    pos = stop + 1
                    continue
            nxt = find(b"\x5b", start + 1, end)
            if nxt >= 0:  # a new start before the end: the earlier frame was cut off
                self.discarded += nxt - start
                pos = nxt
                continue
            frames.append(data[start + 1 : end])
            pos = end + 1
        if pos < n:
            buf += data[pos:]
        return frames

    @property
    def buffered(self) -> int:
        return len(self._buf)


# ------------------------------------------------------------------------------------------- header


@dataclass(frozen=True, slots=True)
class Header:
    length: int
    serial: int
    msg_id: int
    gnss_center_id: int
    version: tuple[int, int, int]
    encrypted: bool
    key: int
    time: int | None = None  # 2019: UTC seconds

    @property
    def size(self) -> int:
        return 30 if self.time is not None else 22


@dataclass(frozen=True, slots=True)
class Frame:
    header: Header
    body: bytes  # decrypted
    raw: bytes  # unescaped frame as received (without flags)

    @property
    def msg_id(self) -> int:
        return self.header.msg_id


def detect_edition(payload: bytes) -> int:
    """2011 or 2019 from an unescaped login frame's length (72 = 2011, 84 = 2019); 2011 when unsure."""
    n = len(payload) + 2  # the length field counts the flags too
    if n == 30 + 4 + 50:
        return Edition.V2019
    return Edition.V2011


def decode_frame(payload: bytes, *, edition: int = Edition.V2011, cipher: Cipher | None = None) -> Frame:
    """Check length and CRC, parse the header, decrypt the body. Raises FrameError on the peer's errors."""
    data = unescape(payload)
    hsize = 30 if edition == Edition.V2019 else 22
    if len(data) < hsize + 2 or crc16_ccitt(data[:-2]) != int.from_bytes(data[-2:], "big"):
        # a platform that does not escape at all: the CRC (and the length field) match the bytes as sent
        if data is not payload and len(payload) >= hsize + 2 and not crc16_ccitt(payload, 0xFFFF):
            data = bytes(payload)
        elif len(data) < hsize + 2:
            raise FrameError(f"frame of {len(data)} bytes is shorter than a header")
        else:
            raise FrameError("crc mismatch")
    if edition == Edition.V2019:
        ln, sn, mid, center, v1, v2, v3, enc, key, t = _HEADER_2019.unpack_from(data)
    else:
        ln, sn, mid, center, v1, v2, v3, enc, key = _HEADER_2011.unpack_from(data)
        t = None
    if ln != len(data) + 2:
        raise FrameError(f"length field {ln} but frame has {len(data) + 2} bytes")
    body = data[hsize:-2]
    if enc:
        if cipher is None:
            raise FrameError("encrypted frame but no keys for this platform")
        body = cipher.apply(key, body)
    header = Header(ln, sn, mid, center, (v1, v2, v3), bool(enc), key, t)
    return Frame(header, body, data)


def encode_frame(
    msg_id: int,
    body: bytes,
    *,
    serial: int,
    gnss_center_id: int,
    edition: int = Edition.V2011,
    version: tuple[int, int, int] = (1, 0, 0),
    cipher: Cipher | None = None,
    key: int = 0,
    time: int = 0,
) -> bytes:
    """A complete, escaped frame with flags (replies, down-link requests, simulator, tests)."""
    enc = cipher is not None
    if enc:
        assert cipher is not None
        body = cipher.apply(key, body)
    hsize = 30 if edition == Edition.V2019 else 22
    length = 1 + hsize + len(body) + 2 + 1
    if edition == Edition.V2019:
        head = _HEADER_2019.pack(
            length, serial & 0xFFFFFFFF, msg_id, gnss_center_id, *version, int(enc), key, time
        )
    else:
        head = _HEADER_2011.pack(length, serial & 0xFFFFFFFF, msg_id, gnss_center_id, *version, int(enc), key)
    data = head + body
    data += crc16_ccitt(data).to_bytes(2, "big")
    return b"\x5b" + escape(data) + b"\x5d"


# ------------------------------------------------------------------------------------------- bodies


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


def login_body(login: Login, edition: int = Edition.V2011) -> bytes:
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


def login_reply_body(result: int, verify_code: int) -> bytes:
    """0x1002: result (1 byte) and the verify code the lower platform must present on the slave link."""
    return struct.pack(">BI", result, verify_code)


def decode_login_reply(body: bytes) -> tuple[int, int]:
    _need(body, 5, "0x1002")
    return struct.unpack_from(">BI", body)


def logout_body(user_id: int, password: str) -> bytes:
    return struct.pack(">I8s", user_id, _fixed(password, 8))


def decode_logout(body: bytes) -> tuple[int, str]:
    _need(body, 12, "0x1003")
    uid, pw = struct.unpack_from(">I8s", body)
    return uid, _gbk(pw)


def slave_login_body(verify_code: int) -> bytes:
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


def vehicle_body(plate: str, colour: int, sub_type: int, data: bytes) -> bytes:
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


def position_2011(
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


def alarm_1402_body(
    warn_type: int, when: datetime, info_id: int, content: str, *, warn_src: int = 1
) -> bytes:
    raw = content.encode("gbk")
    return struct.pack(">BHQII", warn_src, warn_type, int(when.timestamp()), info_id, len(raw)) + raw


# ---------------------------------------------------------------- requests down and their answers


def return_startup_body(reason: int = 0) -> bytes:
    """0x9205 start forwarding a vehicle's positions (reason: 0 entering area, 1 manual, 2 emergency …)."""
    return bytes([reason & 0xFF])


def return_end_body(reason: int = 0) -> bytes:
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


def supervision_body(s: Supervision) -> bytes:
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


def decode_1401(data: bytes) -> tuple[int, int]:
    """0x1401 answer to a supervision: (supervision id, result 0 processing / 1 handled / 2 no action / 3 later)."""
    _need(data, 5, "0x1401")
    return int.from_bytes(data[:4], "big"), data[4]


def supervision_ack_body(supervision_id: int, result: int) -> bytes:
    return struct.pack(">IB", supervision_id, result)
