"""What the platform sends a JT/T 808 terminal (private to :mod:`.jt808`, which re-exports it): the
escaping and check code of every frame, the frame builder, the replies and the commands.
"""

from __future__ import annotations

import struct
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .jt808 import Header

# Platform → terminal
P_GENERAL_RESPONSE = 0x8001
P_REGISTER_RESPONSE = 0x8100
P_QUERY_POSITION = 0x8201
P_TEMP_TRACKING = 0x8202
P_TEXT = 0x8300
P_LOCK_RESPONSE = 0x4401

#: General response results (0x8001 / 0x0001).
RESULT_OK, RESULT_FAILURE, RESULT_BAD_MESSAGE, RESULT_UNSUPPORTED, RESULT_ALARM_CONFIRMED = 0, 1, 2, 3, 4

#: 0x8100 results.
REG_OK, REG_VEHICLE_TAKEN, REG_NO_VEHICLE, REG_TERMINAL_TAKEN, REG_NO_TERMINAL = 0, 1, 2, 3, 4


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


def _phone_bcd(phone: str, is_2019: bool) -> bytes:
    width = 20 if is_2019 else 12
    digits = phone.rjust(width, "0")[-width:]
    return bytes.fromhex(digits)


def encode(
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


def _answer(h: Header, msg_id: int, serial: int, body: bytes) -> bytes:
    return encode(msg_id, h.phone, serial, body, version=h.version)


@lru_cache(maxsize=65536)
def _response_head(phone: str, version: int | None) -> tuple[bytes, int]:
    """The escaped 0x8001 header up to the serial (id, properties, [version,] phone) and its XOR."""
    head = encode(P_GENERAL_RESPONSE, phone, 0, b"\0" * 5, version=version)
    data = unescape(head[1:-1])[:-1]  # unescaped header + body, check code dropped
    prefix = data[:-7]  # everything before the 2-byte serial and the 5-byte body
    return b"\x7e" + escape(prefix), xor_check(prefix)


_TAIL = struct.Struct(">HHHBB")


def reply(h: Header, serial: int, result: int = RESULT_OK) -> bytes:
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


def reply_register(h: Header, serial: int, result: int, auth_code: str = "") -> bytes:
    """0x8100: the registration's serial, the result and, on success, the authentication code."""
    body = struct.pack(">HB", h.serial, result)
    if result == REG_OK:
        body += auth_code.encode("gbk")
    return _answer(h, P_REGISTER_RESPONSE, serial, body)


def reply_lock(h: Header) -> bytes:
    """0x4401: a smart lock's answer to a 0x5501/0x5502 (message id and result, a one-byte serial)."""
    data = (
        struct.pack(">HH", P_LOCK_RESPONSE, 3)
        + _phone_bcd(h.phone, False)
        + struct.pack(">BHB", 1, h.msg_id, 0)
    )
    return b"\x7e" + escape(data + bytes([xor_check(data)])) + b"\x7e"


def encode_query_position(phone: str, serial: int, *, version: int | None = None) -> bytes:
    """0x8201 — the terminal answers with 0x0201 carrying this serial."""
    return encode(P_QUERY_POSITION, phone, serial, b"", version=version)


def encode_temporary_tracking(
    phone: str, serial: int, interval_s: int, validity_s: int, *, version: int | None = None
) -> bytes:
    """0x8202 — report every ``interval_s`` for ``validity_s``; an interval of 0 stops tracking."""
    body = struct.pack(">HI", interval_s, validity_s)
    return encode(P_TEMP_TRACKING, phone, serial, body, version=version)


def encode_text_message(
    phone: str, serial: int, text: str, *, flags: int = 0x0C, version: int | None = None
) -> bytes:
    """0x8300 — text to the driver (flags 0x0C: display + TTS read-out); 2019 adds a text-type byte."""
    encoded = text.encode("gbk", errors="replace")
    body = bytes([flags]) + (b"\x01" if version is not None else b"") + encoded
    return encode(P_TEXT, phone, serial, body[:0x3FF], version=version)


def encode_location_body(
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
