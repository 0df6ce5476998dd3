"""GT06 packets without a fix of their own: cell and Wi-Fi lists, vendor status and OBD packets.

Layouts as the deployed decoders read them (traccar's ``Gt06ProtocolDecoder``; facts, not code):

- **Wi-Fi, counted form** (0x69, and 0x17 unless its length byte is its length): the third byte counts
  the access points, not bytes; BCD time (6), per access point MAC (6) and signal (1), then a cell count,
  MCC (2), MNC (1) and per cell LAC (2), cell id (2) and signal (1); no serial and no CRC — the frame
  ends at ``0d 0a``.
- **Wi-Fi** 0xF3: BCD time (6), a count, per access point 2 reserved bytes and the MAC.
- **Cell lists** (0x28, 0x2E, 0x24, 0x18, 0x2C, GK310's 0xA1/0xA2, short 0x33, 0xA9): time (6), MCC and
  MNC, seven (0x33: six; WANWAY S20's 0x24 and 0xA9: counted) cells of LAC, cell id and signal — widths by
  type — a timing advance, then (0x18, 0x2C, 0xA2, 0x33, 0xA9) a counted Wi-Fi list.
- **0xA7** LBS address request, **0x8C** OBD text (FM08ABC), **0xF1**/**0xF2** Jimi device status and
  VL842 peripherals (UNIX time, then items), **0xA3** on SEEWORLD units (a status block, no GPS).
- **AZ735** extended 0x32/0x33 (``79 79``): time, a GPS block behind its own length byte (0: no fix), an
  LBS block behind its length byte, counted extra cells and Wi-Fi (skipped), a status byte (0x33: an
  alarm code), a counted extension.

None of these is a position by itself (0x33/0x32's GPS block aside); the gateway answers them and keeps
what they say in :class:`Network`. Truncated lists are read as far as they go, never past the frame.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ._common import FrameError, Position, local_to_utc

__all__ = ["WIFI_COUNTED", "Network", "read_network"]

#: packet types whose 7878 length byte counts Wi-Fi access points (no serial, no CRC)
WIFI_COUNTED = frozenset({0x17, 0x69})

Cell = tuple[int, int, int, int, int | None]
"""MCC, MNC, LAC, cell id, signal (dBm, ``None`` when not sent)."""


@dataclass(frozen=True, slots=True)
class Network:
    """What a unit sees without a fix: cells and Wi-Fi access points, and the packet's other items."""

    time: datetime | None
    cells: tuple[Cell, ...] = ()
    wifi: tuple[tuple[str, int | None], ...] = ()
    attributes: dict[str, Any] = field(default_factory=dict)


def _mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def _bcd_time(c: bytes) -> datetime | None:
    # each byte read as two decimal digits (a nibble above 9 counts as its value, as the units send it)
    if len(c) < 6:
        return None
    y, mo, d, h, mi, s = ((b >> 4) * 10 + (b & 0x0F) for b in c[:6])
    return local_to_utc(y, mo, d, h, mi, s, 0.0)


def _time(c: bytes, tz_hours: float) -> datetime | None:
    return local_to_utc(c[0], c[1], c[2], c[3], c[4], c[5], tz_hours) if len(c) >= 6 else None


def wifi_counted(protocol: int, count: int, c: bytes) -> Network:
    """0x69 / 0x17 in the counted form (``c`` is everything between the type and ``0d 0a``)."""
    at = 6
    wifi = []
    for _ in range(count):
        if at + 7 > len(c):
            raise FrameError(f"0x{protocol:02x} Wi-Fi list truncated")
        wifi.append((_mac(c[at : at + 6]), -c[at + 6]))
        at += 7
    cells: list[Cell] = []
    if at + 4 <= len(c):
        n, mcc, mnc = c[at], int.from_bytes(c[at + 1 : at + 3], "big"), c[at + 3]
        at += 4
        for _ in range(n):
            if at + 5 > len(c):
                break
            lac, cid = struct.unpack_from(">HH", c, at)
            cells.append((mcc, mnc, lac, cid, -c[at + 4]))
            at += 5
    return Network(_bcd_time(c), tuple(cells), tuple(wifi))


def _wifi_f3(c: bytes) -> Network:
    n = c[6] if len(c) > 6 else 0
    wifi = [(_mac(c[at + 2 : at + 8]), None) for at in range(7, 7 + 8 * n, 8) if at + 8 <= len(c)]
    return Network(_bcd_time(c), (), tuple(wifi))


#: cell-list types → (LAC width, cell id width, cells when not counted, Wi-Fi list follows)
_LISTS: dict[int, tuple[int, int, int, bool]] = {
    0x28: (2, 3, 7, False),
    0x2E: (2, 3, 7, False),
    0x24: (2, 3, 7, False),
    0x18: (2, 3, 7, True),
    0x2C: (2, 3, 7, True),
    0xA1: (4, 8, 7, False),
    0xA2: (4, 8, 7, True),
    0x33: (2, 4, 6, True),
    0xA9: (2, 3, 0, True),
}


