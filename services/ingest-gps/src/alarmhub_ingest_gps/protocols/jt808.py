"""JT/T 808 (2011, 2013, 2019): framing, header, terminal messages, platform replies and commands.

Pure: bytes in, dataclasses or bytes out. The layers are the ones of the standard:

- **Frame** — ``0x7e`` delimits, ``0x7d 0x02``/``0x7d 0x01`` escape ``0x7e``/``0x7d`` inside; the
  last byte is the XOR of every byte of header and body. :class:`Framer` splits a TCP stream into
  unescaped frames and drops garbage between them; :func:`parse_frame` checks the XOR and the header.
- **Header** — message id, body properties (10-bit length, 3-bit encryption, sub-package flag and,
  from 2019, the version flag that adds a protocol-version byte and widens the terminal number from
  6 to 10 bytes), the terminal number (BCD by the standard, hex digits a–f from some vendors: kept as
  sent), serial number, and the sub-package total/index.
- **Vendors' items** of 0x0200 that carry alarms are read by :mod:`.jt808_items`.
- **Body** — one decoder per terminal message we serve (0x0001, 0x0002, 0x0003, 0x0100, 0x0102,
  0x0200, 0x0201, 0x0704); builders for the platform side (0x8001, 0x8100, 0x8201, 0x8202, 0x8300).

:func:`encode_frame` escapes and checksums any message; the gateway uses it for its replies and
commands, the simulator and benchmark for terminal traffic. Decoder tests use captured frames only.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from . import _jt808_vendor, jt808_items
from ._common import FrameError, Position, local_to_utc

__all__ = [
    "ALARM_BITS",
    "MAX_FRAME",
    "STATUS_BITS",
    "AuthRequest",
    "Framer",
    "GeneralResponse",
    "Header",
    "Message",
    "Reassembler",
    "Registration",
    "decode_auth",
    "decode_batch",
    "decode_general_response",
    "decode_location",
    "decode_position_reply",
    "decode_registration",
    "device_id",
    "encode_frame",
    "escape",
    "general_response",
    "location_body",
    "parse_frame",
    "query_position",
    "read",
    "register_response",
    "reply_lock",
    "temporary_tracking",
    "text_message",
    "unescape",
]

# Terminal → platform
T_GENERAL_RESPONSE = 0x0001
T_HEARTBEAT = 0x0002
T_LOGOUT = 0x0003
T_REGISTER = 0x0100
T_AUTH = 0x0102
T_LOCATION = 0x0200
T_POSITION_REPLY = 0x0201
T_BATCH = 0x0704
# Vendors' messages that carry positions (protocols/_jt808_vendor.py)
T_BATCH_VENDOR = 0x0210
T_TRANSPARENT = 0x0900
T_LOCK_LOCATION = 0x5501
T_LOCK_STORED = 0x5502
# Platform → terminal
P_GENERAL_RESPONSE = 0x8001
P_REGISTER_RESPONSE = 0x8100
P_QUERY_POSITION = 0x8201
P_TEMP_TRACKING = 0x8202
P_TEXT = 0x8300
P_LOCK_RESPONSE = 0x4401

#: Largest escaped frame accepted: a 1023-byte body plus a 2019 header and check, all escaped.
MAX_FRAME = 2 * (1023 + 21 + 1) + 2

#: General response results (0x8001 / 0x0001).
RESULT_OK, RESULT_FAILURE, RESULT_BAD_MESSAGE, RESULT_UNSUPPORTED, RESULT_ALARM_CONFIRMED = 0, 1, 2, 3, 4

#: 0x8100 results.
REG_OK, REG_VEHICLE_TAKEN, REG_NO_VEHICLE, REG_TERMINAL_TAKEN, REG_NO_TERMINAL = 0, 1, 2, 3, 4

#: Alarm word bits of 0x0200 (JT/T 808-2013 table 24; 2019 keeps them), by bit number.
ALARM_BITS: dict[int, str] = {
    0: "emergency",
    1: "overspeed",
    2: "fatigue",
    3: "danger_warning",
    4: "gnss_fault",
    5: "gnss_antenna_cut",
    6: "gnss_antenna_short",
    7: "power_low",
    8: "power_cut",
    9: "display_fault",
    10: "tts_fault",
    11: "camera_fault",
    12: "ic_card_fault",
    13: "overspeed_warning",
    14: "fatigue_warning",
    18: "driving_time_exceeded",
    19: "parking_overtime",
    20: "area_in_out",
    21: "route_in_out",
    22: "road_time_abnormal",
    23: "route_deviation",
    24: "vss_fault",
    25: "fuel_abnormal",
    26: "vehicle_stolen",
    27: "illegal_ignition",
    28: "illegal_displacement",
    29: "collision_warning",
    30: "rollover_warning",
    31: "illegal_door_open",
}

#: Status word bits of 0x0200 (table 25), single bits only; bits 8–9 (load) are decoded separately.
STATUS_BITS: dict[int, str] = {
    0: "acc",
    1: "positioned",
    2: "south",
    3: "west",
    4: "out_of_service",
    5: "coordinates_encrypted",
    10: "fuel_circuit_cut",
    11: "electric_circuit_cut",
    12: "doors_locked",
    13: "door1_open",
    14: "door2_open",
    15: "door3_open",
    16: "door4_open",
    17: "door5_open",
    18: "gps",
    19: "beidou",
    20: "glonass",
    21: "galileo",
    22: "moving",
}


# --------------------------------------------------------------------------------------- framing


def xor_check(data: bytes) -> int:
    """XOR of every byte, by folding the bytes as one integer — a few big-int operations instead of a
    Python loop per byte, which matters at tens of thousands of frames per second."""
    x = int.from_bytes(data, "little")
    width = len(data)
    while width > 1:
        half = (width + 1) // 2
        x = (x >> (half * 8)) ^ (x & ((1 << (half * 8)) - 1))
        width = half
    return x


def unescape(data: bytes) -> bytes:
    """Undo 0x7d escaping. A 0x7d followed by anything but 0x01/0x02 is kept as it is: terminals in the
    field send unescaped 0x7d bytes (in the terminal number, say), and the deployed decoders keep them;
    the check code then tells whether the frame is whole."""
    if 0x7D not in data:
        return data
    return data.replace(b"\x7d\x02", b"\x7e").replace(b"\x7d\x01", b"\x7d")


def escape(data: bytes) -> bytes:
    """Escape 0x7d then 0x7e so the frame body never contains a delimiter."""
    return data.replace(b"\x7d", b"\x7d\x01").replace(b"\x7e", b"\x7d\x02")


class Framer:
    """Split a TCP byte stream into frames (delimiters stripped, escaping still in place).

    Garbage before a delimiter is dropped and counted; a frame longer than ``max_frame`` is dropped
    whole (until the next delimiter) so one peer cannot make the gateway buffer without bound.
    Escaping is undone by :func:`parse_frame`, so the framer only scans for 0x7e — the fast path.
    """

    __slots__ = ("_buf", "_in_frame", "_skipping", "dropped_bytes", "max_frame", "oversize")

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._buf = bytearray()
        self._in_frame = False
        self._skipping = False
        self.max_frame = max_frame
        self.dropped_bytes = 0
        self.oversize = 0

    def feed(self, data: bytes) -> list[bytes]:
        frames: list[bytes] = []
        buf = self._buf
        buf += data
        pos = 0
        n = len(buf)
        while pos < n:
            if not self._in_frame:
                start = buf.find(0x7E, pos)
                if start < 0:
                    self.dropped_bytes += n - pos
                    pos = n
                    break
                self.dropped_bytes += start - pos
                self._in_frame = True
                pos = start + 1
                continue
            end = buf.find(0x7E, pos)
            if end < 0:
                if n - pos > self.max_frame:
                    self.oversize += 1
                    self.dropped_bytes += n - pos
                    self._skipping = True
                    pos = n
                break
            body = bytes(buf[pos:end])
            if self._skipping:
                # tail of an oversized frame: this delimiter ends it; the next one opens a frame.
                self._skipping = False
                self._in_frame = False
                self.dropped_bytes += len(body) + 1
                pos = end + 1
                continue
            if not body:
                # "7e7e": the second delimiter opens the frame (the first closed garbage or a frame).
                pos = end + 1
                continue
            if len(body) > self.max_frame:
                self.oversize += 1
                self.dropped_bytes += len(body)
            else:
                frames.append(body)
            self._in_frame = False
            pos = end + 1
        del buf[:pos]
        if self._skipping:
            buf.clear()
        return frames

    @property
    def buffered(self) -> int:
        return len(self._buf)


# --------------------------------------------------------------------------------------- header


@dataclass(slots=True)  # not frozen: a frozen __init__ costs ~2 µs per frame on the hot path
class Header:
    msg_id: int
    body_length: int
    encryption: int
    phone: str
    serial: int
    version: int | None = None
    """Protocol version byte of a 2019 header; ``None`` for 2011/2013 headers."""
    package_total: int | None = None
    package_index: int | None = None
    vendor_ack: bool = False
    """A lock report (0x5501/0x5502) whose attribute's bit 15 asks for a 0x4401 answer."""

    @property
    def is_2019(self) -> bool:
        return self.version is not None


