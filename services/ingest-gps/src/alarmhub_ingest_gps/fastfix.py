"""``GpsFix`` on the hot path without pydantic: built without re-validation, serialized without it.

Tens of thousands of positions a second go through one gateway process (JT/T 808 terminals, JT/T
809 platform links); validating each fix against the model and serializing it through pydantic was
a third of the CPU per position. The decoders already type every field, so :func:`fast_fix` checks
only the model's constraints the decoders do not guarantee and fills the model directly, and
:func:`fix_json` writes the model's JSON itself (parsed, equal to ``fix.to_bytes()``; tested).
Other events keep pydantic.

The JT/T 809 main link goes one step further (``RawFix``): its hot path writes a live fix's JSON
straight from the decoded frame, with the pieces that repeat per vehicle, per second and per read
memoised, and never builds the model at all; :meth:`RawFix.model` parses it back when one is needed.
"""

from __future__ import annotations

import binascii
import os
from collections.abc import Iterable
from datetime import datetime
from math import copysign
from typing import Any

import orjson
from alarmhub_events import GPS_SCHEMA, Event, GpsFix, Protocol, new_event_id
from alarmhub_events.fast import clean_attributes, clean_text, filled, iso_z, json_string_memo

__all__ = ["RawFix", "direct_fix", "event_id_bytes", "fast_fix", "fix_json", "raw_items"]


def _checked(
    device_id: str,
    lat: float,
    lon: float,
    heading_deg: float | None,
    occurred_at: datetime,
    received_at: datetime,
) -> float | None:
    """The checks the model would make (range, aware times, id length), shared by :func:`fast_fix` and
    :func:`direct_fix`; returns the heading, left out (None) beyond 0–360°."""
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ValueError(f"coordinates out of range: {lat}, {lon}")
    if not 0 < len(device_id) <= 128 or occurred_at.tzinfo is None or received_at.tzinfo is None:
        raise ValueError("invalid fix identity or time")
    if heading_deg is not None and not 0.0 <= heading_deg <= 360.0:
        return None
    return heading_deg


def fast_fix(
    *,
    device_id: str,
    lat: float,
    lon: float,
    speed_kmh: float,
    heading_deg: float | None,
    altitude_m: float | None,
    valid: bool,
    occurred_at: datetime,
    received_at: datetime,
    attributes: dict[str, Any],
    protocol: Protocol = Protocol.JT809,
) -> GpsFix:
    """A ``GpsFix`` built without re-validation: this is the hot path (tens of thousands per second).

    Every field is already typed by the decoder; the constraints the model would check (ranges,
    aware timestamps, id length) are checked here and the text is cleaned as the model cleans it
    (control characters escaped), so the result equals ``GpsFix(...)``.
    """
    heading_deg = _checked(device_id, lat, lon, heading_deg, occurred_at, received_at)
    event_id = new_event_id()  # a version-4 UUID from pooled randomness, without UUID.__init__
    return filled(
        GpsFix,
        {
            "event_id": event_id,
            "schema_": GPS_SCHEMA,
            "device_id": clean_text(device_id),
            "protocol": protocol,
            "lat": lat,
            "lon": lon,
            "crs": "WGS84",
            "speed_kmh": speed_kmh,
            "heading_deg": heading_deg,
            "altitude_m": altitude_m,
            "valid": valid,
            "occurred_at": occurred_at,
            "received_at": received_at,
            "attributes": clean_attributes(attributes),
        },
        _FIX_FIELDS,
    )


_FIX_FIELDS = frozenset(GpsFix.model_fields)

#: attributes are plain JSON values from the decoders; like pydantic, orjson writes UTF-8, NaN as null
#: and non-string keys as strings (a value it cannot write raises TypeError: callers fall back to pydantic)
_orjson_dumps, _NON_STR_KEYS = orjson.dumps, orjson.OPT_NON_STR_KEYS


#: plates, platform names and device ids repeat
_jstr = json_string_memo(100_000)
_JT809 = Protocol.JT809  # a module constant: enum attribute access is slow on the hot path
#: the attributes every live 2011 position carries, in ``_emit``'s order
_STD_ATTRS = ("alarm_bits", "status_bits", "vec2_kmh", "mileage_km", "platform", "plate", "plate_colour")


