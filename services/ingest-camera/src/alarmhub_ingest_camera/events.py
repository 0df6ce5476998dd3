"""From decoded protocol messages to the contract's events. Pure: models in, models out, clock passed in.

Every protocol first becomes a list of :class:`Observation` (one camera, one rule, one state), so the
noise gate, the registry location and the Kafka shape are decided once for all four sources.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from alarmhub_events import (
    SENSOR,
    AlarmEvent,
    AlarmKind,
    DeviceStatus,
    DeviceStatusKind,
    Location,
    Protocol,
    Qualifier,
    Sensor,
    Source,
)

from .noise import Decision, Verdict
from .protocols.gb28181 import ALARM_METHODS, VIDEO_ALARM_TYPES, ManscdpMessage
from .protocols.isapi import IsapiPush
from .protocols.onvif import OnvifNotification
from .protocols.webhook import WebhookEvent
from .registry import Camera

__all__ = [
    "Liveness",
    "Observation",
    "alarm_event",
    "device_status",
    "from_gb28181",
    "from_isapi",
    "from_onvif",
    "from_webhook",
]

RAW_LIMIT = 4096


@dataclass
class Observation:
    protocol: Protocol
    device_id: str
    rule: str
    kind: AlarmKind
    active: bool
    code: str
    occurred_at: datetime | None = None
    zone: str | None = None
    location: Location | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    raw: str = ""


def _raw(data: bytes | str) -> str:
    text = data if isinstance(data, str) else data.decode("utf-8", errors="replace")
    return text[:RAW_LIMIT]


def isapi_device_id(push: IsapiPush) -> str:
    """Fallback identity of an unregistered ISAPI camera: its MAC (or IP) and channel."""
    a = push.alert
    return f"isapi:{a.mac or a.ip or 'unknown'}:{a.channel if a.channel is not None else 0}"


def from_isapi(push: IsapiPush, device_id: str) -> Observation:
    a = push.alert
    rule = a.event_type.lower() + (f"#{','.join(a.regions)}" if a.regions else "")
    attrs: dict[str, Any] = {"event_type": a.event_type}
    if a.description:
        attrs["description"] = a.description
    if a.active_post_count is not None:
        attrs["active_post_count"] = a.active_post_count
    if a.target:
        attrs["target"] = a.target
    if a.regions:
        attrs["regions"] = list(a.regions)
    if a.ip:
        attrs["camera_ip"] = a.ip
    if a.mac:
        attrs["camera_mac"] = a.mac
    if push.images:
        attrs["images"] = [i.as_dict() for i in push.images]
    return Observation(
        Protocol.ISAPI,
        device_id,
        rule,
        a.kind,
        a.active,
        a.event_type,
        a.occurred_at,
        str(a.channel) if a.channel is not None else None,
        None,
        attrs,
        _raw(push.xml),
    )


def from_onvif(n: OnvifNotification, device_id: str, raw: bytes) -> Observation | None:
    kind, active = n.kind, n.active
    if kind is None or active is None:
        return None
    attrs: dict[str, Any] = {"topic": n.path}
    if n.operation:
        attrs["property_operation"] = n.operation
    if n.source:
        attrs["source"] = n.source
    if n.key:
        attrs["key"] = n.key
    return Observation(
        Protocol.ONVIF,
        device_id,
        f"{n.path}#{n.rule}",
        kind,
        active,
        n.path,
        n.utc_time,
        n.rule or None,
        None,
        attrs,
        _raw(raw),
    )


def _gb_kind(m: ManscdpMessage) -> AlarmKind:
    method = m.get("AlarmMethod") or ""
    atype = m.get("AlarmType") or ""
    if method == "5":
        return {
            "motion": AlarmKind.MOTION,
            "line_crossing": AlarmKind.LINE_CROSSING,
            "intrusion": AlarmKind.INTRUSION,
            "tamper": AlarmKind.TAMPER,
        }.get(VIDEO_ALARM_TYPES.get(atype, ""), AlarmKind.MOTION if not atype else AlarmKind.OTHER)
    if method == "2":
        # device alarms: AlarmType 1 video loss, 2 tamper (device opened), 3 storage full, 4 over-temp …
        return {"1": AlarmKind.TROUBLE, "2": AlarmKind.TAMPER}.get(
            atype, AlarmKind.BURGLARY if not atype else AlarmKind.TROUBLE
        )
    if method == "6":
        return AlarmKind.TROUBLE
    return AlarmKind.OTHER


def _gb_time(value: str | None, tz: Any) -> datetime | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=tz)


def _gb_location(m: ManscdpMessage) -> Location | None:
    try:
        lon = float(m.get("Longitude") or "")
        lat = float(m.get("Latitude") or "")
    except ValueError:
        return None
    if lat == 0 and lon == 0:
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return Location(lat=lat, lon=lon, source="device")


def from_gb28181(m: ManscdpMessage, tz: Any) -> Observation:
    """A GB/T 28181 alarm Notify; the standard has no 'end' message, so each is an active pulse."""
    attrs: dict[str, Any] = {"cmd_type": m.cmd_type}
    for k_src, k_dst in (
        ("AlarmPriority", "priority"),
        ("AlarmMethod", "method"),
        ("AlarmType", "alarm_type"),
        ("AlarmDescription", "description"),
        ("SN", "sn"),
    ):
        if m.get(k_src):
            attrs[k_dst] = m.get(k_src)
    if m.get("AlarmMethod") in ALARM_METHODS:
        attrs["method_name"] = ALARM_METHODS[m.get("AlarmMethod") or ""]
    if m.encoding != "utf-8":
        attrs["body_encoding"] = m.encoding
    rule = f"{m.get('AlarmMethod') or ''}/{m.get('AlarmType') or ''}"
    code = f"method={m.get('AlarmMethod') or '?'}" + (
        f",type={m.get('AlarmType')}" if m.get("AlarmType") else ""
    )
    return Observation(
        Protocol.GB28181,
        m.device_id,
        rule,
        _gb_kind(m),
        True,
        code,
        _gb_time(m.get("AlarmTime"), tz),
        None,
        _gb_location(m),
        attrs,
        _raw(m.text),
    )


def from_webhook(ev: WebhookEvent, key: str, raw: bytes, integrator: str = "default") -> Observation:
    attrs: dict[str, Any] = {**ev.attributes, "idempotency_key": key, "integrator": integrator}
    if ev.image_url:
        attrs["images"] = [{"url": ev.image_url}]
    loc = (
        Location(lat=ev.lat, lon=ev.lon, source="device")
        if ev.lat is not None and ev.lon is not None
        else None
    )
    return Observation(
        Protocol.WEBHOOK,
        ev.camera_id,
        f"{ev.event}#{ev.rule}",
        ev.kind,
        ev.state == "active",
        ev.event,
        ev.occurred_at,
        ev.rule or None,
        loc,
        attrs,
        _raw(raw),
    )


_VIDEO_KINDS = frozenset({AlarmKind.MOTION, AlarmKind.INTRUSION, AlarmKind.LINE_CROSSING})


def alarm_event(
    obs: Observation, verdict: Verdict, camera: Camera | None, *, peer: str | None, now: datetime
) -> AlarmEvent:
    """The ``alarms.raw`` value: located at the camera from the registry when the signal has no position."""
    location = obs.location
    if location is None and camera is not None and camera.lat is not None and camera.lon is not None:
        location = Location(lat=camera.lat, lon=camera.lon, source="registry")
    attrs = dict(obs.attributes)
    attrs["rule"] = obs.rule
    if obs.kind in _VIDEO_KINDS:
        attrs.setdefault(SENSOR, Sensor.VIDEO.value)  # the shared vocabulary: a video analytics detector
    if verdict.suppressed:
        attrs["suppressed"] = verdict.suppressed
    if camera is not None:
        attrs["camera"] = {
            k: v
            for k, v in (
                ("name", camera.name),
                ("unit", camera.unit),
                ("network", camera.network),
                ("category", camera.category),
            )
            if v
        }
    else:
        attrs["registered"] = False
    occurred = obs.occurred_at or now
    if occurred - now > timedelta(hours=1):
        attrs["device_time"] = occurred.isoformat()
        occurred = now  # a camera clock far ahead is wrong, not the future
    return AlarmEvent(
        kind=obs.kind,
        qualifier=Qualifier.RESTORE if verdict.decision == Decision.RESTORE else Qualifier.NEW,
        source=Source(protocol=obs.protocol, device_id=obs.device_id, peer=peer),
        code=obs.code[:64],
        zone=obs.zone,
        occurred_at=occurred,
        received_at=now,
        location=location,
        attributes=attrs,
        raw=obs.raw,
    )


def device_status(
    device_id: str,
    protocol: Protocol,
    online: bool,
    *,
    now: datetime,
    peer: str | None = None,
    attributes: dict[str, Any] | None = None,
) -> DeviceStatus:
    return DeviceStatus(
        device_id=device_id,
        protocol=protocol,
        status=DeviceStatusKind.ONLINE if online else DeviceStatusKind.OFFLINE,
        occurred_at=now,
        received_at=now,
        peer=peer,
        attributes=attributes or {},
    )


class Liveness:
    """Which devices are online: set by registration/heartbeat, cleared by silence. Bounded in size."""

    def __init__(self, max_devices: int = 500_000) -> None:
        self._seen: dict[str, tuple[Protocol, float, float]] = {}  # id → (protocol, last seen, timeout)
        self._max = max_devices

    def __contains__(self, device_id: str) -> bool:
        return device_id in self._seen

    def __len__(self) -> int:
        return len(self._seen)

    def touch(self, device_id: str, protocol: Protocol, now: float, timeout_s: float) -> bool:
        """Record a sign of life; True when the device was not known to be online."""
        new = device_id not in self._seen
        if new and len(self._seen) >= self._max:
            return False
        self._seen[device_id] = (protocol, now, timeout_s)
        return new

    def forget(self, device_id: str) -> bool:
        return self._seen.pop(device_id, None) is not None

    def sweep(self, now: float) -> list[tuple[str, Protocol]]:
        gone = [(d, p) for d, (p, seen, timeout) in self._seen.items() if now - seen > timeout]
        for d, _ in gone:
            del self._seen[d]
        return gone
