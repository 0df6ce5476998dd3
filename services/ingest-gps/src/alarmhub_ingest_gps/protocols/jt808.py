"""JT/T 808-2011, -2013 and -2019 terminals: the frame, the header, and what a terminal's messages carry.

Pure (bytes in, dataclasses or bytes out) and in the one protocol vocabulary: :class:`Framer` splits a TCP
stream at the 0x7e delimiters, :func:`decode` undoes the 0x7d escaping, checks the XOR and reads the
header, :func:`read` gives the positions a message carries, :func:`reply` (and ``reply_*``) answers a
terminal, :func:`encode` (and ``encode_*``) builds what we send on our own initiative. The body
decoders live in :mod:`._jt808_body`, the builders in :mod:`._jt808_encode`, vendors' alarm items in
:mod:`._jt808_items` and vendors' position messages in :mod:`._jt808_vendor`; this module re-exports them.

Choices:

- The terminal number is kept as sent (BCD by the standard; hex digits a–f from some vendors' units, in
  lower case); a 2019 number of 20 digits with 8 leading zeros is the 12 of older editions (:func:`device_id`).
- A check code *or* a body length that does not match is tolerated and recorded on the :class:`Message`
  (terminals in the field get one wrong; the deployed decoders accept it); both wrong at once is refused.
  A 0x7d followed by anything but 01/02 is kept. A 2019 version flag over a header laid out as 2013 (the
  declared body length fits only that) is read as 2013.
- Refused: a frame shorter than a header, a bad sub-package index, impossible coordinates (latitude
  beyond 90°, longitude beyond 180°), RSA-encrypted bodies (answered "unsupported" by the session).
- Vendors' messages read: smart locks' 0x5501/0x5502 (one-byte serial, 0x4401 answer), 0x0900 type
  0xF0, the 0x0210 batch. Smart locks' text frames on the same port are not read.
- Altitude is read signed (below sea level exists: the Turpan depression), as traccar does.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from . import _jt808_vendor
from ._common import FrameError, Position
from ._jt808_body import (
    AuthRequest,
    Batch,
    GeneralResponse,
    Registration,
    _device_time,
    decode_auth,
    decode_batch,
    decode_general_response,
    decode_location,
    decode_position_reply,
    decode_registration,
)
from ._jt808_encode import (
    P_GENERAL_RESPONSE,
    P_LOCK_RESPONSE,
    P_QUERY_POSITION,
    P_REGISTER_RESPONSE,
    P_TEMP_TRACKING,
    P_TEXT,
    REG_NO_TERMINAL,
    REG_NO_VEHICLE,
    REG_OK,
    REG_TERMINAL_TAKEN,
    REG_VEHICLE_TAKEN,
    RESULT_ALARM_CONFIRMED,
    RESULT_BAD_MESSAGE,
    RESULT_FAILURE,
    RESULT_OK,
    RESULT_UNSUPPORTED,
    encode,
    encode_location_body,
    encode_query_position,
    encode_temporary_tracking,
    encode_text_message,
    escape,
    reply,
    reply_lock,
    reply_register,
    unescape,
    xor_check,
)

__all__ = [
    "ALARM_BITS",
    "MAX_FRAME",
    "POSITION_MESSAGES",
    "P_GENERAL_RESPONSE",
    "P_LOCK_RESPONSE",
    "P_QUERY_POSITION",
    "P_REGISTER_RESPONSE",
    "P_TEMP_TRACKING",
    "P_TEXT",
    "REG_NO_TERMINAL",
    "REG_NO_VEHICLE",
    "REG_OK",
    "REG_TERMINAL_TAKEN",
    "REG_VEHICLE_TAKEN",
    "RESULT_ALARM_CONFIRMED",
    "RESULT_BAD_MESSAGE",
    "RESULT_FAILURE",
    "RESULT_OK",
    "RESULT_UNSUPPORTED",
    "STATUS_BITS",
    "AuthRequest",
    "Batch",
    "Framer",
    "GeneralResponse",
    "Header",
    "Message",
    "Reassembler",
    "Registration",
    "decode",
    "decode_auth",
    "decode_batch",
    "decode_general_response",
    "decode_location",
    "decode_position_reply",
    "decode_registration",
    "device_id",
    "encode",
    "encode_location_body",
    "encode_query_position",
    "encode_temporary_tracking",
    "encode_text_message",
    "escape",
    "read",
    "reply",
    "reply_lock",
    "reply_register",
    "unescape",
    "xor_check",
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


#: Largest escaped frame accepted: a 1023-byte body plus a 2019 header and check, all escaped.
MAX_FRAME = 2 * (1023 + 21 + 1) + 2

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


class Framer:
    """Split a TCP byte stream into frames (delimiters stripped, escaping still in place).

    Garbage before a delimiter is dropped and counted; a frame longer than ``max_frame`` is dropped
    whole (until the next delimiter) so one peer cannot make the gateway buffer without bound.
    Escaping is undone by :func:`decode`, so the framer only scans for 0x7e — the fast path.
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


def decode(frame: bytes) -> Message:
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
