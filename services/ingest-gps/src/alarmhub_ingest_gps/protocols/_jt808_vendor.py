"""Vendors' JT/T 808 messages outside the standard that carry positions (private to :mod:`.jt808`).

The layouts are the ones the widely deployed decoders (traccar's ``Jt808ProtocolDecoder``) agree on;
the frames that test them are in ``tests/conformance/vectors/jt808/traccar.json``:

- **0x5501 / 0x5502** — smart locks' location report (0x5502: stored while offline). The header's serial
  is one byte, not two (:func:`.jt808.decode` knows). Body: time ``ddMMyy hhmmss`` (BCD, UTC), latitude
  ``DDMMmmmm`` (8 BCD digits: degrees, minutes × 10⁴), longitude ``DDDMMmmmm`` (9 digits, the last in
  the high nibble of the flags byte), flags (bit 1 north, bit 2 east), speed (2 BCD digits, knots),
  course / 2, signal, satellites, odometer (km), battery, cell id, LAC, product type, status word,
  alarm word (product 1/2: bit 0 low power; product 3: 0 overspeed, 1 low power, 2 vibration, 3 low
  battery, 5/6 geofence enter/exit), then ``id:1 len:1`` items (0x02: altitude, signed).
- **0x0900 type 0xF0** — transparent data with a vendor's record: time (BCD, the terminal's zone),
  archive flag, vehicle type, sub-type (0x01 OBD items ``id:2 len:1``, 0x02 trouble codes, 0x03 alarm
  events ``id:1 len:1``), then status word, latitude and longitude as in 0x0200. The record carries no
  speed. Other sub-types carry no position.
- **0x0210** — a batch of 0x0200 bodies, each behind a one-byte length (a 7-byte body is a battery
  level and a time, no position).

Each function returns positions or ``None``/``[]`` when the message carries none; too short a body raises
:class:`FrameError`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import datetime

from ._common import FrameError, Position, local_to_utc

#: alarm events of a 0x0900/0xF0 sub-type 0x03 record → our alarm names
_F0_EVENTS: dict[int, str] = {
    0x02: "power_cut",
    0x1A: "harsh_acceleration",
    0x1B: "harsh_braking",
    0x1C: "sharp_turn",
    0x23: "fatigue",
    0x25: "overspeed",
    0x26: "collision",
    0x27: "collision",
    0x28: "collision",
    0x31: "door",
    0x32: "door",
}

_LOCK_ALARMS_PRODUCT3: dict[int, str] = {
    0: "overspeed",
    1: "low_external_battery",
    2: "vibration",
    3: "low_battery",
    5: "geofence_enter",
    6: "geofence_exit",
}


def _minutes(raw: int) -> float:
    """``DDDMMmmmm``: degrees, then minutes × 10⁴."""
    return raw // 1_000_000 + (raw % 1_000_000) / 10_000 / 60


def decode_lock_location(body: bytes, *, stored: bool) -> Position:
    """0x5501 (live) / 0x5502 (``stored``: kept while offline; not a current fix)."""
    if len(body) < 35:
        raise FrameError(f"0x5501 body of {len(body)} bytes, need 35")
    d, digits = body[:6].hex(), body[6:14].hex()
    if not (d + digits).isdigit() or body[14] >> 4 > 9:
        raise FrameError("0x5501 time or coordinates not BCD")
    lat_raw = int(digits[:8])
    lon_raw = int(digits[8:]) * 10 + (body[14] >> 4)  # the ninth digit shares its byte with the flags
    flags = body[14]
    lat = _minutes(lat_raw) * (1 if flags & 0x02 else -1)
    lon = _minutes(lon_raw) * (1 if flags & 0x04 else -1)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise FrameError(f"coordinates out of range ({lat}, {lon})")
    speed = int(body[15:16].hex()) if body[15:16].hex().isdigit() else 0
    rssi, sats, odometer, battery, cid, lac, product, status, alarm = struct.unpack_from(
        ">BBIBIHBHH", body, 17
    )
    attrs: dict[str, object] = {"rssi": rssi, "satellites": sats, "odometer_km": odometer, "status": status}
    if battery <= 100:
        attrs["battery_level"] = battery
    elif battery in (0xAA, 0xAB):
        attrs["charge"] = True
    if cid and lac:
        attrs["cell"] = f"{lac}:{cid}"
    names: list[str] = []
    if product in (1, 2) and alarm & 1:
        names.append("low_external_battery")
    elif product == 3:
        names += [name for bit, name in _LOCK_ALARMS_PRODUCT3.items() if alarm >> bit & 1]
    altitude = None
    pos, n = 35, len(body)
    while pos + 2 <= n:
        item, length = body[pos], body[pos + 1]
        value = body[pos + 2 : pos + 2 + length]
        pos += 2 + length
        if item == 0x02 and len(value) == 2:
            altitude = float(int.from_bytes(value, "big", signed=True))
    return Position(
        lat=lat,
        lon=lon,
        valid=not stored,
        time=local_to_utc(int(d[4:6]), int(d[2:4]), int(d[0:2]), int(d[6:8]), int(d[8:10]), int(d[10:12]), 0),
        speed_kmh=speed * 1.852,
        heading_deg=body[16] * 2.0,
        altitude_m=altitude,
        attributes=attrs,
        alarms=tuple(names),
    )


def _skip_obd(body: bytes, pos: int) -> int:
    count = body[pos]
    pos += 1
    for _ in range(count):
        pos += 3 + body[pos + 2]
    return pos


def _skip_codes(body: bytes, pos: int) -> int:
    (count,) = struct.unpack_from(">H", body, pos)
    pos += 2
    for _ in range(count):
        (codes,) = struct.unpack_from(">H", body, pos + 4)
        pos += 6
        for _ in range(codes):
            (length,) = struct.unpack_from(">H", body, pos + 8)
            pos += 10 + length
    return pos


def decode_transparent(
    body: bytes, device_time: Callable[[bytes, float], datetime | None], tz_hours: float
) -> Position | None:
    """0x0900: a position when the body is a vendor's 0xF0 record of sub-type 0x01–0x03, else ``None``."""
    if len(body) < 10 or body[0] != 0xF0 or body[9] not in (0x01, 0x02, 0x03):
        return None
    time = device_time(body[1:7], tz_hours)
    names: list[str] = []
    try:
        if body[9] == 0x01:
            pos = _skip_obd(body, 10)
        elif body[9] == 0x02:
            pos = _skip_codes(body, 10)
        else:
            count, pos = body[10], 11
            for _ in range(count):
                event = _F0_EVENTS.get(body[pos])
                if event:
                    names.append(event)
                pos += 2 + body[pos + 1]
        status, lat_u, lon_u = struct.unpack_from(">III", body, pos)
    except (IndexError, struct.error) as exc:
        raise FrameError("0x0900/0xF0 record truncated") from exc
    lat = lat_u / 1e6 * (-1 if status & 0x04 else 1)
    lon = lon_u / 1e6 * (-1 if status & 0x08 else 1)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise FrameError(f"coordinates out of range ({lat}, {lon})")
    attrs: dict[str, object] = {"archive": True} if body[7] else {}
    return Position(
        lat=lat,
        lon=lon,
        valid=bool(status & 0x02),
        time=time,
        status_bits=status,
        attributes=attrs,
        alarms=tuple(dict.fromkeys(names)),
    )


def decode_batch_items(body: bytes, decode_location: Callable[[bytes], Position]) -> list[Position]:
    """0x0210: one-byte length + 0x0200 body, repeated; a 7-byte body (battery, time) has no position."""
    if len(body) == 7:
        return []
    positions, pos, n = [], 0, len(body)
    while pos < n:
        length = body[pos]
        item = body[pos + 1 : pos + 1 + length]
        if len(item) < length:
            raise FrameError("0x0210 item truncated")
        positions.append(decode_location(item))
        pos += 1 + length
    return positions