def _cell_list(protocol: int, c: bytes, tz_hours: float) -> Network:
    lac_w, cid_w, count, has_wifi = _LISTS[protocol]
    s20 = protocol == 0x24 and len(c) == 44  # WANWAY S20: timing advance first, then a counted list
    at = 7 if s20 else 6
    if len(c) < at + 3:
        raise FrameError(f"0x{protocol:02x} cell list truncated")
    mcc = int.from_bytes(c[at : at + 2], "big")
    mnc_w = 2 if mcc & 0x8000 else 1
    mnc = int.from_bytes(c[at + 2 : at + 2 + mnc_w], "big")
    at += 2 + mnc_w
    if protocol == 0xA9:
        if c[at : at + 1] and c[at]:
            lac_w, cid_w = 4, 8
        at += 1
    if s20 or protocol == 0xA9:
        count, at = (c[at] if at < len(c) else 0), at + 1
    cells: list[Cell] = []
    size = lac_w + cid_w + 1
    for _ in range(count):
        if at + size > len(c):
            break
        lac = int.from_bytes(c[at : at + lac_w], "big")
        cid = int.from_bytes(c[at + lac_w : at + lac_w + cid_w], "big")
        if lac:
            cells.append((mcc & 0x7FFF, mnc, lac, cid, -c[at + size - 1]))
        at += size
    at += 0 if s20 else 1  # timing advance
    wifi: list[tuple[str, int | None]] = []
    if has_wifi and at < len(c):
        n, at = c[at], at + 1
        for _ in range(n):
            if at + 7 > len(c):
                break
            wifi.append((_mac(c[at : at + 6]), -c[at + 6]))
            at += 7
    attrs: dict[str, Any] = {}
    if protocol == 0xA9 and at + 2 <= len(c):
        attrs["alarm_code"] = c[at] | (c[at + 1] >> 4) << 8
    return Network(_time(c, tz_hours), tuple(cells), tuple(wifi), attrs)


def _lbs_address(c: bytes) -> Network:
    if len(c) < 8:
        raise FrameError("0xa7 LBS block truncated")
    mcc = int.from_bytes(c[:2], "big")
    mnc_w = 2 if mcc & 0x8000 else 1
    mnc = int.from_bytes(c[2 : 2 + mnc_w], "big")
    lac = int.from_bytes(c[2 + mnc_w : 4 + mnc_w], "big")
    cid = int.from_bytes(c[4 + mnc_w : 7 + mnc_w], "big")
    return Network(None, ((mcc & 0x7FFF, mnc, lac, cid, None),))


#: OBD text keys (two hex digits of a PID) → our attribute and its scale
_OBD_KEYS = {0x40: "odometer_km", 0x43: "fuel", 0x45: "coolant_temp_c", 0x53: "obd_speed_kmh", 0x54: "rpm"}


def _obd(c: bytes, tz_hours: float) -> Network:
    """0x8C: time, ignition, then ``key=hex,…`` text (the last 12 bytes are not text)."""
    if len(c) < 7:
        raise FrameError("0x8c OBD packet truncated")
    attrs: dict[str, Any] = {"acc": bool(c[6])}
    text = c[7 : max(7, len(c) - 12)].decode("ascii", errors="replace")
    for pair in text.split(","):
        key, _, value = pair.partition("=")
        try:
            pid, number = int(key[:2], 16), int(value, 16)
        except ValueError:
            continue
        if pid in _OBD_KEYS:
            attrs[_OBD_KEYS[pid]] = number / 100
    return Network(_time(c, tz_hours), attributes=attrs)


def _status_items(protocol: int, c: bytes) -> Network:
    """0xF1 device status / 0xF2 peripherals: UNIX time, then ``id:2 length:1 value`` items (0xF2's 0x000A
    has a 2-byte length)."""
    if len(c) < 4:
        raise FrameError(f"0x{protocol:02x} time truncated")
    time = datetime.fromtimestamp(int.from_bytes(c[:4], "big"), UTC)
    attrs: dict[str, Any] = {}
    at = 4
    while at + 3 <= len(c):
        item = int.from_bytes(c[at : at + 2], "big")
        if protocol == 0xF2 and item == 0x000A:
            n, at = int.from_bytes(c[at + 2 : at + 4], "big"), at + 4
        else:
            n, at = c[at + 2], at + 3
            if protocol == 0xF2 and n == 0 and at < len(c):
                n, at = c[at], at + 1
        value = c[at : at + n]
        at += n
        if protocol == 0xF1:
            _device_item(item, value, attrs)
        elif item == 0x000C and len(value) >= 2:
            attrs["external_battery_level"] = value[0]
    return Network(time, attributes=attrs)


def _device_item(item: int, value: bytes, attrs: dict[str, Any]) -> None:
    if not value:
        return
    if item == 0x0002:
        attrs["armed"] = bool(value[0])
    elif item == 0x0004:
        attrs["acc"] = bool(value[0])
    elif item == 0x0005 and len(value) >= 2:
        attrs["power_v"] = int.from_bytes(value[:2], "big") / 100
    elif item == 0x0007:
        attrs["charging"] = bool(value[0])


