"""JT/T 808 message bodies a terminal sends (private to :mod:`.jt808`, which re-exports the decoders).

0x0001 general response, 0x0100 registration (2011/2013/2019 layouts told apart by the version flag
and the length), 0x0102 authentication, 0x0200 location with its additional-information items (table 27;
vendors' items by :mod:`._jt808_items`), 0x0201 and 0x0704.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from . import _jt808_items
from ._common import FrameError, Position, local_to_utc


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
    :mod:`._jt808_items` reads them (their alarms appended to ``alarms``); unknown ids kept as hex."""
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
        elif not _jt808_items.read(item, value, model, alarms, attrs):
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
    (see :mod:`._jt808_items`); without it only the readings common to all units apply.
    """
    if len(body) < 28:
        raise FrameError(f"location body of {len(body)} bytes, need 28")
    alarm, status, lat_u, lon_u, alt, speed, heading = struct.unpack_from(">IIIIHHH", body)
    time = _device_time(body[22:28], tz_hours)
    lat = lat_u / 1e6 * (-1 if status & 0x04 else 1)
    lon = lon_u / 1e6 * (-1 if status & 0x08 else 1)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise FrameError(f"coordinates out of range ({lat}, {lon})")
    vendor, standard = _jt808_items.word_alarms(alarm, model)
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