def fix_json(fix: GpsFix) -> bytes:
    """``fix.to_bytes()`` without pydantic, for fixes of this module: the same fields in the same order
    (None fields left out), plain JSON values. Parsed, it equals the model's own serialization (tested).
    """
    d = fix.__dict__
    a = d["attributes"]
    if tuple(a) == _STD_ATTRS and type(a["platform"]) is str and type(a["plate"]) is str:
        attrs = (
            f'{{"alarm_bits":{int(a["alarm_bits"])},"status_bits":{int(a["status_bits"])},'
            f'"vec2_kmh":{int(a["vec2_kmh"])},"mileage_km":{int(a["mileage_km"])},'
            f'"platform":{_jstr(a["platform"])},"plate":{_jstr(a["plate"])},'
            f'"plate_colour":{int(a["plate_colour"])}}}'
        )
    else:
        attrs = _orjson_dumps(a, option=_NON_STR_KEYS).decode()  # a tenth of the json module's cost
    opt = ""
    for k in ("speed_kmh", "heading_deg", "altitude_m"):
        v = d[k]
        if v is not None:
            opt += f',"{k}":{float(v)!r}'
    return (
        f'{{"event_id":"{d["event_id"]}","schema":"{d["schema_"]}","device_id":{_jstr(d["device_id"])},'
        f'"protocol":"{"jt809" if d["protocol"] is _JT809 else d["protocol"].value}",'
        f'"lat":{float(d["lat"])!r},"lon":{float(d["lon"])!r},'
        f'"crs":"{d["crs"]}"{opt},"valid":{"true" if d["valid"] else "false"},'
        f'"occurred_at":"{iso_z(d["occurred_at"])}","received_at":"{iso_z(d["received_at"])}",'
        f'"attributes":{attrs}}}'
    ).encode()


#: a device's fix JSON between the event id and the latitude (schema, device id, protocol), by device id
#: (with the protocol it was written for: hashing an enum member is a Python call)
_HEADS: dict[str, tuple[Protocol, bytes]] = {}
#: JSON text of the optional float members by value, one memo per member: speeds, headings and altitudes
#: repeat across a fleet, and ``repr`` of a float costs ~0.3 µs (bounded: cleared when full)
_SPEED: dict[float, bytes] = {}
_HEADING: dict[float, bytes] = {}
_ALTITUDE: dict[float, bytes] = {}
#: the last receive time and its text: every fix of one read (a 0x0704 batch) shares it
_NOW: list[Any] = [None, b""]


def _member(memo: dict[float, bytes], name: bytes, value: float) -> bytes:
    text = memo.get(value)
    if text is None or value == 0.0:
        if value != value or (value == 0.0 and copysign(1.0, value) < 0.0):
            # NaN, and -0.0 (equal to 0.0 as a key, not as text): not remembered
            return b',"%s":%a' % (name, float(value))
        if text is None:
            if len(memo) >= 65_536:
                memo.clear()
            text = memo[value] = b',"%s":%a' % (name, float(value))
    return text


