"""H02 (Sinotrack, Coban clones and many others): ``Framer`` and ``decode`` (frame → :class:`H02Message`
with its fix; there is no separate ``read`` step), ``encode_v1`` for the simulator; the unit is not
answered.

Edition: there is no standard; this follows the "HQ" text protocol of the H02 family (V1, V19, VP1,
NBR, LINK …) and its 32/45/42-byte binary form as the deployed decoders read them (traccar's
H02ProtocolDecoder is the reference of the conformance corpus).

Choices: text frames are anchored on the validity flag followed by a coordinate, not on fixed
positions; a device id must be alphanumeric (at most 20) — an empty one is kept as ``""`` (the unit's
connection names it; the session refuses it before the unit is known); frames that are neither
``*…#`` nor ``$`` are refused, and the status word is kept whole in ``status_bits``.

Text: ``*HQ,<id>,<type>,<hhmmss>,<A|V>,<ddmm.mmmm>,<N|S>,<dddmm.mmmm>,<E|W>,<knots>,<course>,
<ddmmyy>,<status hex>[,…]#``. Variants move fields around (V19 puts phone and ICCID before the
status, VP1 has no time, V2 writes validity as 0/1), so the decoder anchors on the validity field
followed by a coordinate rather than on fixed positions.

Binary: ``$`` + 5-byte BCD id (8 bytes, a 15-digit IMEI, in the 42-byte form) + hhmmss + ddmmyy + latitude (8 BCD digits ddmm.mmmm) + one byte
(battery or satellites) + longitude (9 BCD digits dddmm.mmmm, then a flags nibble: 0x2 valid,
0x4 north, 0x8 east) + speed (3 digits, knots) and course (3 digits) + a 32-bit status word; 32
bytes in the short form, 45 in the long one.

The status word is negative logic: a 0 bit is an active condition. Bit meanings differ between
firmware; :data:`STATUS_ALARMS` keeps to the ones the common V1 documents agree on, and the raw
word always travels in the fix's ``status_bits``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ._common import FrameError, Position, local_to_utc

__all__ = [
    "MAX_FRAME",
    "STATUS_ALARMS",
    "CommandAnswer",
    "Framer",
    "H02Message",
    "command_answer",
    "decode",
    "encode_v1",
]

#: Longest text frame accepted; real ones stay under 200 bytes.
MAX_FRAME = 512
BINARY_SHORT = 32
BINARY_LONG = 45
#: the binary form with an 8-byte id (a 15-digit IMEI and a pad nibble) instead of the 5-byte one
BINARY_LONG_ID = 42
_STARTS = (0x24, 0x2A, 0x0D, 0x0A)

#: Status bits (active when 0) that are alarms, by bit number.
STATUS_ALARMS: dict[int, str] = {0: "vibration", 1: "sos", 2: "overspeed", 18: "sos", 19: "power_cut"}
#: Status bit (active when 0) that says the ignition (ACC) is on.
ACC_BIT = 10

#: ``ddmm.mmmm`` (the usual), ``ddmmmmmm`` without the point (some V1 firmware), ``-dd-mm.mmmm`` (negative
#: degrees and minutes written apart, as some Brazilian units do)
_COORD = re.compile(r"^(?:\d{1,5}\.\d+|\d{8,9}|-\d{1,3}-\d{1,2}\.\d+)$")


class Framer:
    """Split a stream into ``*…#`` text frames and ``$`` binary frames; drop anything else.

    A binary frame is 32 bytes, or 45 when what follows the 32nd byte is not the start of another
    frame — the same rule device firmware lets the platform use, since the form has no length field.
    """

    __slots__ = ("_buf", "dropped_bytes", "max_frame", "oversize")

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._buf = bytearray()
        self.max_frame = max_frame
        self.dropped_bytes = 0
        self.oversize = 0

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        frames: list[bytes] = []
        pos = 0
        n = len(buf)
        while pos < n:
            c = buf[pos]
            if c == 0x2A:  # '*'
                end = buf.find(b"#", pos)
                if end < 0:
                    if n - pos > self.max_frame:
                        self.oversize += 1
                        self.dropped_bytes += n - pos
                        pos = n
                    break
                if end + 1 - pos > self.max_frame:
                    self.oversize += 1
                    self.dropped_bytes += end + 1 - pos
                else:
                    frames.append(bytes(buf[pos : end + 1]))
                pos = end + 1
            elif c == 0x24:  # '$'
                if n - pos < BINARY_SHORT:
                    break
                if n - pos > BINARY_SHORT and buf[pos + BINARY_SHORT] not in _STARTS:
                    if n - pos < BINARY_LONG_ID + 1:
                        break
                    if buf[pos + BINARY_LONG_ID] in _STARTS and (
                        n - pos <= BINARY_LONG or buf[pos + BINARY_LONG] not in _STARTS
                    ):
                        size = BINARY_LONG_ID  # the 15-digit IMEI form: the next frame starts at 42
                    elif n - pos < BINARY_LONG:
                        break
                    else:
                        size = BINARY_LONG
                else:
                    size = BINARY_SHORT
                frames.append(bytes(buf[pos : pos + size]))
                pos += size
            else:
                nxt = [i for i in (buf.find(b"*", pos), buf.find(b"$", pos)) if i >= 0]
                skip_to = min(nxt) if nxt else n
                self.dropped_bytes += skip_to - pos
                pos = skip_to
        del buf[:pos]
        return frames

    @property
    def buffered(self) -> int:
        return len(self._buf)


@dataclass(frozen=True, slots=True)
class H02Message:
    device_id: str
    kind: str
    """The message type (``V1``, ``V19``, ``VP1``, ``HTBT``, ``LINK`` …) or ``binary``."""
    position: Position | None
    raw: bytes
    attributes: dict[str, Any]


def _coord(text: str, hemi: str, *, degrees_digits: int) -> float:
    if not _COORD.match(text):
        raise FrameError(f"bad coordinate {text!r}")
    if text.startswith("-"):
        deg_s, minutes_s = text[1:].split("-")
        minutes_v = float(minutes_s)
        if minutes_v >= 60:
            raise FrameError(f"bad minutes in {text!r}")
        return -(int(deg_s) + minutes_v / 60)
    if "." not in text:
        text = text[:-4] + "." + text[-4:]
    whole, frac = text.split(".")
    deg = int(whole[:-2] or "0")
    minutes = float(whole[-2:] + "." + frac)
    if minutes >= 60:
        raise FrameError(f"bad minutes in {text!r}")
    value = deg + minutes / 60
    return -value if hemi in ("S", "W") else value


def _status_attrs(status: int) -> dict[str, Any]:
    alarms = sorted({name for bit, name in STATUS_ALARMS.items() if not (status >> bit) & 1})
    return {"acc": not (status >> ACC_BIT) & 1, "alarms": alarms}


def _text(frame: bytes, tz_hours: float) -> H02Message:
    try:
        text = frame.decode("ascii")
    except UnicodeDecodeError as exc:
        raise FrameError("non-ASCII text frame") from exc
    if not text.startswith("*") or not text.endswith("#"):
        raise FrameError("text frame without * … #")
    fields = text[1:-1].split(",")
    if len(fields) < 3:
        raise FrameError("text frame with fewer than three fields")
    device, kind = fields[1].strip(), fields[2].strip()
    if device and (not device.isalnum() or len(device) > 20):  # "" is kept: see the module's choices
        raise FrameError(f"bad device id {device!r}")
    # anchor: validity flag followed by latitude, hemisphere, longitude, hemisphere
    anchor = None
    for i in range(3, len(fields) - 4):
        if (
            fields[i] in ("A", "V", "0", "1", "")
            and _COORD.match(fields[i + 1])
            and fields[i + 2] in ("N", "S")
            and fields[i + 4] in ("E", "W")
        ):
            anchor = i
            break
    if anchor is None:
        return H02Message(device, kind, None, frame, {"fields": fields[3:]})
    lat = _coord(fields[anchor + 1], fields[anchor + 2], degrees_digits=2)
    lon = _coord(fields[anchor + 3], fields[anchor + 4], degrees_digits=3)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise FrameError(f"coordinates out of range ({lat}, {lon})")
    rest = fields[anchor + 5 :]
    try:
        knots = float(rest[0]) if rest and rest[0] else 0.0
        course = float(rest[1]) if len(rest) > 1 and rest[1] else None
    except ValueError as exc:
        raise FrameError("bad speed or course") from exc
    hms = fields[anchor - 1] if anchor - 1 >= 3 else ""
    dmy = rest[2] if len(rest) > 2 else ""
    time = None
    if len(hms) == 6 and hms.isdigit() and len(dmy) == 6 and dmy.isdigit():
        time = local_to_utc(
            int(dmy[4:6]), int(dmy[2:4]), int(dmy[0:2]), int(hms[0:2]), int(hms[2:4]), int(hms[4:6]), tz_hours
        )
    status = None
    for f in rest[3:]:
        if len(f) == 8:
            try:
                status = int(f, 16)
            except ValueError:
                continue
            break
    attrs: dict[str, Any] = {"type": kind}
    if status is not None:
        attrs.update(_status_attrs(status))
    pos = Position(
        lat=lat,
        lon=lon,
        valid=fields[anchor] in ("A", "1"),
        time=time,
        speed_kmh=round(knots * 1.852, 2),
        heading_deg=course if course is not None and 0 <= course <= 360 else None,
        alarm_bits=0,
        status_bits=status if status is not None else 0xFFFFFFFF,
        attributes=attrs,
    )
    return H02Message(device, kind, pos, frame, {})


def _digits(data: bytes) -> str:
    text = data.hex()
    return text


def _binary(frame: bytes, tz_hours: float) -> H02Message:
    if len(frame) < BINARY_SHORT:
        raise FrameError("binary frame shorter than 32 bytes")
    if len(frame) == BINARY_LONG_ID:
        device = frame[1:9].hex()[:15]  # IMEI, then a pad nibble
        frame = frame[:1] + frame[4:]  # the rest is laid out as in the 5-byte-id form
    else:
        device = frame[1:6].hex()
    h = frame.hex()
    t, d = h[12:18], h[18:24]
    lat_s, extra, lon_s, flags = h[24:32], frame[16], h[34:43], int(h[43], 16)
    speed_s, course_s = h[44:47], h[47:50]
    status = int.from_bytes(frame[25:29], "big")
    if not (
        device.isdigit()
        and t.isdigit()
        and d.isdigit()
        and lat_s.isdigit()
        and lon_s.isdigit()
        and speed_s.isdigit()
        and course_s.isdigit()
    ):
        raise FrameError("non-BCD field in binary frame")
    lat = int(lat_s[:2]) + int(lat_s[2:]) / 10000 / 60
    lon = int(lon_s[:3]) + int(lon_s[3:]) / 10000 / 60
    if not flags & 0x04:
        lat = -lat
    if not flags & 0x08:
        lon = -lon
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise FrameError(f"coordinates out of range ({lat}, {lon})")
    time = local_to_utc(
        int(d[4:6]), int(d[2:4]), int(d[0:2]), int(t[0:2]), int(t[2:4]), int(t[4:6]), tz_hours
    )
    course = float(int(course_s))
    attrs: dict[str, Any] = {"type": "binary", "battery_or_satellites": extra, **_status_attrs(status)}
    pos = Position(
        lat=lat,
        lon=lon,
        valid=bool(flags & 0x02),
        time=time,
        speed_kmh=round(int(speed_s) * 1.852, 2),
        heading_deg=course if course <= 360 else None,
        alarm_bits=0,
        status_bits=status,
        attributes=attrs,
    )
    return H02Message(device, "binary", pos, frame, {})


def decode(frame: bytes, *, tz_hours: float = 0.0) -> H02Message:
    """One frame from :class:`Framer` → its message (the fix in it, read with the device clock's offset)."""
    if frame[:1] == b"*":
        return _text(frame, tz_hours)
    if frame[:1] == b"$":
        return _binary(frame, tz_hours)
    raise FrameError("neither * nor $ frame")


@dataclass(frozen=True, slots=True)
class CommandAnswer:
    """A V4 frame: the terminal's acknowledgement of a server command."""

    command: str
    """The command it answers (``S20``, ``S71`` …)."""
    word: str
    """Its result word (``DONE``, ``OK``, ``ERROR``), ``""`` when the firmware sends none."""
    stamp: str
    """The ``hhmmss`` the command was stamped with (echoed), ``""`` when not found."""


def command_answer(msg: H02Message) -> CommandAnswer | None:
    """The acknowledgement a V4 frame carries, e.g. ``*HQ,<id>,V4,S20,DONE,130305,050316,A,…#``: the
    command, an optional result word, then the command's own time before the unit's fix (firmware puts
    parameters between them for some commands, e.g. ``V4,S14,100,10,1,3,130305,…``)."""
    if msg.kind.upper() != "V4" or not msg.raw.startswith(b"*"):
        return None
    fields = msg.raw[1:-1].decode("ascii", errors="replace").split(",")
    if len(fields) < 4:
        return None
    rest = fields[4:]
    word = rest[0].strip() if rest and rest[0].strip().isalpha() else ""
    stamp = next((f for f in rest[:8] if len(f) == 6 and f.isdigit()), "")
    return CommandAnswer(fields[3].strip().upper(), word.upper(), stamp)


def encode_v1(
    device_id: str,
    *,
    hms: str,
    dmy: str,
    lat: float,
    lon: float,
    knots: float,
    course: int,
    status: int = 0xFFFFFBFF,
    valid: bool = True,
) -> bytes:
    """A ``V1`` text frame (simulator and benchmark)."""

    def fmt(value: float, width: int) -> str:
        v = abs(value)
        deg = int(v)
        return f"{deg:0{width}d}{(v - deg) * 60:07.4f}"

    return (
        f"*HQ,{device_id},V1,{hms},{'A' if valid else 'V'},{fmt(lat, 2)},{'N' if lat >= 0 else 'S'},"
        f"{fmt(lon, 3)},{'E' if lon >= 0 else 'W'},{knots:.2f},{course:03d},{dmy},{status:08X}#"
    ).encode()