@dataclass(slots=True)  # not frozen: a frozen __init__ costs ~2 µs per frame on the hot path
class Message:
    header: Header
    body: bytes
    raw: bytes
    """The frame as received, delimiters included, escaping in place (for DLQ and ``raw``)."""
    check_ok: bool = True
    """Whether the XOR check code matched (frames whose code does not are decoded all the same)."""
    length_ok: bool = True
    """Whether the body had the length its header declared."""


def device_id(phone: str) -> str:
    """The contract's device id: the terminal number as sent (lower-case hex digits, so BCD numbers read as
    their digits); a 2019 number of 20 digits with 8 leading zeros is shortened to the 12 of older editions."""
    if len(phone) == 20 and phone.startswith("00000000"):
        return phone[8:]
    return phone


def _flag_over_2013(data: bytes, props: int) -> bool:
    """The 2019 version flag set over a 2013 header, as some terminals send: the check code matches and the
    declared body length fits the 12-byte 2013 header exactly, not the 17-byte 2019 one."""
    head = 16 if props & 0x2000 else 12
    length = props & 0x03FF
    return len(data) - 1 - head == length and xor_check(data[:-1]) == data[-1]


def parse_frame(frame: bytes) -> Message:
    """Unescape a frame from :class:`Framer` (or with its 0x7e delimiters), check the XOR, parse the header.

    The terminal number is kept as sent: the standard says BCD, but some vendors' dashcams and trackers
    put hex digits a–f there, and a number that is not BCD is still the terminal's identity.
    A check code that does not match, or a body length other than the one declared, is recorded on the
    message (``check_ok``, ``length_ok``) rather than refused: the deployed decoders accept such frames
    from real terminals (firmware that checksums the escaped bytes, or counts the length wrongly), and
    TCP already guards the bytes in transit. Both wrong at once is refused: that is not a whole frame.
    A 2019 version flag over a header laid out as 2013 (the body length fits only that) is read as 2013.
    """
    if frame[:1] == b"\x7e":
        frame = frame[1:]
    if frame[-1:] == b"\x7e":
        frame = frame[:-1]
    raw = b"\x7e" + frame + b"\x7e"
    data = unescape(frame)
    if len(data) < 13:
        raise FrameError(f"frame too short ({len(data)} bytes)")
    check_ok = xor_check(data[:-1]) == data[-1]
    msg_id, props = struct.unpack_from(">HH", data, 0)
    length = props & 0x03FF
    vendor_ack = False
    if msg_id in (T_LOCK_LOCATION, T_LOCK_STORED):
        # smart locks' reports: a one-byte serial; the attribute's high bits are theirs (15: answer wanted)
        version, phone, serial, pos = None, data[4:10].hex(), data[10], 11
        vendor_ack = bool(props & 0x8000)
        props &= 0x03FF
    elif props & 0x4000 and not _flag_over_2013(data, props):
        if len(data) < 18:
            raise FrameError("2019 header truncated")
        version = data[4]
        phone = data[5:15].hex()
        (serial,) = struct.unpack_from(">H", data, 15)
        pos = 17
    else:
        version = None
        phone = data[4:10].hex()
        (serial,) = struct.unpack_from(">H", data, 10)
        pos = 12
    total = index = None
    if props & 0x2000:
        if len(data) < pos + 5:
            raise FrameError("sub-package header truncated")
        total, index = struct.unpack_from(">HH", data, pos)
        pos += 4
        if total == 0 or index == 0 or index > total:
            raise FrameError(f"bad sub-package {index}/{total}")
    body = data[pos:-1]
    if not check_ok and len(body) != length:
        raise FrameError(
            f"XOR check {data[-1]:02x} != computed {xor_check(data[:-1]):02x} and body length {len(body)} != declared {length}"
        )
    header = Header(msg_id, len(body), (props >> 10) & 0x07, phone, serial, version, total, index, vendor_ack)
    return Message(header, body, raw, check_ok, len(body) == length)


