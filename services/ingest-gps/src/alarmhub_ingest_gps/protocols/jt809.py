"""JT/T 809-2011 and -2019 platform links: the frame, the header, and (re-exported from
:mod:`._jt809_body`) the bodies, in the one protocol vocabulary: :class:`Framer` splits a stream at the
flags, :func:`decode` unescapes, checks length and CRC, parses the header and decrypts the body,
:func:`read` reads a frame's body by its business type (message id; the vehicle head of 0x1200/0x1400/
0x9200/0x9400) and a vehicle message's data by its sub-type (0x1201/0x1202/0x1203/0x1401/0x1402/0x9401),
:func:`encode` builds a frame and ``encode_*`` build bodies. There is no ``reply``: the link session in
``jt809/`` frames its answers, since it holds the serial, the centre id and the keys.

A frame is ``0x5b | header | body | crc16 | 0x5d`` with the flags escaped inside
(0x5b→5a 01, 0x5a→5a 02, 0x5d→5e 01, 0x5e→5e 02). The header is 22 bytes in the 2011 edition
(length, serial, message id, GNSS centre id, version, encrypt flag, key) and 30 in 2019 (an 8-byte
UTC time follows). The CRC is CRC-16/CCITT (poly 0x1021, init 0xFFFF, the "FALSE" variant) over header
and body as sent (after encryption, before escaping). With the encrypt flag set the body is xored with
the standard's linear-congruential stream keyed by M1/IA1/IC1 and the header's key.

Choices:

- The edition is not marked reliably in the frame (implementations send version 1.0.0 with a 2019
  header), so decoding takes it as a parameter; :func:`detect_edition` guesses it from the login
  frame's length and the link session keeps what the login showed. Alarm bodies (0x1400 family) and
  positions are recognised by their layout, since platforms mix editions (a 2019 header around a 2011
  GNSS body, a 2011 header around a 2019 alarm).
- Tolerated: an escape byte not followed by 01/02 (kept); a platform that does not escape at all
  (framed by the length field, its CRC matching the bytes as sent).
- Refused: a CRC that matches neither view, a length field that contradicts the frame, an encrypted
  frame without the platform's keys, a sub-message whose length does not fit.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass
from typing import overload

from . import _jt809_body as _body
from ._common import FrameError
from ._jt809_body import (
    DOWN_WARN_MSG_URGE_TODO_REQ,
    UP_EXG_MSG_RETURN_END_ACK,
    UP_EXG_MSG_RETURN_STARTUP_ACK,
    UP_WARN_MSG_ADPT_INFO,
    WARN_TYPES,
    Alarm,
    Edition,
    Login,
    LoginReply,
    Logout,
    Position,
    Registration,
    Supervision,
    SupervisionAnswer,
    VehicleMessage,
    encode_1401,
    encode_1402,
    encode_9401,
    encode_login,
    encode_login_reply,
    encode_logout,
    encode_position_2011,
    encode_return_end,
    encode_return_startup,
    encode_slave_login,
    encode_vehicle,
    local_time,
)

__all__ = [
    "DOWN_WARN_MSG_URGE_TODO_REQ",
    "MAX_FRAME",
    "UP_EXG_MSG_RETURN_END_ACK",
    "UP_EXG_MSG_RETURN_STARTUP_ACK",
    "UP_WARN_MSG_ADPT_INFO",
    "WARN_TYPES",
    "Alarm",
    "Cipher",
    "Edition",
    "Frame",
    "FrameBody",
    "Framer",
    "Header",
    "Login",
    "LoginReply",
    "Logout",
    "Position",
    "Registration",
    "Supervision",
    "SupervisionAnswer",
    "VehicleBody",
    "VehicleMessage",
    "crc16_ccitt",
    "decode",
    "detect_edition",
    "encode",
    "encode_1401",
    "encode_1402",
    "encode_9401",
    "encode_login",
    "encode_login_reply",
    "encode_logout",
    "encode_position_2011",
    "encode_return_end",
    "encode_return_startup",
    "encode_slave_login",
    "encode_vehicle",
    "escape",
    "local_time",
    "read",
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
# 0x1400 sub-types
UP_WARN_MSG_URGE_TODO_ACK = 0x1401
# 0x9200 sub-types
DOWN_EXG_MSG_CAR_LOCATION = 0x9201
DOWN_EXG_MSG_RETURN_STARTUP = 0x9205
DOWN_EXG_MSG_RETURN_END = 0x9206
# 0x9400 sub-types
DOWN_WARN_MSG_INFORM_TIPS = 0x9402

#: 0x1002 result codes (JT/T 809-2011 §4.5.1.2).
LOGIN_OK = 0x00
LOGIN_BAD_IP = 0x01
LOGIN_BAD_ACCESS_CODE = 0x02
LOGIN_UNKNOWN_USER = 0x03
LOGIN_BAD_PASSWORD = 0x04
LOGIN_BUSY = 0x05
LOGIN_OTHER = 0x06


_HEADER_2011 = struct.Struct(">IIHIBBBBI")
_HEADER_2019 = struct.Struct(">IIHIBBBBIQ")
_FLAGS = b"\x5b\x5d"


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
    is there, the frame ends there (:func:`decode` then finds the CRC matching the bytes as sent).
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


def decode(payload: bytes, *, edition: int = Edition.V2011, cipher: Cipher | None = None) -> Frame:
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


def encode(
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

#: what :func:`read` gives for a frame, by message id: 0x1001 ``Login``, 0x1002 ``LoginReply``, 0x1003
#: ``Logout``, 0x9001 the verify code, 0x1200/0x1400/0x9200/0x9400 the vehicle head
#: (``VehicleMessage``, its data still to ``read``); ``None`` for a message without a body to read
FrameBody = Login | LoginReply | Logout | int | VehicleMessage | None
#: what :func:`read` gives for a vehicle message, by sub-type: 0x1201 ``Registration``, 0x1202
#: ``Position``, 0x1203 ``list[Position]``, 0x1401 ``SupervisionAnswer``, 0x1402 ``Alarm``, 0x9401
#: ``Supervision``; ``None`` for a sub-type without a reader (its data stays as it is)
VehicleBody = Registration | Position | list[Position] | SupervisionAnswer | Alarm | Supervision | None


@overload
def read(msg: Frame, *, edition: int = Edition.V2011) -> FrameBody: ...
@overload
def read(msg: VehicleMessage, *, edition: int = Edition.V2011) -> VehicleBody: ...
def read(msg: Frame | VehicleMessage, *, edition: int = Edition.V2011) -> FrameBody | VehicleBody:
    """A frame's body (by message id) or a vehicle message's data (by sub-type), read into the types above.

    Two steps for a vehicle message (``read(read(frame))``), so that a caller can check the plate before
    the data is read. ``edition`` is the link's (a 2019 login, 0x1201, 0x1202/0x1203 positions, 0x1402);
    alarm heads and bodies are recognised by their layout whatever it says. Raises ``FrameError`` on a
    body that does not fit its type.
    """
    if isinstance(msg, VehicleMessage):
        sub, data = msg.sub_type, msg.data
        if sub == UP_EXG_MSG_REAL_LOCATION:
            return _body.decode_1202(data, edition)
        if sub == UP_EXG_MSG_HISTORY_LOCATION:
            return _body.decode_1203(data, edition)
        if sub == UP_EXG_MSG_REGISTER:
            return _body.decode_1201(data, edition)
        if sub == UP_WARN_MSG_ADPT_INFO:
            return _body.decode_1402(data, edition)
        if sub == UP_WARN_MSG_URGE_TODO_ACK:
            return _body.decode_1401(data)
        if sub == DOWN_WARN_MSG_URGE_TODO_REQ:
            return _body.decode_9401(data)
        return None
    mid, body = msg.msg_id, msg.body
    if mid in (UP_EXG_MSG, DOWN_EXG_MSG):
        return _body.decode_vehicle(body)
    if mid in (UP_WARN_MSG, DOWN_WARN_MSG):  # the 2011 vehicle head, or 2019's without the plate
        return _body.decode_warn_message(body, edition)
    if mid == UP_CONNECT_REQ:
        return _body.decode_login(body, edition)
    if mid == UP_CONNECT_RSP:
        return _body.decode_login_reply(body)
    if mid == UP_DISCONNECT_REQ:
        return _body.decode_logout(body)
    if mid == DOWN_CONNECT_REQ:
        return _body.decode_slave_login(body)
    return None
