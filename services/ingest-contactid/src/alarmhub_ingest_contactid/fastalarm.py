"""``AlarmEvent`` on the receiver's hot path without a pydantic round trip.

Per DC-09 message the receiver built a ``Source`` and an ``AlarmEvent`` through pydantic's validation
and serialized the event through pydantic again: about a fifth of its CPU per message. The decoders
already type every field (enums from the code tables, strings from the frame's regular expressions,
aware datetimes from the clock and the parsed timestamp), so :func:`fast_alarm` checks only the
constraints the model would check that the decoders do not guarantee, cleans the text as the model
does (control characters from the frame, e.g. a NUL in an extended data block, are escaped; the frame
itself is kept reversibly escaped in ``raw``) and fills the models directly,
and :func:`alarm_json` writes the model's JSON itself. ``tests/test_fastalarm.py`` compares both with
the validated model on real frames. Anything unusual (a value the JSON writer cannot take) falls back
to pydantic.
"""

from __future__ import annotations

from datetime import datetime
from json.encoder import encode_basestring as _encode_str  # what ``dumps`` uses for a str (C)
from typing import Any

from alarmhub_events import (
    ALARM_SCHEMA,
    AlarmEvent,
    AlarmKind,
    Location,
    Protocol,
    Qualifier,
    Source,
    new_event_id,
)
from alarmhub_events.fast import (
    RAW_ESCAPED,
    clean_attributes,
    clean_text,
    escape_raw,
    filled,
    iso_z,
    json_string_memo,
)
from alarmhub_events.fast import dumps as _dumps

__all__ = ["alarm_json", "fast_alarm", "fast_source"]

_SOURCE_FIELDS = frozenset(Source.model_fields)
_SOURCE_OPTIONAL = ("account", "receiver", "line", "path", "peer", "platform")
_ALARM_FIELDS = frozenset(AlarmEvent.model_fields)


def fast_source(
    *,
    protocol: Protocol,
    device_id: str,
    account: str | None,
    receiver: str | None,
    line: str | None,
    path: str | None,
    peer: str | None,
) -> Source:
    """``Source(...)`` without validation; equal to it for the typed values the session passes."""
    if type(protocol) is not Protocol or not 0 < len(device_id) <= 128:
        raise ValueError("invalid source identity")
    device_id = clean_text(device_id)  # after the length check, as the model cleans after validating
    return filled(
        Source,
        {
            "protocol": protocol,
            "device_id": device_id,
            "account": _opt(account),
            "receiver": _opt(receiver),
            "line": _opt(line),
            "path": _opt(path),
            "peer": _opt(peer),
            "platform": None,
        },
        _SOURCE_FIELDS,
    )


def _opt(text: str | None) -> str | None:
    return None if text is None else clean_text(text)


def fast_alarm(
    *,
    kind: AlarmKind,
    qualifier: Qualifier,
    source: Source,
    code: str | None,
    zone: str | None,
    occurred_at: datetime,
    received_at: datetime,
    location: Location | None,
    attributes: dict[str, Any],
    raw: str,
) -> AlarmEvent:
    """``AlarmEvent(...)`` without re-validation: every field is typed by the decoders; the checks the
    model would make and the decoders do not guarantee are made here (a ``ValueError``, as pydantic's)."""
    if type(kind) is not AlarmKind or type(qualifier) is not Qualifier:
        raise ValueError("kind or qualifier not an enum member")
    if occurred_at.tzinfo is None or received_at.tzinfo is None:
        raise ValueError("naive timestamp")
    if (code is not None and type(code) is not str) or (zone is not None and type(zone) is not str):
        raise ValueError("code or zone not a string")
    attributes = clean_attributes(attributes)
    escaped = escape_raw(raw)
    if escaped is not None:
        raw, attributes = escaped, {**attributes, RAW_ESCAPED: True}
    return filled(
        AlarmEvent,
        {
            "event_id": new_event_id(),
            "schema_": ALARM_SCHEMA,
            "kind": kind,
            "qualifier": qualifier,
            "source": source,
            "code": _opt(code),
            "zone": _opt(zone),
            "occurred_at": occurred_at,
            "received_at": received_at,
            "location": location,
            "attributes": attributes,
            "raw": raw,
        },
        _ALARM_FIELDS,
    )


#: device ids, accounts, peers and descriptions repeat
_jstr = json_string_memo(50_000)


def _location(loc: Location) -> str:
    d = loc.__dict__
    out = f'{{"lat":{float(d["lat"])!r},"lon":{float(d["lon"])!r},"crs":"{d["crs"]}"'
    if d["source"] is not None:
        out += f',"source":"{d["source"]}"'
    if d["accuracy_m"] is not None:
        out += f',"accuracy_m":{float(d["accuracy_m"])!r}'
    return out + "}"


def _attributes(attrs: dict[str, Any]) -> str:
    """The attributes object as ``dumps`` writes it, for the flat str/bool/int values the session puts
    there (keys and most values repeat: memoised); anything else goes through ``dumps``."""
    parts = []
    for k, v in attrs.items():
        if type(k) is not str:
            return _dumps(attrs)
        t = type(v)
        if t is str:
            parts.append(f"{_jstr(k)}:{_jstr(v)}")
        elif t is bool:
            parts.append(f"{_jstr(k)}:{'true' if v else 'false'}")
        elif t is int:
            parts.append(f"{_jstr(k)}:{v!r}")
        else:
            return _dumps(attrs)
    return "{" + ",".join(parts) + "}"


def alarm_json(ev: AlarmEvent) -> bytes:
    """``ev.to_bytes()`` without pydantic: the same fields in the same order, ``None`` fields left out.
    Parsed, it equals the model's own serialization (tested); values it cannot write go through pydantic."""
    d = ev.__dict__
    try:
        src = d["source"].__dict__
        source = f'{{"protocol":"{src["protocol"].value}","device_id":{_jstr(src["device_id"])}'
        for k in _SOURCE_OPTIONAL:
            v = src[k]
            if v is not None:
                source += f',"{k}":{_jstr(v)}'
        out = (
            f'{{"event_id":"{d["event_id"]}","schema":"{d["schema_"]}","kind":"{d["kind"].value}",'
            f'"qualifier":"{d["qualifier"].value}","source":{source}}}'
        )
        if d["code"] is not None:
            out += f',"code":{_jstr(d["code"])}'
        if d["zone"] is not None:
            out += f',"zone":{_jstr(d["zone"])}'
        out += f',"occurred_at":"{iso_z(d["occurred_at"])}","received_at":"{iso_z(d["received_at"])}"'
        if d["location"] is not None:
            out += f',"location":{_location(d["location"])}'
        out += f',"attributes":{_attributes(d["attributes"])},"raw":{_encode_str(d["raw"])}}}'
    except (TypeError, ValueError, AttributeError, KeyError):
        return ev.to_bytes()
    return out.encode()