class Reassembler:
    """Sub-package reassembly, bounded: a message of at most ``max_parts`` parts, ``max_pending`` at once.

    Parts are keyed by message id and total; the serial of part 1 identifies the whole message
    (serials of part *k* are ``first + k - 1``, as the standard numbers them). Incomplete messages
    are evicted oldest first when the bound is hit.
    """

    __slots__ = ("_pending", "max_parts", "max_pending")

    def __init__(self, max_parts: int = 256, max_pending: int = 4) -> None:
        self._pending: dict[tuple[int, int, int], dict[int, bytes]] = {}
        self.max_parts = max_parts
        self.max_pending = max_pending

    def add(self, msg: Message) -> Message | None:
        """Return the whole message once its last part arrived, ``None`` while parts are missing."""
        h = msg.header
        if h.package_total is None or h.package_index is None:
            return msg
        if h.package_total > self.max_parts:
            raise FrameError(f"too many sub-packages ({h.package_total})")
        first_serial = (h.serial - h.package_index + 1) & 0xFFFF
        key = (h.msg_id, h.package_total, first_serial)
        parts = self._pending.get(key)
        if parts is None:
            while len(self._pending) >= self.max_pending:
                self._pending.pop(next(iter(self._pending)))
            parts = self._pending[key] = {}
        parts[h.package_index] = msg.body
        if len(parts) < h.package_total:
            return None
        del self._pending[key]
        body = b"".join(parts[i] for i in range(1, h.package_total + 1))
        whole = Header(h.msg_id, len(body), h.encryption, h.phone, first_serial, h.version)
        return Message(whole, body, msg.raw, msg.check_ok, msg.length_ok)


