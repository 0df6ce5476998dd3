"""GT06 (Concox and its many clones): ``Framer``, ``decode`` (frame → :class:`Gt06Message`), ``read``
(message → login, heartbeat, position, :class:`Network`), ``encode`` and ``reply``.

Edition: there is no standard; this follows Concox's GT06/GT06N communication protocol (the 2G
document's packet types 0x01–0x1A and its 4G successors' 0x2x–0xAx, 0x70, 0x95) and the variants the
deployed decoders read (traccar's Gt06ProtocolDecoder is the reference of the conformance corpus).

Frames are ``78 78 <len:1> <protocol:1> <content> <serial:2> <crc:2> 0d 0a`` or the long form
``79 79 <len:2> …``; ``len`` counts protocol number through CRC, and the CRC-ITU covers the length
field through the serial. Coordinates are unsigned half-milliseconds of arc (value / 1,800,000
degrees) with the hemisphere in the course/status word. The GPS, LBS and status blocks of the position
and alarm packets and their variants are read by :mod:`._gt06_body`; packets without a fix (cell and
Wi-Fi lists, vendor status) by :mod:`._gt06_network`.

Choices:

- *Refused*: frames under 10 bytes or without ``0d 0a``, a login without its 8-byte IMEI, a position
  packet whose GPS block is missing or truncated, coordinates beyond ±90°/±180°.
- *Tolerated and recorded*: a CRC that does not match (``crc_ok``), a length byte that does not lead to
  ``0d 0a`` (``length_ok``; the frame ends at the first ``0d 0a`` and the content runs to it).
- *Vendor variants*: 0x69/0x17 Wi-Fi packets whose length byte counts access points (no serial, no CRC;
  answered in their own form), clones told by packet length (VXT01, SEEWORLD, SR411 mini, WANWAY S20),
  GK310's 0xA2 list vs LW 4G's 0xA2 position, AZ735's extended 0x32/0x33; model-only alarm codes
  (LW, SEEWORLD, VL, NT units) when ``read`` is given the registered ``model``.
- *Answered*: login (0x01), heartbeats (0x13/0x23), every alarm packet (0x16/0x26/0x27, 0x19, 0xA4,
  0xA5, 0x95, 0x70) and the counted Wi-Fi packets; location packets are not.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from . import _gt06_body, _gt06_network
from ._common import FrameError, Position, bcd_digits, crc_itu
from ._gt06_network import Network

__all__ = [
    "MAX_FRAME",
    "TERMINAL_ALARM",
    "Framer",
    "Gt06Message",
    "Heartbeat",
    "Login",
    "Network",
    "decode",
    "encode",
    "encode_gps_content",
    "read",
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
STRING_INFO_2 = 0x21
ALARM_JC = 0x95
MODULAR = 0x70
X1_GPS = 0x34
STATUS_36 = 0x36
SERIAL = 0x9B
LBS_STATUS = 0x19
FENCE_ALARM = 0xA4
LBS_ALARM = 0xA5

#: Longest frame accepted (a 0x7979 length may claim 65,535 bytes; no message we serve needs 1 KiB).
MAX_FRAME = 1024

#: Terminal-information bits 3–5 → alarm name (heartbeat packets), as in :mod:`._gt06_body`.
TERMINAL_ALARM = _gt06_body.TERMINAL_ALARM


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
            if total > self.max_frame:
                self.oversize += 1
                self.dropped_bytes += 2
                pos += 2
                continue
            if length >= 5 and len(buf) - pos < total:
                break
            if length >= 5 and buf[pos + total - 2 : pos + total] == b"\r\n":
                frames.append(bytes(buf[pos : pos + total]))
                pos += total
                continue
            end = self._stop(buf, pos, head)
            if end == 0:
                break
            if end < 0:
                self.dropped_bytes += 2
                pos += 2
                continue
            frames.append(bytes(buf[pos:end]))
            pos = end
        del buf[:pos]
        return frames

    def _stop(self, buf: bytearray, pos: int, head: int) -> int:
        """Where a frame whose length byte does not lead to ``0d 0a`` ends: at the first ``0d 0a``, as the
        deployed decoders read a clone's wrong length byte and the counted Wi-Fi packets (0x69/0x17) —
        unless start bits come first (then the start bits were garbage: -1). 0: wait for more bytes."""
        end = buf.find(b"\r\n", pos + head + 1)
        nxt = [x for x in (buf.find(b"\x78\x78", pos + 2), buf.find(b"\x79\x79", pos + 2)) if x >= 0]
        if nxt and (end < 0 or min(nxt) < end):
            return -1
        if end < 0:
            return -1 if len(buf) - pos > self.max_frame else 0
        return end + 2

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
    crc_ok: bool = True
    length_ok: bool = True
    """The length field matches the frame (clones send wrong ones; the frame then ends at ``0d 0a``)."""
    counted: bool = False
    """A counted Wi-Fi packet (0x69/0x17): the length byte counts access points; no serial, no CRC."""


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


def decode(frame: bytes) -> Gt06Message:
    """Check start/stop bits, length and CRC-ITU of one frame from :class:`Framer`.

    A CRC or a length field that does not match is recorded on the message (``crc_ok``, ``length_ok``),
    not refused: the framer found the frame's end, clones in the field get both wrong, and the deployed
    decoders accept them. Frames shorter than 10 bytes or without their stop bits are refused.
    """
    if len(frame) < 10 or frame[-2:] != b"\r\n":
        raise FrameError("not a GT06 frame")
    long = frame[:2] == b"\x79\x79"
    if not long and frame[:2] != b"\x78\x78":
        raise FrameError("bad start bits")
    head = 4 if long else 3
    length = int.from_bytes(frame[2:4], "big") if long else frame[2]
    protocol = frame[head]
    length_ok = head + length + 2 == len(frame)
    if not long and protocol in _gt06_network.WIFI_COUNTED and not length_ok:
        return Gt06Message(protocol, frame[head + 1 : -2], 0, long, frame, counted=True)
    (crc,) = struct.unpack_from(">H", frame, len(frame) - 4)
    (serial,) = struct.unpack_from(">H", frame, len(frame) - 6)
    crc_ok = crc == crc_itu(frame[2:-4])
    # with a wrong length field nothing says where the content ends: it runs to the stop bits, and each
    # packet reads what its layout needs (units that send no serial and CRC are read too)
    content = frame[head + 1 : -6] if length_ok else frame[head + 1 : -2]
    return Gt06Message(protocol, content, serial, long, frame, crc_ok, length_ok)


def encode(protocol: int, content: bytes, serial: int, *, long: bool = False) -> bytes:
    """A whole frame with length and CRC (replies; the simulator's terminal traffic)."""
    length = 1 + len(content) + 2 + 2
    if long or length > 0xFF:
        start, size = b"\x79\x79", length.to_bytes(2, "big")
    else:
        start, size = b"\x78\x78", bytes([length])
    body = size + bytes([protocol]) + content + struct.pack(">H", serial & 0xFFFF)
    return start + body + struct.pack(">H", crc_itu(body)) + b"\r\n"


def reply(msg: Gt06Message) -> bytes | None:
    """The acknowledgement a terminal waits for — login, heartbeats, every alarm packet (it retransmits
    them until answered): same protocol number, same serial, empty content; a counted Wi-Fi packet is
    answered in its own form (length 0, its time, no serial or CRC). ``None``: no answer is due."""
    if msg.protocol not in _ANSWERED and not msg.counted:
        return None
    if msg.counted:
        return b"\x78\x78\x00" + bytes([msg.protocol]) + msg.content[:6] + b"\r\n"
    return encode(msg.protocol, b"", msg.serial, long=msg.long)


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


def _heartbeat(c: bytes) -> Heartbeat:
    if len(c) < 1:
        raise FrameError("heartbeat without terminal information")
    info = c[0]
    voltage = c[1] if len(c) > 1 else None
    gsm = c[2] if len(c) > 2 else None
    alarm = c[3] if len(c) > 3 else None
    attrs = _gt06_body.terminal_attrs(info)
    if (info >> 3) & 0x07 in TERMINAL_ALARM:
        attrs["alarm"] = TERMINAL_ALARM[(info >> 3) & 0x07]
    return Heartbeat(info, voltage, gsm, alarm, attrs)


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


def _command_reply(msg: Gt06Message, tz_hours: float) -> dict[str, Any] | Position:
    """0x15 / 0x21: a terminal's answer to a server command (text), after a 4-byte server flag.

    0x15 starts with the length of flag and text; 0x21 with the flag and an encoding byte (1 ASCII,
    else UTF-16BE). An ``<ICCID:…>`` answer is the SIM's ICCID; a ``Current position!…`` answer is a fix.
    """
    c = msg.content
    if msg.protocol == STRING_INFO:
        n = c[0] if c else 0
        raw = c[5 : 1 + n] if n >= 4 else b""
        text = raw.decode("ascii", errors="replace")
    else:
        if len(c) < 5:
            raise FrameError("0x21 shorter than its server flag and encoding")
        raw = c[5:]
        text = (
            raw.decode("ascii", errors="replace") if c[4] == 1 else raw.decode("utf-16-be", errors="replace")
        )
    if text.startswith("<ICCID:"):
        return {"iccid": text[7:27]}
    pos = _gt06_network.text_position(text, tz_hours)
    return pos if pos is not None else {"result": text}


def _serial(c: bytes) -> dict[str, Any]:
    """0x9B: data an external device (fuel sensor, card reader …) passed through — its type code, then the
    data, kept as text when printable, else as hex."""
    data = c[1:]
    printable = all(0x20 <= b < 0x7F or b in (0x0D, 0x0A) for b in data)
    return {"device_type": c[0], "result": data.decode("ascii").strip() if printable else data.hex()}


def _no_fix(attrs: dict[str, Any], alarms: list[str]) -> Heartbeat:
    """An alarm or status packet without a GPS block, in the shape of a heartbeat."""
    if alarms:
        attrs["alarm"] = alarms[0]
        attrs["alarms"] = alarms
    return Heartbeat(
        attrs.get("terminal_info", 0), attrs.get("voltage_level"), attrs.get("gsm_signal"), None, attrs
    )


Payload = Login | Heartbeat | Position | Network | dict[str, Any] | None


def _blocks(p: int, c: bytes, tz_hours: float, model: str | None) -> Payload:
    pos, attrs, alarms = _gt06_body.decode_body(p, c, tz_hours, model)
    return pos if pos is not None else _no_fix(attrs, alarms)


def _seeworld_status(c: bytes, model: str | None) -> Heartbeat:
    attrs = _gt06_network.seeworld_status(c)
    attrs.update(_gt06_body.terminal_attrs(attrs["terminal_info"]))
    alarms = [TERMINAL_ALARM[b] for b in [(attrs["terminal_info"] >> 3) & 0x07] if b in TERMINAL_ALARM]
    coded = _gt06_body.alarm_name(attrs.get("alarm_code", 0), model)
    return _no_fix(attrs, [*alarms, coded] if coded else alarms)


def _variant(msg: Gt06Message, tz_hours: float, model: str | None) -> Payload:
    """Packet types whose layout depends on the unit (told by the frame's form or length)."""
    p, c = msg.protocol, msg.content
    if msg.counted:
        return _gt06_network.wifi_counted(p, msg.raw[2], c)
    if p in (0x32, 0x33) and msg.long:  # AZ735 / SL4X extended
        pos, attrs, alarms = _gt06_network.az735(p, c, tz_hours)
        return pos if pos is not None else _no_fix(attrs, alarms)
    if p == 0x24 and len(c) == 41:  # SR411 mini: GPS, LBS, ignition, power, battery
        return _blocks(p, c, tz_hours, model)
    if p == 0xA3:  # SEEWORLD: a status block (7 or 19 bytes); GK310: a single-fence GPS + LBS packet
        return _seeworld_status(c, model) if len(c) in (7, 19) else _blocks(p, c, tz_hours, model)
    if p == 0x61:  # iButton: the IMEI, GPS, LBS, driver id
        return _blocks(p, c[8:], tz_hours, model)
    if p == X1_GPS and len(c) != 50:  # 50 content bytes: an SL4X cell list, not a position
        return _gt06_body.decode_x1(c, tz_hours)
    if p == 0xA2 and len(c) == 59:  # 0xA2 is a GPS packet only on LW 4G units (59 content bytes)
        return _blocks(p, c, tz_hours, model)
    return _gt06_network.read_network(p, c, tz_hours)


def read(msg: Gt06Message, *, tz_hours: float = 0.0, model: str | None = None) -> Payload:
    """The payload of one message; ``None`` for types the gateway does not interpret (still answered).

    ``model`` (as the operator registered the unit) selects the few alarm codes whose meaning differs
    by model family; see :mod:`._gt06_body`.
    """
    p = msg.protocol
    if p == LOGIN:
        return _login(msg.content)
    if p in (HEARTBEAT, HEARTBEAT_2):
        return _heartbeat(msg.content)
    if p == ALARM_JC:
        pos, attrs, alarms = _gt06_body.decode_alarm_95(msg.content, tz_hours)
        return pos if pos is not None else _no_fix(attrs, alarms)
    if p == MODULAR:
        pos, attrs, alarms = _gt06_body.decode_modular(msg.content)
        return pos if pos is not None else _no_fix(attrs, alarms)
    if p == STATUS_36:
        pos, attrs, alarms = _gt06_body.decode_status_36(msg.content, tz_hours, model)
        return pos if pos is not None else _no_fix(attrs, alarms)
    if p in _VARIANTS or msg.counted or (msg.long and p in (0x32, 0x33)):
        return _variant(msg, tz_hours, model)
    if p in _gt06_body.LAYOUTS:
        return _blocks(p, msg.content, tz_hours, model)
    if p == INFO:
        return _info(msg.content)
    if p in (STRING_INFO, STRING_INFO_2):
        return _command_reply(msg, tz_hours)
    if p == SERIAL and msg.content:
        return _serial(msg.content)
    return _gt06_network.read_network(p, msg.content, tz_hours)


#: types read by :func:`_variant` (before the common layouts)
_VARIANTS = frozenset({0x24, 0xA3, 0x61, X1_GPS, 0xA2})


#: Packets a terminal retransmits until answered: login, heartbeats and every alarm packet.
_ANSWERED = frozenset(
    {
        LOGIN,
        HEARTBEAT,
        HEARTBEAT_2,
        ALARM,
        ALARM_2,
        ALARM_3,
        ALARM_JC,
        LBS_STATUS,
        FENCE_ALARM,
        LBS_ALARM,
        MODULAR,
    }
)


def encode_gps_content(
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
