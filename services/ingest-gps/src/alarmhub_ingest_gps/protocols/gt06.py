"""GT06 (Concox and its many clones): framing, CRC-ITU, login, heartbeat, location, alarm, replies.

Frames are ``78 78 <len:1> <protocol:1> <content> <serial:2> <crc:2> 0d 0a`` or the long form
``79 79 <len:2> …``; ``len`` counts protocol number through CRC, and the CRC-ITU covers the length
field through the serial. The terminal expects a reply with the same protocol number and serial to
login (0x01), heartbeat (0x13/0x23) and alarm (0x16/0x26/0x27) packets; location packets
(0x12/0x22) are not answered. Coordinates are unsigned half-milliseconds of arc (value / 1,800,000
degrees) with the hemisphere in the course/status word.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from ._common import FrameError, Position, bcd_digits, crc_itu, local_to_utc

__all__ = [
    "ALARM_CODES",
    "MAX_FRAME",
    "Framer",
    "Gt06Message",
    "Heartbeat",
    "Login",
    "decode",
    "encode_frame",
    "parse_frame",
    "reply",
]

LOGIN = 0x01
GPS_LBS = 0x12
HEARTBEAT = 0x13
ALARM = 0x16
STRING_INFO = 0x15
GPS_LBS_2 = 0x22
HEARTBEAT_2 = 0x23
ALARM_2 = 0x26
ALARM_3 = 0x27
INFO = 0x94

#: Longest frame accepted (a 0x7979 length may claim 65,535 bytes; no message we serve needs 1 KiB).
MAX_FRAME = 1024

#: Alarm byte of 0x16/0x26 packets → readable name (Concox GT06 protocol, "alarm/language" field).
ALARM_CODES: dict[int, str] = {
    0x01: "sos",
    0x02: "power_cut",
    0x03: "vibration",
    0x04: "geofence_enter",
    0x05: "geofence_exit",
    0x06: "overspeed",
    0x09: "displacement",
    0x0E: "low_external_battery",
    0x0F: "low_battery",
    0x11: "power_off",
    0x13: "removal",
    0x14: "door",
    0x19: "low_internal_battery",
    0x29: "harsh_acceleration",
    0x30: "harsh_braking",
    0x2A: "sharp_turn",
    0x2B: "sharp_turn",
    0x2C: "collision",
}

#: Terminal-information bits 3–5 → alarm name (heartbeat and alarm packets).
TERMINAL_ALARM = {
    0b100: "sos",
    0b011: "low_battery",
    0b010: "power_cut",
    0b001: "vibration",
    0b110: "geofence",
    0b111: "removal",
}


class Framer:
    """Split a TCP stream into whole GT06 frames (start bits through ``0d 0a``).

    Resynchronizes on the next ``7878``/``7979`` after garbage or a bad stop sequence; a declared
    length above ``max_frame`` drops the start bits so a peer cannot make us wait for 64 KiB.
    """

    __slots__ = ("_buf", "dropped_bytes", "max_frame", "oversize")

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._buf = bytearray()
        self.max_frame = max_frame
        self.dropped_bytes = 0
        self.oversize = 0

    def _sync(self, buf: bytearray, pos: int) -> int:
        a = buf.find(b"\x78\x78", pos)
        b = buf.find(b"\x79\x79", pos)
        cands = [x for x in (a, b) if x >= 0]
        if not cands:
            keep = len(buf) - 1 if buf[-1:] in (b"\x78", b"\x79") else len(buf)
            self.dropped_bytes += keep - pos
            return -keep - 1
        start = min(cands)
        self.dropped_bytes += start - pos
        return start

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        frames: list[bytes] = []
        pos = 0
        while pos < len(buf):
            start = self._sync(buf, pos)
            if start < 0:
                pos = -start - 1
                break
            pos = start
            long = buf[pos] == 0x79
            head = 4 if long else 3
            if len(buf) - pos < head:
                break
            length = int.from_bytes(buf[pos + 2 : pos + 4], "big") if long else buf[pos + 2]
            total = head + length + 2
            if total > self.max_frame or length < 5:
                self.oversize += total > self.max_frame
                self.dropped_bytes += 2
                pos += 2
                continue
            if len(buf) - pos < total:
                break
            frame = bytes(buf[pos : pos + total])
            if frame[-2:] != b"\r\n":
                self.dropped_bytes += 2
                pos += 2
                continue
            frames.append(frame)
            pos += total
        del buf[:pos]
        return frames

    @property
    def buffered(self) -> int:
        return len(self._buf)


@dataclass(frozen=True, slots=True)
class Gt06Message:
    protocol: int
    content: bytes
    serial: int
    long: bool
    raw: bytes


@dataclass(frozen=True, slots=True)
class Login:
    imei: str
    type_id: int | None = None
    tz_minutes: int | None = None


@dataclass(frozen=True, slots=True)
class Heartbeat:
    terminal_info: int
    voltage_level: int | None
    gsm_signal: int | None
    alarm: int | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


def parse_frame(frame: bytes) -> Gt06Message:
    """Check start/stop bits, length and CRC-ITU of one frame from :class:`Framer`."""
    if len(frame) < 10 or frame[-2:] != b"\r\n":
        raise FrameError("not a GT06 frame")
    long = frame[:2] == b"\x79\x79"
    if not long and frame[:2] != b"\x78\x78":
        raise FrameError("bad start bits")
    head = 4 if long else 3
    length = int.from_bytes(frame[2:4], "big") if long else frame[2]
    if head + length + 2 != len(frame):
        raise FrameError(f"length {length} does not match frame of {len(frame)} bytes")
    (crc,) = struct.unpack_from(">H", frame, len(frame) - 4)
    computed = crc_itu(frame[2:-4])
    if crc != computed:
        raise FrameError(f"CRC {crc:04x} != computed {computed:04x}")
    protocol = frame[head]
    (serial,) = struct.unpack_from(">H", frame, len(frame) - 6)
    return Gt06Message(protocol, frame[head + 1 : -6], serial, long, frame)


def encode_frame(protocol: int, content: bytes, serial: int, *, long: bool = False) -> bytes:
    """A whole frame with length and CRC (replies; the simulator's terminal traffic)."""
    length = 1 + len(content) + 2 + 2
    if long or length > 0xFF:
        start, size = b"\x79\x79", length.to_bytes(2, "big")
    else:
        start, size = b"\x78\x78", bytes([length])
    body = size + bytes([protocol]) + content + struct.pack(">H", serial & 0xFFFF)
    return start + body + struct.pack(">H", crc_itu(body)) + b"\r\n"


def reply(msg: Gt06Message) -> bytes:
    """The acknowledgement a terminal waits for: same protocol number, same serial, empty content."""
    return encode_frame(msg.protocol, b"", msg.serial, long=msg.long)


def _login(c: bytes) -> Login:
    if len(c) < 8:
        raise FrameError("login shorter than 8 bytes")
    digits = bcd_digits(c[:8])
    imei = digits[1:] if digits.startswith("0") else digits
    type_id = tz = None
    if len(c) >= 12:
        type_id = int.from_bytes(c[8:10], "big")
        word = int.from_bytes(c[10:12], "big")
        minutes = (word >> 4) // 100 * 60 + (word >> 4) % 100
        tz = -minutes if word & 0x08 else minutes
    return Login(imei, type_id, tz)


def _terminal_attrs(info: int) -> dict[str, Any]:
    return {
        "armed": bool(info & 0x01),
        "acc": bool(info & 0x02),
        "charging": bool(info & 0x04),
        "gps_tracking": bool(info & 0x40),
        "oil_cut": bool(info & 0x80),
    }


def _heartbeat(c: bytes) -> Heartbeat:
    if len(c) < 1:
        raise FrameError("heartbeat without terminal information")
    info = c[0]
    voltage = c[1] if len(c) > 1 else None
    gsm = c[2] if len(c) > 2 else None
    alarm = c[3] if len(c) > 3 else None
    attrs = _terminal_attrs(info)
    if (info >> 3) & 0x07 in TERMINAL_ALARM:
        attrs["alarm"] = TERMINAL_ALARM[(info >> 3) & 0x07]
    return Heartbeat(info, voltage, gsm, alarm, attrs)


def _gps(c: bytes, tz_hours: float, *, alarm: bool) -> Position:
    if len(c) < 18:
        raise FrameError("GPS block shorter than 18 bytes")
    y, mo, d, h, mi, s = c[:6]
    time = local_to_utc(y, mo, d, h, mi, s, tz_hours)
    sats = c[6] & 0x0F
    lat_u, lon_u = struct.unpack_from(">II", c, 7)
    speed = c[15]
    (flags,) = struct.unpack_from(">H", c, 16)
    lat = lat_u / 1_800_000 * (1 if flags & 0x0400 else -1)
    lon = lon_u / 1_800_000 * (-1 if flags & 0x0800 else 1)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise FrameError(f"coordinates out of range ({lat}, {lon})")
    attrs: dict[str, Any] = {"satellites": sats}
    alarm_code = 0
    status = 0
    pos = 18
    if alarm:
        # LBS block with its own length byte, then terminal info, voltage, GSM, alarm, language.
        if len(c) > pos:
            lbs_len = c[pos]
            pos += lbs_len if lbs_len else 1
        if len(c) >= pos + 5:
            status = c[pos]
            attrs.update(_terminal_attrs(status))
            attrs["voltage_level"] = c[pos + 1]
            attrs["gsm_signal"] = c[pos + 2]
            alarm_code = c[pos + 3]
            if alarm_code:
                attrs["alarm"] = ALARM_CODES.get(alarm_code, f"0x{alarm_code:02x}")
            elif (status >> 3) & 0x07 in TERMINAL_ALARM:
                # many units leave the alarm byte 0 and say it in terminal-information bits 3–5
                attrs["alarm"] = TERMINAL_ALARM[(status >> 3) & 0x07]
    elif len(c) >= pos + 8:
        attrs["mcc"] = int.from_bytes(c[pos : pos + 2], "big")
        attrs["mnc"] = c[pos + 2]
        attrs["lac"] = int.from_bytes(c[pos + 3 : pos + 5], "big")
        attrs["cell_id"] = int.from_bytes(c[pos + 5 : pos + 8], "big")
        if len(c) >= pos + 9:
            attrs["acc"] = bool(c[pos + 8])
            status = 0x02 if c[pos + 8] else 0
    return Position(
        lat=lat,
        lon=lon,
        valid=bool(flags & 0x1000),
        time=time,
        speed_kmh=float(speed),
        heading_deg=float(flags & 0x03FF) if (flags & 0x03FF) <= 360 else None,
        alarm_bits=alarm_code,
        status_bits=status,
        attributes=attrs,
    )


def _info(c: bytes) -> dict[str, Any]:
    if not c:
        return {}
    sub = c[0]
    data = c[1:]
    if sub == 0x0A and len(data) >= 24:
        return {
            "imei": bcd_digits(data[:8]).lstrip("0"),
            "imsi": bcd_digits(data[8:16]).lstrip("0"),
            "iccid": data[16:26].hex().rstrip("f"),
        }
    if sub == 0x00 and len(data) >= 2:
        return {"external_voltage_v": int.from_bytes(data[:2], "big") / 100}
    return {"info_type": sub, "info": data.hex()}


def decode(
    msg: Gt06Message, *, tz_hours: float = 0.0
) -> Login | Heartbeat | Position | dict[str, Any] | None:
    """The payload of one message; ``None`` for types the gateway does not interpret (still answered)."""
    p = msg.protocol
    if p == LOGIN:
        return _login(msg.content)
    if p in (HEARTBEAT, HEARTBEAT_2):
        return _heartbeat(msg.content)
    if p in (GPS_LBS, GPS_LBS_2):
        return _gps(msg.content, tz_hours, alarm=False)
    if p in (ALARM, ALARM_2, ALARM_3):
        return _gps(msg.content, tz_hours, alarm=True)
    if p == INFO:
        return _info(msg.content)
    return None


def needs_reply(msg: Gt06Message) -> bool:
    """Which packets a terminal retransmits until answered."""
    return msg.protocol in (LOGIN, HEARTBEAT, HEARTBEAT_2, ALARM, ALARM_2, ALARM_3)


def gps_content(
    *,
    local_time: tuple[int, int, int, int, int, int],
    lat: float,
    lon: float,
    speed_kmh: int,
    heading: int,
    valid: bool = True,
    satellites: int = 9,
    lbs: bytes = b"\x01\xcc\x00\x28\x7d\x00\x1f\x71",
    acc: bool | None = None,
) -> bytes:
    """GPS block of 0x12/0x22/0x16 (simulator and benchmark)."""
    flags = (
        (heading & 0x03FF)
        | (0x1000 if valid else 0)
        | (0x0400 if lat >= 0 else 0)
        | (0x0800 if lon < 0 else 0)
    )
    out = bytes(local_time) + bytes([0xC0 | (satellites & 0x0F)])
    out += struct.pack(">IIBH", round(abs(lat) * 1_800_000), round(abs(lon) * 1_800_000), speed_kmh, flags)
    out += lbs
    if acc is not None:
        out += bytes([1 if acc else 0])
    return out