# --------------------------------------------------------------------------------------- bodies


@dataclass(frozen=True, slots=True)
class GeneralResponse:
    reply_serial: int
    reply_id: int
    result: int


@dataclass(frozen=True, slots=True)
class Registration:
    province: int
    city: int
    manufacturer: str
    model: str
    terminal_id: str
    plate_colour: int
    plate: str
    edition: str
    """``2011``, ``2013`` or ``2019`` — told apart by the version flag and the body length."""


@dataclass(frozen=True, slots=True)
class AuthRequest:
    code: str
    imei: str | None = None
    software_version: str | None = None


def _text(data: bytes) -> str:
    """GBK text, padding (NUL and spaces) stripped; undecodable bytes are replaced, never raised."""
    return data.rstrip(b"\x00 ").decode("gbk", errors="replace").strip("\x00 ")


def decode_general_response(body: bytes) -> GeneralResponse:
    if len(body) < 5:
        raise FrameError("0x0001 body shorter than 5 bytes")
    serial, msg_id, result = struct.unpack_from(">HHB", body)
    return GeneralResponse(serial, msg_id, result)


def decode_registration(body: bytes, *, is_2019: bool) -> Registration:
    if is_2019:
        if len(body) < 76:
            raise FrameError("0x0100 (2019) body shorter than 76 bytes")
        spans, edition = (11, 30, 30), "2019"
    elif len(body) >= 37:
        spans, edition = (5, 20, 7), "2013"
    elif len(body) >= 25:
        spans, edition = (5, 8, 7), "2011"
    else:
        raise FrameError(f"0x0100 body of {len(body)} bytes is too short")
    province, city = struct.unpack_from(">HH", body)
    pos = 4
    fields = []
    for span in spans:
        fields.append(_text(body[pos : pos + span]))
        pos += span
    colour = body[pos]
    plate = _text(body[pos + 1 :])
    return Registration(province, city, fields[0], fields[1], fields[2], colour, plate, edition)


def decode_auth(body: bytes, *, is_2019: bool) -> AuthRequest:
    if not is_2019:
        return AuthRequest(_text(body))
    if not body or len(body) < 1 + body[0]:
        raise FrameError("0x0102 (2019) auth code truncated")
    n = body[0]
    code = _text(body[1 : 1 + n])
    rest = body[1 + n :]
    imei = _text(rest[:15]) or None
    version = _text(rest[15:35]) or None
    return AuthRequest(code, imei, version)


