"""GT06 position and alarm bodies: the GPS, LBS and status blocks of the many packet variants.

Concox's GT06 family and its clones reuse three blocks in different packets:

- **GPS** (18 bytes): date and time (6), satellites (low nibble), latitude and longitude (unsigned,
  1/1,800,000 degree), speed (km/h), course/status word (course in bits 0–9, bit 10 north, bit 11 west,
  bit 12 fix valid, bit 14 "ignition known", bit 15 ignition).
- **LBS**: MCC (2; bit 15 set means a 2-byte MNC follows), MNC, LAC, cell id. Packets that end with a
  status block start their LBS block with a length byte (8 or 9 for the common 9-byte block, by
  vendor; longer for other cell layouts, which are skipped by it). Packets without it use fixed widths
  per type. Two clones of 0x16 are told by their length: 31 content bytes (VXT01: no LBS length byte,
  no alarm code) and 33 (SEEWORLD: a 4-byte cell id); VXT01's 0x12 (31 bytes) ends with a status
  block (terminal information, power, GSM signal) where GT06N units put one ACC byte.
- **Status**: terminal information (bit 0 armed, 1 ACC, 2 charging, 3–5 alarm, 7 oil cut), voltage or
  battery level, GSM signal, alarm code, language. Some packets (0x27, 0xA4, 0x39) extend the alarm
  code to 12 bits with the language byte's high nibble.

:data:`LAYOUTS` says which blocks each packet type has. The alarm code table depends on the model for a
few codes (``model`` as the operator registered it); without a model the common meaning applies.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ._common import FrameError, Position, local_to_utc

__all__ = [
    "LAYOUTS",
    "TERMINAL_ALARM",
    "Layout",
    "alarm_name",
    "decode_alarm_95",
    "decode_body",
    "terminal_attrs",
]


@dataclass(frozen=True, slots=True)
class Layout:
    gps: bool
    lbs: bool
    status: bool
    lac_width: int = 2
    cid_width: int = 3
    lbs_length: bool = False
    """The LBS block starts with its own length byte."""
    network_byte: bool = False
    """A network-indicator byte precedes the status block (0xA2)."""
    power: bool = False
    """A 2-byte power value (0.01 V) follows the terminal information (0xA2, NT units' 0x22/0x25)."""
    wide_alarm: bool = False
    """The alarm code takes the language byte's high nibble as bits 8–11."""
    wide_mnc: bool = False
    """The MNC is 2 bytes even without MCC bit 15."""
    no_alarm_code: bool = False
    """The status block's fourth byte is not an alarm code (VXT01)."""


_GPS_LBS = Layout(True, True, False)
_GPS_LBS_STATUS = Layout(True, True, True, lbs_length=True)

#: Packet type → blocks. Types absent here are not positions.
LAYOUTS: dict[int, Layout] = {
    0x10: Layout(True, False, False),  # GPS only
    0x11: Layout(True, True, False, cid_width=4, wide_mnc=True),  # GPS + LBS, 2-byte MNC
    0x12: _GPS_LBS,
    0x22: _GPS_LBS,
    0x25: Layout(True, True, False, cid_width=4),  # XT40: GPS + LBS + driver
    0x2D: _GPS_LBS,
    0x31: _GPS_LBS,
    0x37: _GPS_LBS,
    0x1A: Layout(True, False, False),  # GPS + phone number
    0x38: Layout(True, False, False),  # GPS, upload mode, re-upload flag, a typed cell
    0x1E: Layout(True, False, False),  # JI09: GPS + extended LBS
    0x16: _GPS_LBS_STATUS,
    0x26: _GPS_LBS_STATUS,
    0x27: Layout(True, True, True, lbs_length=True, wide_alarm=True),
    0x32: _GPS_LBS_STATUS,
    0xA4: Layout(True, True, True, lbs_length=True, wide_alarm=True),  # multi-fence alarm
    0xA0: Layout(True, True, False, lac_width=4, cid_width=8),  # 4G GPS + LBS
    0xA2: Layout(True, True, True, lac_width=4, cid_width=8, network_byte=True, power=True),  # LW 4G
    0x17: _GPS_LBS,  # GPS + LBS + RFID (the RFID form of 0x17; see gt06.decode for the Wi-Fi form)
    0x24: _GPS_LBS,  # SR411 mini (41 content bytes; other 0x24 are cell lists)
    0x61: _GPS_LBS,  # iButton, after the IMEI
    0xA3: _GPS_LBS,  # GK310 single fence (SEEWORLD's 0xA3 is a status block)
    0x19: Layout(False, True, True),  # LBS + status (alarm without GPS)
    0xA5: Layout(False, True, True, lac_width=4, cid_width=8),  # 4G LBS alarm
}

_VXT01 = Layout(True, True, True, no_alarm_code=True)
_SEEWORLD_16 = Layout(True, True, True, cid_width=4, lbs_length=True)

#: Alarm codes of the status block (and of 0x95 heartbeats' alarm byte) → our alarm names.
_ALARMS: dict[int, str] = {
    0x01: "sos",
    0x02: "power_cut",
    0x03: "vibration",
    0x04: "geofence_enter",
    0x05: "geofence_exit",
    0x06: "overspeed",
    0x09: "vibration",
    0x0C: "tamper",
    0x0E: "low_battery",
    0x0F: "low_battery",
    0x11: "power_off",
    0x13: "tamper",
    0x14: "door",
    0x18: "removal",
    0x19: "low_battery",
    0x1A: "harsh_braking",
    0x1B: "sharp_turn",
    0x23: "fall_down",
    0x25: "tamper",
    0x26: "harsh_acceleration",
    0x27: "harsh_braking",
    0x28: "harsh_braking",
    0x29: "harsh_acceleration",
    0x2A: "sharp_turn",
    0x2B: "sharp_turn",
    0x2C: "collision",
    0x2E: "sharp_turn",
    0x30: "jamming",
    0x32: "tamper",
    0xF0: "harsh_acceleration",
    0xF1: "harsh_braking",
    0xF2: "collision",
    0x0107: "jamming",
    0x010B: "jamming",
}
#: Codes whose meaning differs by model family.
_LW = {0x18: "collision", 0x19: "harsh_acceleration"}  # LW… (Jimi LW4G and kin)
_SEEWORLD = {0x28: "sharp_turn", 0x29: "collision"}
_VL = {0x09: "tow", 0x28: "power_off", 0x30: "harsh_braking"}  # VL103, LL303, VL512, G18
_VL_MODELS = frozenset({"VL103", "LL303", "VL512", "G18"})
#: Units whose 0x22/0x25 start with a location-source byte, the IMEI and a device time, and end with a
#: status block with power
NT_MODELS = frozenset({"NT11", "NT20", "NT26", "NT40", "NT46", "VL100", "XT40"})
_NT = Layout(True, True, True, lbs_length=True, power=True)
_NT_25 = Layout(True, True, True, cid_width=4, lbs_length=True, power=True)

#: Terminal-information bits 3–5 → alarm name.
TERMINAL_ALARM = {1: "vibration", 2: "power_cut", 3: "low_battery", 4: "sos", 6: "geofence", 7: "removal"}


def alarm_name(code: int, model: str | None = None) -> str | None:
    """Our name of a status block's alarm code (``None`` for 0 and for codes nobody documents)."""
    m = (model or "").upper()
    for table, applies in ((_LW, m.startswith("LW")), (_SEEWORLD, m == "SEEWORLD"), (_VL, m in _VL_MODELS)):
        if applies and code in table:
            return table[code]
    return _ALARMS.get(code)


def terminal_attrs(info: int) -> dict[str, Any]:
    return {
        "armed": bool(info & 0x01),
        "acc": bool(info & 0x02),
        "charging": bool(info & 0x04),
        "gps_tracking": bool(info & 0x40),
        "oil_cut": bool(info & 0x80),
    }


def _gps(c: bytes, tz_hours: float) -> tuple[Position, int]:
    if len(c) < 18:
        raise FrameError("GPS block shorter than 18 bytes")
    y, mo, d, h, mi, s = c[:6]
    lat_u, lon_u = struct.unpack_from(">II", c, 7)
    speed = c[15]
    (flags,) = struct.unpack_from(">H", c, 16)
    lat = lat_u / 1_800_000 * (1 if flags & 0x0400 else -1)
    lon = lon_u / 1_800_000 * (-1 if flags & 0x0800 else 1)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise FrameError(f"coordinates out of range ({lat}, {lon})")
    attrs: dict[str, Any] = {"satellites": c[6] & 0x0F}
    if flags & 0x4000:
        attrs["acc"] = bool(flags & 0x8000)
    pos = Position(
        lat=lat,
        lon=lon,
        valid=bool(flags & 0x1000),
        time=local_to_utc(y, mo, d, h, mi, s, tz_hours),
        speed_kmh=float(speed),
        heading_deg=float(flags & 0x03FF) if (flags & 0x03FF) <= 360 else None,
        attributes=attrs,
    )
    return pos, 18


def _lbs(c: bytes, pos: int, layout: Layout, attrs: dict[str, Any]) -> int:
    """Read the LBS block at ``pos`` into ``attrs``; return where the next block starts."""
    end = None
    if layout.lbs_length:
        # the length byte says 8 or 9 for the same 8 bytes of cell data, depending on the vendor; a
        # longer block (another cell layout) is skipped by it
        n = c[pos] if pos < len(c) else 0
        if n == 0:
            return pos + 1
        end = pos + n
        pos += 1
    if len(c) < pos + 3:
        return end if end is not None else len(c)
    mcc = int.from_bytes(c[pos : pos + 2], "big")
    pos += 2
    mnc_width = 2 if mcc & 0x8000 or layout.wide_mnc else 1
    attrs["mcc"] = mcc & 0x7FFF
    attrs["mnc"] = int.from_bytes(c[pos : pos + mnc_width], "big")
    pos += mnc_width
    attrs["lac"] = int.from_bytes(c[pos : pos + layout.lac_width], "big")
    pos += layout.lac_width
    attrs["cell_id"] = int.from_bytes(c[pos : pos + layout.cid_width], "big")
    pos += layout.cid_width
    return max(end, pos) if end is not None else pos


def _status(
    c: bytes, pos: int, layout: Layout, model: str | None, attrs: dict[str, Any], alarms: list[str]
) -> int:
    if layout.network_byte:
        pos += 1
    if len(c) < pos + 1:
        return pos
    info = c[pos]
    pos += 1
    attrs.update(terminal_attrs(info))
    attrs["terminal_info"] = info
    if layout.power and len(c) >= pos + 2:
        attrs["power_v"] = int.from_bytes(c[pos : pos + 2], "big") / 100
        pos += 2
    name = TERMINAL_ALARM.get((info >> 3) & 0x07)
    if layout.no_alarm_code and name == "removal":
        name = "overspeed"  # VXT01 says overspeed with terminal alarm 7
    if name:
        alarms.append(name)
    if len(c) < pos + 3:
        return pos
    attrs["voltage_level"] = c[pos]
    attrs["gsm_signal"] = c[pos + 1]
    code = c[pos + 2]
    if layout.wide_alarm and len(c) > pos + 3:
        code += (c[pos + 3] >> 4) << 8
    if code and not layout.no_alarm_code:
        attrs["alarm_code"] = code
        coded = alarm_name(code, model)
        if coded:
            alarms.append(coded)
    return pos + 3


def decode_body(
    protocol: int, c: bytes, tz_hours: float, model: str | None = None
) -> tuple[Position | None, dict[str, Any], list[str]]:
    """A packet of :data:`LAYOUTS`: its position (``None`` without a GPS block), attributes and alarms."""
    layout = LAYOUTS[protocol]
    if protocol == 0x12 and (model or "").upper() == "QH302R":
        c = c[8:]  # the IMEI comes first on this model
    if protocol in (0x22, 0x25) and (model or "").upper() in NT_MODELS:
        layout = _NT if protocol == 0x22 else _NT_25
        c = c[15:]  # location source, IMEI (8), device time (6)
    elif protocol == 0x16 and len(c) == 31:
        layout = _VXT01
    elif protocol == 0x16 and len(c) == 33:
        layout = _SEEWORLD_16
    attrs: dict[str, Any] = {}
    alarms: list[str] = []
    pos_: Position | None = None
    at = 0
    if layout.gps:
        pos_, at = _gps(c, tz_hours)
        attrs.update(pos_.attributes)
    if layout.lbs and len(c) > at + 6:
        at = _lbs(c, at, layout, attrs)
    if layout.status:
        _status(c, at, layout, model, attrs, alarms)
    elif protocol == 0x12 and len(c) == 31 and len(c) >= at + 5:
        # VXT01: terminal information (bit 1 ACC), power (0.01 V), GSM signal, alarm extension
        attrs.update(terminal_attrs(c[at]))
        attrs["power_v"] = int.from_bytes(c[at + 1 : at + 3], "big") / 100
        attrs["gsm_signal"] = c[at + 3]
    elif protocol in (0x12, 0x22, 0xA0, 0x24) and len(c) > at:
        attrs["acc"] = bool(c[at])  # GT06N: one ACC byte after the LBS block
    alarms = list(dict.fromkeys(alarms))
    if pos_ is not None:
        pos_.attributes = attrs
        pos_.alarms = tuple(alarms)
        pos_.status_bits = attrs.get("terminal_info", 0x02 if attrs.get("acc") else 0)
        pos_.alarm_bits = attrs.get("alarm_code", 0)
        if alarms:
            attrs["alarm"] = alarms[0]
    return pos_, attrs, alarms


#: 0x95 event codes → our alarm names (0x01 is an SOS when the packet carries a position).
_EVENTS_95 = {
    0x0E: "low_external_battery",
    0x80: "vibration",
    0x87: "overspeed",
    0x88: "power_cut",
    0x90: "harsh_acceleration",
    0x91: "harsh_braking",
    0x92: "sharp_turn",
    0x93: "collision",
}


def decode_alarm_95(c: bytes, tz_hours: float) -> tuple[Position | None, dict[str, Any], list[str]]:
    """0x95 (JC100/JC400 cameras) alarm: [marker ffff, version,] time, position, event code, event data.

    The long form (JC400, after an ``ff ff`` marker) has a full GPS block with satellites, a 2-byte speed
    and the flags before it, then the power (0.1 V); the short form without a position is only a time.
    """
    attrs: dict[str, Any] = {}
    pos: Position | None = None
    at = 0
    if len(c) >= 2 and c[:2] == b"\xff\xff":  # JC400: marker, version, then the GPS block
        at = 3
        if len(c) < at + 21:
            raise FrameError("0x95 GPS block truncated")
        y, mo, d, h, mi, s = c[at : at + 6]
        sats = c[at + 6] & 0x0F
        lat_u, lon_u, flags, speed = struct.unpack_from(">IIHH", c, at + 7)
        at += 19
        pos = _flags_position(lat_u, lon_u, flags, float(speed), local_to_utc(y, mo, d, h, mi, s, tz_hours))
        pos.attributes["satellites"] = sats
        attrs["power_v"] = int.from_bytes(c[at : at + 2], "big") / 10
        at += 2
    elif len(c) > 7:  # a position without satellites and speed: time, latitude, longitude, flags
        if len(c) < 16:
            raise FrameError("0x95 GPS block truncated")
        y, mo, d, h, mi, s = c[:6]
        lat_u, lon_u, flags = struct.unpack_from(">IIH", c, 6)
        at = 16
        pos = _flags_position(lat_u, lon_u, flags, 0.0, local_to_utc(y, mo, d, h, mi, s, tz_hours))
    else:
        at = 6
    if len(c) < at + 1:
        raise FrameError("0x95 event truncated")
    event = c[at]
    attrs["event"] = event
    if len(c) >= at + 3:
        attrs["event_data"] = int.from_bytes(c[at + 1 : at + 3], "big")
    alarms = []
    if event == 0x01:
        alarms.append("sos" if pos is not None else "general")
    elif event in _EVENTS_95:
        alarms.append(_EVENTS_95[event])
    if pos is not None:
        pos.attributes.update(attrs)
        pos.alarms = tuple(alarms)
        pos.alarm_bits = event
        if alarms:
            pos.attributes["alarm"] = alarms[0]
    return pos, attrs, alarms


def _flags_position(lat_u: int, lon_u: int, flags: int, speed: float, time: Any) -> Position:
    lat = lat_u / 1_800_000 * (1 if flags & 0x0400 else -1)
    lon = lon_u / 1_800_000 * (-1 if flags & 0x0800 else 1)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise FrameError(f"coordinates out of range ({lat}, {lon})")
    return Position(
        lat=lat,
        lon=lon,
        valid=bool(flags & 0x1000),
        time=time,
        speed_kmh=speed,
        heading_deg=float(flags & 0x03FF) if (flags & 0x03FF) <= 360 else None,
        attributes={},
    )


#: 0x70 module 0x34 event codes → our alarm names.
_MODULE_EVENTS = {
    0x10: "door",
    0x12: "removal",
    0x14: "geofence_enter",
    0x15: "geofence_exit",
    0x1A: "low_battery",
    0x1B: "overspeed",
    0x1D: "power_off",
    0x20: "vibration",
    0x21: "power_cut",
    0x23: "tamper",
}


def decode_modular(c: bytes) -> tuple[Position | None, dict[str, Any], list[str]]:
    """0x70: a list of modules ``type:2 length:2 value``. Module 0x33 is a GPS fix (UTC seconds,
    satellites, altitude, latitude, longitude, speed, course/status word), 0x34 an event (the alarm),
    0x09 satellites, 0x18 battery (10 mV), 0x03 the ICCID; the rest is skipped by its length."""
    attrs: dict[str, Any] = {}
    alarms: list[str] = []
    pos: Position | None = None
    at = 0
    while at + 4 <= len(c):
        kind = int.from_bytes(c[at : at + 2], "big")
        n = int.from_bytes(c[at + 2 : at + 4], "big")
        value = c[at + 4 : at + 4 + n]
        at += 4 + n
        if len(value) < n:
            raise FrameError(f"0x70 module 0x{kind:02x} truncated")
        if kind == 0x33 and n >= 18:
            seconds, sats, alt, lat_u, lon_u, speed, flags = struct.unpack_from(">IBhIIBH", value)
            time = datetime.fromtimestamp(seconds, UTC) if seconds else None
            pos = _flags_position(lat_u, lon_u, flags, float(speed), time)
            pos.altitude_m = float(alt)
            attrs["satellites"] = sats
        elif kind == 0x34 and n >= 1:
            attrs["event"] = value[0]
            name = _MODULE_EVENTS.get(value[0])
            if name:
                alarms.append(name)
        elif kind == 0x09 and n >= 1:
            attrs["satellites"] = value[0]
        elif kind == 0x18 and n >= 2:
            attrs["battery_v"] = int.from_bytes(value[:2], "big") / 100
        elif kind == 0x03 and n >= 10:
            attrs["iccid"] = value[:10].hex()
    if pos is not None:
        pos.attributes.update(attrs)
        pos.alarms = tuple(alarms)
        if alarms:
            pos.attributes["alarm"] = alarms[0]
    return pos, attrs, alarms


def decode_x1(c: bytes, tz_hours: float) -> Position:
    """0x34 of X1 units: a 4-byte data/alarm word, the GPS block, terminal information (2), odometer (4)
    and a cell; the fix is what alarmhub reads of it."""
    if len(c) < 4 + 18:
        raise FrameError("0x34 GPS block truncated")
    pos, _ = _gps(c[4:], tz_hours)
    if len(c) >= 4 + 18 + 6:
        pos.attributes["odometer_m"] = int.from_bytes(c[24:28], "big")
    return pos


def _looks_like_time(c: bytes) -> bool:
    # a year byte of 10 or more (2010 on) tells a GPS block from a status block, which starts lower
    return (
        len(c) >= 6
        and c[0] >= 10
        and 1 <= c[1] <= 12
        and 1 <= c[2] <= 31
        and c[3] < 24
        and c[4] < 60
        and c[5] < 60
    )


def decode_status_36(
    c: bytes, tz_hours: float, model: str | None = None
) -> tuple[Position | None, dict[str, Any], list[str]]:
    """0x36: on VL units a GPS block first (a position, read as the common block); on Jimi 4G units a
    status — terminal information, voltage, GSM signal, alarm code, language — then modules
    ``type:2 length:1 value`` (0x0018 battery in 10 mV)."""
    if len(c) >= 18 and _looks_like_time(c):
        pos, _ = _gps(c, tz_hours)
        return pos, dict(pos.attributes), []
    attrs: dict[str, Any] = {}
    alarms: list[str] = []
    at = _status(c, 0, _JIMI_36, model, attrs, alarms) + 1  # + language
    while at + 3 <= len(c):
        kind = int.from_bytes(c[at : at + 2], "big")
        n = c[at + 2]
        value = c[at + 3 : at + 3 + n]
        at += 3 + n
        if kind == 0x0018 and len(value) == 2:
            attrs["battery_v"] = int.from_bytes(value, "big") / 100
    return None, attrs, list(dict.fromkeys(alarms))


_JIMI_36 = Layout(False, False, True)