def direct_fix(
    *,
    device_id: str,
    lat: float,
    lon: float,
    speed_kmh: float,
    heading_deg: float | None,
    altitude_m: float | None,
    valid: bool,
    occurred_at: datetime,
    received_at: datetime,
    attributes: dict[str, Any],
    protocol: Protocol,
) -> RawFix | GpsFix:
    """The fix ``fast_fix`` would build, written straight to the JSON ``fix_json`` writes of it (a ``RawFix``):
    the tracker ports' hot path, which never needs the model. The same checks as ``fast_fix`` (range, aware
    times, id length; a heading beyond 0–360° left out) and the same text cleaning; the bytes equal
    ``fix_json(fast_fix(...))`` but for the event id (tested on real frames). Attributes plain JSON cannot
    carry give the model instead (``fast_fix``), which the app serializes through pydantic."""
    heading_deg = _checked(device_id, lat, lon, heading_deg, occurred_at, received_at)
    try:
        attrs = _orjson_dumps(clean_attributes(attributes), option=_NON_STR_KEYS)
    except TypeError:  # orjson's JSONEncodeError: a value plain JSON cannot carry
        return fast_fix(
            device_id=device_id,
            lat=lat,
            lon=lon,
            speed_kmh=speed_kmh,
            heading_deg=heading_deg,
            altitude_m=altitude_m,
            valid=valid,
            occurred_at=occurred_at,
            received_at=received_at,
            attributes=attributes,
            protocol=protocol,
        )
    known = _HEADS.get(device_id)
    if known is None or known[0] is not protocol:
        if len(_HEADS) >= 200_000:
            _HEADS.clear()
        known = _HEADS[device_id] = (
            protocol,
            f'","schema":"{GPS_SCHEMA}","device_id":{_jstr(device_id)},"protocol":"{protocol.value}","lat":'.encode(),
        )
    now = _NOW
    if received_at is not now[0]:
        now[0], now[1] = received_at, iso_z(received_at).encode()
    return RawFix(
        clean_text(device_id),
        b'{"event_id":"%s%s%a,"lon":%a,"crs":"WGS84"%s%s%s,"valid":%s,"occurred_at":"%s","received_at":"%s",'
        b'"attributes":%s}'
        % (
            event_id_bytes(),
            known[1],
            float(lat),
            float(lon),
            b"" if speed_kmh is None else _member(_SPEED, b"speed_kmh", speed_kmh),
            b"" if heading_deg is None else _member(_HEADING, b"heading_deg", heading_deg),
            b"" if altitude_m is None else _member(_ALTITUDE, b"altitude_m", altitude_m),
            b"true" if valid else b"false",
            now[1] if occurred_at is received_at else iso_z(occurred_at).encode(),
            now[1],
            attrs,
        ),
    )


class RawFix:
    """A live JT/T 809 fix the hot path already wrote as JSON (equal to ``fix_json`` of the model it
    stands for, event id aside; tested). Building the ``GpsFix`` and serializing it was half of the
    gateway's CPU per position; the model is parsed back only when something needs it (a dispatcher
    waiting for the vehicle's next position). Duck-types what the producer reads: ``to_bytes``, ``key``.
    """

    __slots__ = ("device_id", "value")

    def __init__(self, device_id: str, value: bytes) -> None:
        self.device_id = device_id
        self.value = value

    @property
    def key(self) -> str:
        return self.device_id

    def to_bytes(self) -> bytes:
        return self.value

    def model(self) -> GpsFix:
        """The ``GpsFix`` this JSON is (validated)."""
        fix: GpsFix = GpsFix.model_validate_json(self.value)
        return fix

    def __repr__(self) -> str:
        return f"RawFix({self.device_id!r}, {self.value!r})"


#: randomness for event ids, drawn from the kernel 256 ids at a time as hex digits
_HEX: list[bytes] = []
#: RFC 4122 variant: the top two bits of the 17th hex digit are 10 (keyed by the digit's byte value)
_VARIANT = {ord(c): "89ab"[int(c, 16) & 3].encode() for c in "0123456789abcdef"}


def _reset_hex() -> None:
    _HEX.clear()  # a forked child must never reuse its parent's pending randomness


os.register_at_fork(after_in_child=_reset_hex)


def event_id_bytes() -> bytes:
    """A random (version 4) UUID's text as bytes, what ``str(uuid.uuid4()).encode()`` gives, without the
    UUID object: the hot path writes JSON bytes, and ``UUID.__str__`` alone cost as much as drawing the id."""
    if not _HEX:
        h = binascii.hexlify(os.urandom(16 * 256))
        _HEX.extend(h[i : i + 32] for i in range(0, len(h), 32))
    h = _HEX.pop()
    return b"%s-%s-4%s-%s%s-%s" % (h[:8], h[8:12], h[13:16], _VARIANT[h[16]], h[17:20], h[20:])


def raw_items(items: Iterable[tuple[str, Event | RawFix]]) -> list[tuple[str, bytes, str | None]]:
    """What ``DurableProducer.send_raw_many`` takes: fixes serialized by ``fix_json``, other events by pydantic."""
    out: list[tuple[str, bytes, str | None]] = []
    for topic, ev in items:
        if type(ev) is RawFix:
            out.append((topic, ev.value, ev.device_id))
        elif type(ev) is GpsFix and ev.__dict__["protocol"] is _JT809:
            out.append((topic, fix_json(ev), ev.device_id))
        else:
            out.append((topic, ev.to_bytes(), getattr(ev, "key", None)))
    return out