def _additional(data: bytes, alarms: list[str], model: str | None = None) -> dict[str, Any]:
    """The 0x0200 additional-information items (table 27), by name; vendors' items as
    :mod:`.jt808_items` reads them (their alarms appended to ``alarms``); unknown ids kept as hex."""
    attrs: dict[str, Any] = {}
    pos, n = 0, len(data)
    while pos + 2 <= n:
        item, length = data[pos], data[pos + 1]
        value = data[pos + 2 : pos + 2 + length]
        pos += 2 + length
        if len(value) < length:
            attrs["truncated_item"] = f"{item:02x}"
            break
        if item == 0x01 and length == 4:
            attrs["odometer_km"] = int.from_bytes(value, "big") / 10
        elif item == 0x02 and length == 2:
            attrs["fuel_l"] = int.from_bytes(value, "big") / 10
        elif item == 0x03 and length == 2:
            attrs["tachograph_speed_kmh"] = int.from_bytes(value, "big") / 10
        elif item == 0x04 and length == 2:
            attrs["alarm_event_id"] = int.from_bytes(value, "big")
        elif item == 0x05 and length == 30:
            attrs["tyre_pressure"] = value.hex()
        elif item == 0x06 and length == 2:
            attrs["carriage_temp_c"] = int.from_bytes(value, "big", signed=True)
        elif item == 0x11 and length in (1, 5):
            attrs["overspeed_location_type"] = value[0]
            if length == 5:
                attrs["overspeed_area_id"] = int.from_bytes(value[1:], "big")
        elif item == 0x12 and length == 6:
            attrs["area_location_type"] = value[0]
            attrs["area_id"] = int.from_bytes(value[1:5], "big")
            attrs["area_direction"] = "in" if value[5] == 0 else "out"
        elif item == 0x13 and length == 7:
            attrs["road_section_id"] = int.from_bytes(value[:4], "big")
            attrs["road_section_time_s"] = int.from_bytes(value[4:6], "big")
            attrs["road_section_result"] = value[6]
        elif item == 0x25 and length == 4:
            attrs["vehicle_signal_bits"] = int.from_bytes(value, "big")
        elif item == 0x2A and length == 2:
            attrs["io_bits"] = int.from_bytes(value, "big")
        elif item == 0x2B and length == 4:
            attrs["analog_ad0"] = int.from_bytes(value[2:], "big")
            attrs["analog_ad1"] = int.from_bytes(value[:2], "big")
        elif item == 0x30 and length == 1:
            attrs["rssi"] = value[0]
        elif item == 0x31 and length == 1:
            attrs["satellites"] = value[0]
        elif not jt808_items.read(item, value, model, alarms, attrs):
            extra = attrs.setdefault("items", {})
            extra[f"{item:02x}"] = value.hex()
    return attrs


@lru_cache(maxsize=8192)
def _device_time(bcd: bytes, tz_hours: float) -> datetime | None:
    """The 6-byte BCD ``YYMMDDhhmmss`` local time in UTC; a fleet reports the same seconds, hence the cache."""
    t = bcd.hex()
    if not t.isdigit():
        return None
    return local_to_utc(
        int(t[0:2]), int(t[2:4]), int(t[4:6]), int(t[6:8]), int(t[8:10]), int(t[10:12]), tz_hours
    )


def decode_location(body: bytes, *, tz_hours: float = 8.0, model: str | None = None) -> Position:
    """A 0x0200 body (also the location part of 0x0201 and of each 0x0704 item).

    ``model``, when the operator registered one, selects the vendor readings that differ by model
    (see :mod:`.jt808_items`); without it only the readings common to all units apply.
    """
    if len(body) < 28:
        raise FrameError(f"location body of {len(body)} bytes, need 28")
    alarm, status, lat_u, lon_u, alt, speed, heading = struct.unpack_from(">IIIIHHH", body)
    time = _device_time(body[22:28], tz_hours)
    lat = lat_u / 1e6 * (-1 if status & 0x04 else 1)
    lon = lon_u / 1e6 * (-1 if status & 0x08 else 1)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise FrameError(f"coordinates out of range ({lat}, {lon})")
    vendor, standard = jt808_items.word_alarms(alarm, model)
    attrs = _additional(body[28:], vendor, model) if len(body) > 28 else {}
    if standard != alarm:
        attrs["alarm_word"] = alarm  # a model's own word: kept, not read by the standard's table
    return Position(
        lat=lat,
        lon=lon,
        valid=bool(status & 0x02),
        time=time,
        speed_kmh=speed / 10,
        heading_deg=float(heading) if heading <= 360 else None,
        altitude_m=float(alt if alt < 0x8000 else alt - 0x10000),
        alarm_bits=standard,
        status_bits=status,
        attributes=attrs,
        alarms=tuple(dict.fromkeys(vendor)),
    )


