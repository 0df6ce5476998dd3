"""What flows between the stages: one :class:`Item` per raw event, and the compact :class:`Record`.

A Record is what an incident remembers of each contributing event (kept in Redis as JSON), enough for
the score stage to reason about zones, detectors, cameras, cancels and vehicle patterns without
holding the full events.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from alarmhub_events import SENSOR, VEHICLE_ATTRIBUTES, AlarmEvent, AlarmKind, Protocol, Qualifier, Reason

__all__ = [
    "CAMERA_PROTOCOLS",
    "NAMESPACE",
    "VEHICLE_PROTOCOLS",
    "Item",
    "Record",
    "dumps",
    "is_camera",
    "is_vehicle",
    "uuid5_str",
]

#: uuid5 namespace of triage's deterministic ids (incident ids, decision event ids).
NAMESPACE = uuid.UUID("5b0d6f7e-2f5c-4d8a-9a51-7c1e0e7a1d26")

VEHICLE_PROTOCOLS = frozenset({Protocol.JT808, Protocol.JT809, Protocol.GT06, Protocol.H02})
CAMERA_PROTOCOLS = frozenset({Protocol.ISAPI, Protocol.ONVIF, Protocol.GB28181})
_VIDEO_KINDS = frozenset({AlarmKind.MOTION, AlarmKind.INTRUSION, AlarmKind.LINE_CROSSING})
#: Event attributes an incident keeps (vehicle patterns and track checks read them).
_KEPT_ATTRIBUTES = (*VEHICLE_ATTRIBUTES, SENSOR, "owner_report")


def dumps(obj: Any) -> bytes:
    """Compact JSON (orjson); the standard library for what orjson refuses (integers beyond 64 bits)."""
    try:
        return orjson.dumps(obj)
    except TypeError:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def uuid5_str(name: str) -> str:
    """``str(uuid.uuid5(NAMESPACE, name))`` without building UUID objects (two per event on the hot path)."""
    h = hashlib.sha1(_NS_BYTES + name.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


_NS_BYTES = NAMESPACE.bytes
_VARIANT = {c: "89ab"[int(c, 16) & 0x3] for c in "0123456789abcdef"}


def is_vehicle(ev: AlarmEvent) -> bool:
    return ev.source.protocol in VEHICLE_PROTOCOLS


def is_camera(ev: AlarmEvent) -> bool:
    p = ev.source.protocol
    return p in CAMERA_PROTOCOLS or (p == Protocol.WEBHOOK and ev.kind in _VIDEO_KINDS)


@dataclass(frozen=True, slots=True)
class Record:
    event_id: str
    kind: AlarmKind
    qualifier: Qualifier
    t: int  # received_at, epoch ms (event time of triage's windows)
    zone: str | None = None
    code: str | None = None
    device: str = ""
    camera: bool = False
    test: bool = False  # raised while its device was in test mode
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def principle(self) -> str | None:
        """Sensing principle when the event says (``attributes.sensor``: pir, contact, glass, video…)."""
        if self.camera:
            return "video"
        s = self.attrs.get(SENSOR)
        return str(s) if s else None

    def to_json(self) -> str:
        d: dict[str, Any] = {
            "e": self.event_id,
            "k": self.kind.value,
            "q": self.qualifier.value,
            "t": self.t,
            "d": self.device,
        }
        if self.zone is not None:
            d["z"] = self.zone
        if self.code is not None:
            d["c"] = self.code
        if self.camera:
            d["v"] = 1
        if self.test:
            d["m"] = 1
        if self.attrs:
            d["a"] = self.attrs
        return dumps(d).decode()

    @classmethod
    def from_json(cls, text: str | bytes) -> Record:
        return cls.from_dict(orjson.loads(text))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Record:
        return cls(
            event_id=d["e"],
            kind=AlarmKind(d["k"]),
            qualifier=Qualifier(d["q"]),
            t=int(d["t"]),
            zone=d.get("z"),
            code=d.get("c"),
            device=d.get("d", ""),
            camera=bool(d.get("v")),
            test=bool(d.get("m")),
            attrs=d.get("a") or {},
        )

    @classmethod
    def of(cls, ev: AlarmEvent) -> Record:
        a = ev.attributes
        attrs = {k: a[k] for k in _KEPT_ATTRIBUTES if k in a} if a else {}
        return cls(
            str(ev.event_id),
            ev.kind,
            ev.qualifier,
            ms(ev),
            ev.zone,
            ev.code,
            ev.source.device_id,
            is_camera(ev),
            False,
            attrs,
        )


def ms(ev: AlarmEvent) -> int:
    return int(ev.received_at.timestamp() * 1000)


@dataclass(slots=True)
class Item:
    """One raw event on its way through the stages. ``dropped`` names why it produced no decision."""

    event: AlarmEvent
    ts: int
    record: Record
    raw: bytes | None = None  # the consumed bytes (the decision carries them when our encoder wrote them)
    dropped: str | None = None
    swinger_report: bool = False  # the first throttled signal of a swinger: reported as trouble
    incident_id: str | None = None  # uuid text
    corr_key: str = ""
    opened: bool = False
    history: list[Record] = field(default_factory=list)  # the incident's records up to this event
    camera_hits: int = 0
    area_sites: int = 0
    verdicts: tuple[int, int] = (0, 0)  # (genuine, false_alarm) of this device
    test_mode: bool = False
    score: int = 0
    reasons: list[Reason] = field(default_factory=list)
    decision: str | None = None
    priority: int = 3
    major_event: bool = False
    decision_id: str = ""  # the decision's event id (uuid5 of the raw event id)
    memo_key: tuple[object, ...] | None = (
        None  # score/decide inputs of a one-signal incident (stages/score.py)
    )

    @classmethod
    def of(cls, ev: AlarmEvent, raw: bytes | None = None) -> Item:
        rec = Record.of(ev)
        return cls(ev, rec.t, rec, raw)