def seeworld_status(c: bytes) -> dict[str, Any]:
    """0xA3 of SEEWORLD units (7 or 19 content bytes): terminal information, then (19) an extension word,
    voltage level, GSM signal, power, language, sound and light switches, steps, battery, charge, motion;
    (7) voltage level, GSM signal, alarm code."""
    attrs: dict[str, Any] = {"terminal_info": c[0]}
    if len(c) >= 19:
        attrs.update(voltage_level=c[3], gsm_signal=c[4], power_v=float(c[5]))
        attrs.update(steps=int.from_bytes(c[9:13], "big"), battery_level=c[13], charging=c[14] == 1)
    elif len(c) >= 4:
        attrs.update(voltage_level=c[1], gsm_signal=c[2], alarm_code=c[3])
    return attrs


#: AZ735 status codes of 0x33 → our alarm names
_AZ735_ALARMS = {0xA2: "low_battery", 0xA3: "low_battery", 0xA4: "general", 0xA5: "door"}


def az735(protocol: int, c: bytes, tz_hours: float) -> tuple[Position | None, dict[str, Any], list[str]]:
    """Extended 0x32/0x33 (AZ735, SL4X): a fix when its GPS block is there, the status and the alarm."""
    if len(c) < 7:
        raise FrameError(f"0x{protocol:02x} time truncated")
    time = _time(c, tz_hours)
    at, pos = 7, None
    if c[6]:
        if len(c) < at + 12:
            raise FrameError(f"0x{protocol:02x} GPS block truncated")
        lat_u, lon_u, speed, flags = struct.unpack_from(">IIBH", c, at + 1)
        lat = lat_u / 1_800_000 * (1 if flags & 0x0400 else -1)
        lon = lon_u / 1_800_000 * (-1 if flags & 0x0800 else 1)
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise FrameError(f"coordinates out of range ({lat}, {lon})")
        course = flags & 0x03FF
        pos = Position(
            lat, lon, bool(flags & 0x1000), time, float(speed), float(course) if course <= 360 else None
        )
        pos.attributes["satellites"] = c[at] & 0x0F
        at += 12
    attrs: dict[str, Any] = {}
    lbs = c[at] if at < len(c) else 0
    if lbs:  # MCC, MNC (2 bytes with MCC bit 15), LAC, cell id, what its length says beyond 9, signal
        wide = at + 2 < len(c) and c[at + 1] & 0x80
        at += (9 if wide else 8) + max(0, lbs - 9) + 1
    at += 1
    for _ in range(2):  # extra cells, Wi-Fi: each behind its byte count
        at += 1 + (c[at] if at < len(c) else 0)
    alarms: list[str] = []
    if at < len(c):
        attrs["status"] = c[at]
        if protocol == 0x33 and c[at] in _AZ735_ALARMS:
            alarms.append(_AZ735_ALARMS[c[at]])
    if pos is not None:
        pos.attributes.update(attrs)
        pos.alarms = tuple(alarms)
        if alarms:
            pos.attributes["alarm"] = alarms[0]
    return pos, attrs, alarms


_LOCATION_TEXT = re.compile(
    r"Lat:([NS])(\d+\.\d+),Lon:([EW])(\d+\.\d+),Course:(\d+\.\d+),Speed:(\d+\.\d+),"
    r"DateTime:(\d{4}|\d\d)-(\d\d)-(\d\d) +(\d\d):(\d\d):(\d\d)"
)


def text_position(text: str, tz_hours: float) -> Position | None:
    """A command answer that states the position: ``Current position!Lat:N…,DateTime:2020-…`` or, the
    ``WHERE#`` answer of Concox's manual, ``Lat:N22.571285,…,DateTime:10-11-23 22:28:51`` (two-digit year)."""
    m = _LOCATION_TEXT.search(text)
    if m is None:
        return None
    lat = float(m[2]) * (1 if m[1] == "N" else -1)
    lon = float(m[4]) * (1 if m[3] == "E" else -1)
    y, mo, d, h, mi, s = (int(x) for x in m.groups()[6:])
    y += 2000 if y < 100 else 0
    return Position(lat, lon, True, local_to_utc(y, mo, d, h, mi, s, tz_hours), float(m[6]), float(m[5]))


def read_network(protocol: int, c: bytes, tz_hours: float) -> Network | None:
    """The :class:`Network` of a list/status packet by type, ``None`` for a type this module does not read."""
    if protocol in _LISTS:
        return _cell_list(protocol, c, tz_hours)
    if protocol == 0xF3:
        return _wifi_f3(c)
    if protocol == 0xA7:
        return _lbs_address(c)
    if protocol == 0x8C:
        return _obd(c, tz_hours)
    if protocol in (0xF1, 0xF2):
        return _status_items(protocol, c)
    return None