def decode_position_reply(
    body: bytes, *, tz_hours: float = 8.0, model: str | None = None
) -> tuple[int, Position]:
    """0x0201: the serial of the 0x8201 it answers, and the position."""
    if len(body) < 30:
        raise FrameError("0x0201 body shorter than 30 bytes")
    (serial,) = struct.unpack_from(">H", body)
    return serial, decode_location(body[2:], tz_hours=tz_hours, model=model)


#: messages that carry positions, all read by :func:`read`
POSITION_MESSAGES = frozenset(
    {T_LOCATION, T_POSITION_REPLY, T_BATCH, T_BATCH_VENDOR, T_TRANSPARENT, T_LOCK_LOCATION, T_LOCK_STORED}
)


def read(msg: Message, *, tz_hours: float = 8.0, model: str | None = None) -> list[Position]:
    """The positions a message carries (the standard's 0x0200/0x0201/0x0704 and the vendors' 0x0210,
    0x0900 type 0xF0, 0x5501/0x5502); none for any other message."""
    mid, body = msg.header.msg_id, msg.body
    if mid == T_LOCATION:
        return [decode_location(body, tz_hours=tz_hours, model=model)]
    if mid == T_BATCH:
        return decode_batch(body, tz_hours=tz_hours, model=model).positions
    if mid == T_POSITION_REPLY:
        return [decode_position_reply(body, tz_hours=tz_hours, model=model)[1]]
    if mid == T_BATCH_VENDOR:
        return _jt808_vendor.decode_batch_items(
            body, lambda item: decode_location(item, tz_hours=tz_hours, model=model)
        )
    if mid == T_TRANSPARENT:
        pos = _jt808_vendor.decode_transparent(body, _device_time, tz_hours)
        return [] if pos is None else [pos]
    if mid in (T_LOCK_LOCATION, T_LOCK_STORED):
        return [_jt808_vendor.decode_lock_location(body, stored=mid == T_LOCK_STORED)]
    return []


@dataclass(frozen=True, slots=True)
class Batch:
    kind: int
    """0: regular batch, 1: blind-area (stored while offline) upload."""
    positions: list[Position] = field(default_factory=list)


def decode_batch(body: bytes, *, tz_hours: float = 8.0, model: str | None = None) -> Batch:
    """0x0704: item count, type, then ``length`` + location body per item."""
    if len(body) < 3:
        raise FrameError("0x0704 body shorter than 3 bytes")
    count, kind = struct.unpack_from(">HB", body)
    pos = 3
    positions = []
    for _ in range(count):
        if pos + 2 > len(body):
            raise FrameError("0x0704 item header truncated")
        (length,) = struct.unpack_from(">H", body, pos)
        item = body[pos + 2 : pos + 2 + length]
        if len(item) < length:
            raise FrameError("0x0704 item truncated")
        positions.append(decode_location(item, tz_hours=tz_hours, model=model))
        pos += 2 + length
    return Batch(kind, positions)


# --------------------------------------------------------------------------------------- encoding


def _phone_bcd(phone: str, is_2019: bool) -> bytes:
    width = 20 if is_2019 else 12
    digits = phone.rjust(width, "0")[-width:]
    return bytes.fromhex(digits)


def encode_frame(
    msg_id: int,
    phone: str,
    serial: int,
    body: bytes = b"",
    *,
    version: int | None = None,
    package: tuple[int, int] | None = None,
) -> bytes:
    """A complete escaped frame. ``version`` set → 2019 header (version flag, 10-byte phone)."""
    if len(body) > 0x3FF:
        raise ValueError("body longer than 1023 bytes: split it into sub-packages")
    props = len(body)
    if package is not None:
        props |= 0x2000
    if version is not None:
        props |= 0x4000
        head = struct.pack(">HHB", msg_id, props, version) + _phone_bcd(phone, True)
    else:
        head = struct.pack(">HH", msg_id, props) + _phone_bcd(phone, False)
    head += struct.pack(">H", serial & 0xFFFF)
    if package is not None:
        head += struct.pack(">HH", *package)
    data = head + body
    return b"\x7e" + escape(data + bytes([xor_check(data)])) + b"\x7e"


