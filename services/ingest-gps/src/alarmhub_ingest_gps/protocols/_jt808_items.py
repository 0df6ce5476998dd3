"""Vendors' additional-information items of a JT/T 808 0x0200 body (ids the standard leaves to vendors).

JT/T 808 reserves item ids 0xE0–0xFF (and, in practice, leaves many others unused) for vendor data,
and the trackers in the field put alarms there that the standard's alarm word cannot say — a removed
or tampered unit, a vibration sensor, a panic button on a sub-device. This module reads the items whose
layout the widely deployed decoders agree on, so such alarms are not lost:

==========  ============================================================================================
item        layout → what we take
==========  ============================================================================================
``0xEB``    extended block: entries ``len:2 id:2 value`` (``len`` counts id and value). ``0x0089``: a
            32-bit word, active-low: bit 0 → ``power_off``, bit 12 → ``removal``. ``0x00C5``: a 32-bit
            word, active-low: bit 6 → ``vibration``. ``0x00C6``: battery state, 3 or 4 → ``low_battery``.
            ``0x002D``: battery (2 bytes, mV) or external power (4 bytes, mV). ``0x00B2``: ICCID (BCD,
            ``f`` padded). ``0x00A8``/``0x00E1``: battery level %. ``0x00CE``: power (10 mV).
            A block of printable text is a time-zone label; one whose first word is a country code
            (> 200) is a cell list — neither carries an alarm.
``0xE7``    length 8: a 16-bit word, bit 0 → ``vibration``, bits 1–3 → ``sos``.
``0xE8``    only on JC-series cameras (``model`` given): a 16-bit event code (0x0C01 SOS, 0x0406
            vibration, 0x040C door, 0x0C0E power cut, 0x0C0F low battery, 0x0C10 power off, 0x0C12
            tamper, 0x0400/0x0412 harsh acceleration, 0x0401/0x0413 harsh braking, 0x0405/0x0416/0x0417
            collision, 0x0408/0x0409 geofence enter/exit, 0x0403 overspeed).
``0xFE``    length 1: battery level %; length 2: power (0.1 V); longer with marker ``0x7C``: entries
            ``type:1 len:1 value``, type 0x01 a 32-bit word (bit 0 harsh acceleration, 1 harsh braking,
            2 sharp turn, 3 collision, 4 tamper).
``0x57``    length ≥ 8: a 16-bit behaviour word (bit 8 harsh acceleration, 9 harsh braking, 10 sharp
            turn), 2 bytes of switch states, a 32-bit alarm word (bit 16 door on MV710G/MV810G).
``0xE3``    reserved byte, battery level %, battery (10 mV).
``0xE4``    charging flag (0 = charging), battery level %.
``0x56``    battery level in tens of percent, reserved byte.
``0xF6``    length 8, not on AOVX units: the unit's IMEI, BCD with a leading pad digit (an attribute;
            the terminal number stays the identity).
==========  ============================================================================================

:func:`read` returns the alarm names (the vocabulary of ``ALARM_KINDS`` in the session) and the
attributes; it never raises: an item too short for its layout is skipped.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AOVX_MODELS", "JC_MODELS", "PADLOCK_MODELS", "read", "word_alarms"]

#: Models whose 0xE8 item is an event code (the others use 0xE8 for a lock status).
JC_MODELS = frozenset({"JC371", "JC181", "JC182", "JC450", "JC451"})
#: Models whose alarm word is their own: padlocks (bits 0/4 removal, 1 tamper) and AOVX units (16 movement).
PADLOCK_MODELS = frozenset({"G-360P", "G-508P"})
AOVX_MODELS = frozenset({"AL300", "GL100"})

_E8_EVENTS: dict[int, str] = {
    0x0C01: "sos",
    0x0406: "vibration",
    0x040C: "door",
    0x0C0E: "power_cut",
    0x0C0F: "low_battery",
    0x0C10: "power_off",
    0x0C12: "tamper",
    0x0400: "harsh_acceleration",
    0x0412: "harsh_acceleration",
    0x0401: "harsh_braking",
    0x0413: "harsh_braking",
    0x0402: "sharp_turn",
    0x0414: "sharp_turn",
    0x0403: "overspeed",
    0x0405: "collision",
    0x0416: "collision",
    0x0417: "collision",
    0x0408: "geofence_enter",
    0x0409: "geofence_exit",
}

_BEHAVIOUR_BITS = {0: "harsh_acceleration", 1: "harsh_braking", 2: "sharp_turn", 3: "collision", 4: "tamper"}


def _u(data: bytes) -> int:
    return int.from_bytes(data, "big")


def _printable(data: bytes) -> bool:
    return bool(data) and all(0x20 <= b < 0x7F for b in data)


def _extended(value: bytes, alarms: list[str], attrs: dict[str, Any]) -> None:
    """The 0xEB block."""
    if len(value) >= 3 and _u(value[:2]) > 200 and (len(value) - 3) % 5 == 0:
        return  # mcc, mnc and a list of cells
    if _printable(value):
        attrs["timezone"] = value.decode("ascii")
        return
    pos, n = 0, len(value)
    while pos + 4 <= n:
        length = _u(value[pos : pos + 2])
        if length < 2:
            break
        kind = _u(value[pos + 2 : pos + 4])
        data = value[pos + 4 : pos + 2 + length]
        pos += 2 + length
        if kind == 0x0089 and len(data) == 4:
            word = _u(data)
            if not word & 0x0001:
                alarms.append("power_off")
            if not word & 0x1000:
                alarms.append("removal")
        elif kind == 0x00C5 and len(data) == 4:
            if not _u(data) & 0x40:
                alarms.append("vibration")
        elif kind == 0x00C6 and len(data) >= 1:
            attrs["battery_alarm"] = data[0]
            if data[0] in (3, 4):
                alarms.append("low_battery")
        elif kind == 0x002D and len(data) == 2:
            attrs["battery_v"] = _u(data) / 1000
        elif kind == 0x002D and len(data) == 4:
            attrs["power_v"] = _u(data) / 1000
        elif kind == 0x00B2 and len(data) == 10:
            attrs["iccid"] = data.hex().rstrip("f")
        elif kind in (0x00A8, 0x00E1) and len(data) >= 1:
            attrs["battery_level"] = data[0]
        elif kind == 0x00CE and len(data) == 2:
            attrs["power_v"] = _u(data) / 100


def _behaviour(value: bytes, alarms: list[str]) -> None:
    """0xFE with marker 0x7C: type/length entries."""
    pos, n = 1, len(value)
    while pos + 2 <= n:
        kind, length = value[pos], value[pos + 1]
        data = value[pos + 2 : pos + 2 + length]
        pos += 2 + length
        if kind == 0x01 and len(data) == 4:
            word = _u(data)
            alarms.extend(name for bit, name in _BEHAVIOUR_BITS.items() if word >> bit & 1)


def read(item: int, value: bytes, model: str | None, alarms: list[str], attrs: dict[str, Any]) -> bool:
    """Read one vendor item into ``alarms``/``attrs``; False when it is not one of the layouts above (the
    caller then keeps it as hex)."""
    n = len(value)
    if item == 0xEB:
        _extended(value, alarms, attrs)
    elif item == 0xE7 and n == 8:
        word = _u(value[:2])
        if word & 0x01:
            alarms.append("vibration")
        if word & 0x0E:
            alarms.append("sos")
    elif item == 0xE8 and model in JC_MODELS and n >= 2:
        name = _E8_EVENTS.get(_u(value[:2]))
        if name:
            alarms.append(name)
    elif item == 0xFE and n == 1:
        attrs["battery_level"] = value[0]
    elif item == 0xFE and n == 2:
        attrs["power_v"] = _u(value) / 10
    elif item == 0xFE and n > 4 and value[0] == 0x7C:
        _behaviour(value, alarms)
    elif item == 0x57 and n >= 8:
        word = _u(value[:2])
        for bit, name in ((8, "harsh_acceleration"), (9, "harsh_braking"), (10, "sharp_turn")):
            if word >> bit & 1:
                alarms.append(name)
        if model in ("MV710G", "MV810G") and _u(value[4:8]) >> 16 & 1:
            alarms.append("door")
    elif item == 0xE3 and n == 4:
        attrs["battery_level"] = value[1]
        attrs["battery_v"] = _u(value[2:4]) / 100
    elif item == 0xE4 and n == 2:
        attrs["charge"] = value[0] == 0
        attrs["battery_level"] = value[1]
    elif item == 0x56 and n == 2:
        attrs["battery_level"] = value[0] * 10
    elif item == 0xF6 and n == 8 and model not in AOVX_MODELS:
        attrs["imei"] = value.hex()[1:]
    else:
        return False
    return True


def word_alarms(word: int, model: str | None) -> tuple[list[str], int]:
    """Vendor readings of the alarm word: (alarm names, the bits of the standard's table still to read).

    Padlocks and AOVX units give the word their own meaning, so none of the standard's bits apply to
    them. Other units use the bits the 2013/2019 tables leave reserved: 15 → vibration, 16 and 17 →
    tamper (the reading the deployed decoders share).
    """
    if model in PADLOCK_MODELS:
        names = ["removal"] if word & 0x11 else []
        return ([*names, "tamper"]) if word & 0x02 else names, 0
    if model in AOVX_MODELS:
        return (["movement"] if word >> 16 & 1 else []), 0
    names = []
    if word >> 15 & 1:
        names.append("vibration")
    if word & 0x30000:
        names.append("tamper")
    return names, word
