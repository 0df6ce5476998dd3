"""What every tracker protocol decodes into, and the helpers they share.

Each protocol module (jt808, gt06, h02) is pure: bytes in, these dataclasses out. They are slotted
dataclasses (treated as immutable) rather than pydantic models because a gateway process decodes tens
of thousands of them per second and they never cross a process boundary; the contract models
(``GpsFix``, ``AlarmEvent``, ``DeviceStatus``) are built from them in ``sessions/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["FrameError", "Position", "bcd_digits", "crc_itu", "local_to_utc"]


class FrameError(ValueError):
    """The peer sent bytes that do not form a valid frame (its fault, not ours)."""


@dataclass(slots=True)  # not frozen: a frozen __init__ costs ~2 µs per frame on the hot path
class Position:
    """One position report, normalized to WGS-84 decimal degrees, km/h and UTC.

    ``alarm_bits``/``status_bits`` keep the protocol's own words so nothing is lost in mapping;
    ``attributes`` holds the protocol's additional items by readable name.
    """

    lat: float
    lon: float
    valid: bool
    time: datetime | None
    speed_kmh: float = 0.0
    heading_deg: float | None = None
    altitude_m: float | None = None
    alarm_bits: int = 0
    status_bits: int = 0
    attributes: dict[str, Any] = field(default_factory=dict)
    alarms: tuple[str, ...] = ()
    """Alarms the protocol carries outside ``alarm_bits`` (vendors' items, model-specific words), by name."""


def bcd_digits(data: bytes) -> str:
    """Packed BCD to its digit string (``b"\\x01\\x23"`` → ``"0123"``); raises on a non-decimal nibble."""
    text = data.hex()
    if not text.isdigit():
        raise FrameError(f"invalid BCD {text}")
    return text


def local_to_utc(y: int, mo: int, d: int, h: int, mi: int, s: int, tz_hours: float) -> datetime | None:
    """A device's local wall-clock time to UTC; ``None`` when the fields are not a real instant.

    Terminals send their time without a zone; JT/T 808 mandates GMT+8 and most GT06/H02 units are
    set to UTC, so the offset is a per-protocol setting rather than a guess per frame.
    """
    try:
        local = datetime(2000 + y if y < 100 else y, mo, d, h, mi, s, tzinfo=UTC)
    except ValueError:
        return None
    return local - timedelta(hours=tz_hours)


def _crc_itu_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc_itu_table()


def crc_itu(data: bytes) -> int:
    """CRC-ITU (CRC-16/X-25: reflected 0x1021, init and xorout 0xFFFF), as GT06 frames carry it."""
    crc = 0xFFFF
    for b in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ b) & 0xFF]
    return crc ^ 0xFFFF