def _reply(h: Header, msg_id: int, serial: int, body: bytes) -> bytes:
    return encode_frame(msg_id, h.phone, serial, body, version=h.version)


@lru_cache(maxsize=65536)
def _response_head(phone: str, version: int | None) -> tuple[bytes, int]:
    """The escaped 0x8001 header up to the serial (id, properties, [version,] phone) and its XOR."""
    head = encode_frame(P_GENERAL_RESPONSE, phone, 0, b"\0" * 5, version=version)
    data = unescape(head[1:-1])[:-1]  # unescaped header + body, check code dropped
    prefix = data[:-7]  # everything before the 2-byte serial and the 5-byte body
    return b"\x7e" + escape(prefix), xor_check(prefix)


_TAIL = struct.Struct(">HHHBB")


def general_response(h: Header, serial: int, result: int = RESULT_OK) -> bytes:
    """0x8001 answering the terminal message whose header is ``h``.

    One per location frame, so the constant part of the frame (header up to the serial, escaped,
    and its XOR) is built once per terminal and only the serial, body and check are packed here.
    """
    prefix, check = _response_head(h.phone, h.version)
    serial &= 0xFFFF
    reply_serial, reply_id = h.serial, h.msg_id
    x = serial ^ reply_serial ^ reply_id
    check ^= (x >> 8) ^ (x & 0xFF) ^ result
    tail = _TAIL.pack(serial, reply_serial, reply_id, result, check)
    if b"\x7e" in tail or b"\x7d" in tail:
        tail = escape(tail)
    return prefix + tail + b"\x7e"


def register_response(h: Header, serial: int, result: int, auth_code: str = "") -> bytes:
    """0x8100: the registration's serial, the result and, on success, the authentication code."""
    body = struct.pack(">HB", h.serial, result)
    if result == REG_OK:
        body += auth_code.encode("gbk")
    return _reply(h, P_REGISTER_RESPONSE, serial, body)


def reply_lock(h: Header) -> bytes:
    """0x4401: a smart lock's answer to a 0x5501/0x5502 (message id and result, a one-byte serial)."""
    data = (
        struct.pack(">HH", P_LOCK_RESPONSE, 3)
        + _phone_bcd(h.phone, False)
        + struct.pack(">BHB", 1, h.msg_id, 0)
    )
    return b"\x7e" + escape(data + bytes([xor_check(data)])) + b"\x7e"


def query_position(phone: str, serial: int, *, version: int | None = None) -> bytes:
    """0x8201 — the terminal answers with 0x0201 carrying this serial."""
    return encode_frame(P_QUERY_POSITION, phone, serial, b"", version=version)


def temporary_tracking(
    phone: str, serial: int, interval_s: int, validity_s: int, *, version: int | None = None
) -> bytes:
    """0x8202 — report every ``interval_s`` for ``validity_s``; an interval of 0 stops tracking."""
    body = struct.pack(">HI", interval_s, validity_s)
    return encode_frame(P_TEMP_TRACKING, phone, serial, body, version=version)


def text_message(
    phone: str, serial: int, text: str, *, flags: int = 0x0C, version: int | None = None
) -> bytes:
    """0x8300 — text to the driver (flags 0x0C: display + TTS read-out); 2019 adds a text-type byte."""
    encoded = text.encode("gbk", errors="replace")
    body = bytes([flags]) + (b"\x01" if version is not None else b"") + encoded
    return encode_frame(P_TEXT, phone, serial, body[:0x3FF], version=version)


def location_body(
    *,
    lat: float,
    lon: float,
    alarm_bits: int = 0,
    status_bits: int = 0x02,
    altitude_m: int = 0,
    speed_kmh: float = 0.0,
    heading_deg: int = 0,
    local_time: datetime,
    extra: bytes = b"",
) -> bytes:
    """A 0x0200 body (for the simulator and benchmark); ``local_time`` is the terminal's wall clock."""
    status = status_bits | (0x04 if lat < 0 else 0) | (0x08 if lon < 0 else 0)
    t = bytes.fromhex(local_time.strftime("%y%m%d%H%M%S"))
    return (
        struct.pack(
            ">IIIIHHH",
            alarm_bits & 0xFFFFFFFF,
            status,
            round(abs(lat) * 1e6),
            round(abs(lon) * 1e6),
            altitude_m & 0xFFFF,
            round(speed_kmh * 10),
            heading_deg,
        )
        + t
        + extra
    )
