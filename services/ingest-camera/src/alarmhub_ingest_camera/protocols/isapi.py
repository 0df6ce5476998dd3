"""Hikvision ISAPI "alarm host" push: ``EventNotificationAlert`` XML, plain or multipart with images.

Edition: ISAPI (Hikvision's ISAPI 2.0 event notification, as its cameras and NVRs push it); the alert is
read by element name, whatever the XML namespace version the firmware writes.

Pure: bytes and the request's Content-Type in, an :class:`IsapiPush` out. Cameras configured with an
HTTP listening host POST one alert per request; with "upload picture" enabled the body is
``multipart/form-data`` (or ``multipart/mixed``) whose first XML part is the alert and whose other
parts are JPEG snapshots. Snapshots are kept as references (name, type, size, SHA-256) — the bytes
never travel on Kafka, where a 200 kB image per motion pulse would dwarf the event stream.

Heartbeats: cameras send ``videoloss`` with ``eventState`` ``inactive`` (and ``activePostCount`` 0)
every few seconds as a keep-alive; that is device liveness, not an alarm.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from alarmhub_events import AlarmKind
from defusedxml import ElementTree as SafeET

__all__ = [
    "EVENT_KINDS",
    "ImageRef",
    "IsapiAlert",
    "IsapiError",
    "IsapiPush",
    "decode",
    "decode_alert_xml",
]

#: ISAPI ``eventType`` (lowercased) → alarm kind. Types not listed are published as ``other``.
EVENT_KINDS: dict[str, AlarmKind] = {
    "vmd": AlarmKind.MOTION,
    "motiondetection": AlarmKind.MOTION,
    "fielddetection": AlarmKind.INTRUSION,
    "regionentrance": AlarmKind.INTRUSION,
    "intrusion": AlarmKind.INTRUSION,
    "linedetection": AlarmKind.LINE_CROSSING,
    "linecrossing": AlarmKind.LINE_CROSSING,
    "tamperdetection": AlarmKind.TAMPER,
    "shelteralarm": AlarmKind.TAMPER,
    "videotampering": AlarmKind.TAMPER,
    "videoloss": AlarmKind.TROUBLE,
}


class IsapiError(ValueError):
    """The peer sent something that is not a usable alert (the caller answers 4xx and dead-letters it)."""


@dataclass(frozen=True)
class ImageRef:
    """A snapshot that came with the alert: enough to find and verify it, never the bytes."""

    name: str
    content_type: str
    size: int
    sha256: str

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "content_type": self.content_type,
            "size": self.size,
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class IsapiAlert:
    event_type: str
    active: bool
    channel: int | None
    ip: str | None
    mac: str | None
    occurred_at: datetime | None
    active_post_count: int | None
    description: str | None
    channel_name: str | None = None
    regions: tuple[str, ...] = ()
    target: str | None = None

    @property
    def kind(self) -> AlarmKind:
        return EVENT_KINDS.get(self.event_type.lower(), AlarmKind.OTHER)

    @property
    def is_heartbeat(self) -> bool:
        """Hikvision's keep-alive: ``videoloss`` inactive. A real video loss arrives as ``active``."""
        return self.event_type.lower() == "videoloss" and not self.active


@dataclass(frozen=True)
class IsapiPush:
    alert: IsapiAlert
    xml: bytes
    images: tuple[ImageRef, ...] = field(default_factory=tuple)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _text(root: object, name: str) -> str | None:
    for el in root.iter():  # type: ignore[attr-defined]
        if _local(el.tag) == name:
            value = (el.text or "").strip()
            return value or None
    return None


_TZ_ODD = re.compile(r"([+-])-?(\d{1,2}):(\d{2})$")


def _parse_time(value: str | None, default_tz: timezone) -> datetime | None:
    """ISAPI times come with ``+08:00``, ``Z``, no zone at all, or firmware oddities like ``--8:00``."""
    if not value:
        return None
    text = value.strip()
    m = _TZ_ODD.search(text)
    if m and "--" in text:  # seen on old firmware: "2015-06-24T19:37:22--8:00"
        text = text[: m.start()] + f"-{int(m.group(2)):02d}:{m.group(3)}"
    text = text.replace("Z", "+00:00")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?:[+-]\d{2}:\d{2})?", text):
        text = text[:16] + ":00" + text[16:]
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=default_tz)


def decode_alert_xml(xml: bytes, *, default_tz: timezone | None = None) -> IsapiAlert:
    """Decode one ``EventNotificationAlert`` document. Entity expansion and DTDs are refused."""
    tz = default_tz or timezone(timedelta(hours=8))
    try:
        root = SafeET.fromstring(xml)
    except SafeET.ParseError as exc:
        raise IsapiError(f"malformed XML: {exc}") from exc
    except Exception as exc:  # defusedxml's EntitiesForbidden, DTDForbidden …
        raise IsapiError(f"forbidden XML construct: {type(exc).__name__}") from exc
    if _local(root.tag) != "EventNotificationAlert":
        raise IsapiError(f"root element is {_local(root.tag)!r}, not EventNotificationAlert")
    event_type = _text(root, "eventType")
    if not event_type:
        raise IsapiError("alert has no eventType")
    state = (_text(root, "eventState") or "active").lower()
    channel_text = _text(root, "channelID") or _text(root, "dynChannelID")
    try:
        channel = int(channel_text) if channel_text is not None else None
        apc_text = _text(root, "activePostCount")
        apc = int(apc_text) if apc_text is not None else None
    except ValueError as exc:
        raise IsapiError(f"non-numeric channel or post count: {exc}") from exc
    regions = tuple(
        (el.text or "").strip()
        for el in root.iter()
        if _local(el.tag) == "regionID" and (el.text or "").strip()
    )
    return IsapiAlert(
        event_type=event_type,
        active=state == "active",
        channel=channel,
        ip=_text(root, "ipAddress"),
        mac=(_text(root, "macAddress") or "").lower() or None,
        occurred_at=_parse_time(_text(root, "dateTime"), tz),
        active_post_count=apc,
        description=_text(root, "eventDescription"),
        channel_name=_text(root, "channelName"),
        regions=regions,
        target=_text(root, "targetType") or _text(root, "detectionTarget"),
    )


def _boundary(content_type: str) -> bytes | None:
    m = re.search(r'boundary="?([^";]+)"?', content_type, re.IGNORECASE)
    return m.group(1).strip().encode("latin-1") if m else None


def _split_multipart(body: bytes, boundary: bytes) -> list[tuple[dict[str, str], bytes]]:
    """RFC 2046 parts as (headers, payload). Tolerates LF-only line ends, which some firmware sends."""
    delim = b"--" + boundary
    parts: list[tuple[dict[str, str], bytes]] = []
    chunks = body.split(delim)
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk[1:] if chunk.startswith(b"\n") else chunk
        sep = chunk.find(b"\r\n\r\n")
        sep_len = 4
        if sep < 0:
            sep, sep_len = chunk.find(b"\n\n"), 2
        if sep < 0:
            continue
        head, payload = chunk[:sep], chunk[sep + sep_len :]
        if payload.endswith(b"\r\n"):
            payload = payload[:-2]
        elif payload.endswith(b"\n"):
            payload = payload[:-1]
        headers: dict[str, str] = {}
        for line in head.decode("latin-1").splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        parts.append((headers, payload))
    return parts


def _part_name(headers: dict[str, str], index: int) -> str:
    disp = headers.get("content-disposition", "")
    for key in ("filename", "name"):
        m = re.search(rf'{key}="([^"]*)"', disp)
        if m and m.group(1):
            return m.group(1)[:128]
    return headers.get("content-id", f"part{index}")[:128]


def decode(body: bytes, content_type: str | None, *, default_tz: timezone | None = None) -> IsapiPush:
    """Decode a push: a bare XML body, or multipart with the alert XML and snapshot images."""
    ctype = (content_type or "").lower()
    if ctype.startswith("multipart/"):
        boundary = _boundary(content_type or "")
        if not boundary:
            raise IsapiError("multipart body without a boundary")
        parts = _split_multipart(body, boundary)
        xml: bytes | None = None
        images: list[ImageRef] = []
        for i, (headers, payload) in enumerate(parts):
            pct = headers.get("content-type", "").lower()
            looks_xml = "xml" in pct or payload.lstrip()[:1] == b"<"
            if xml is None and looks_xml and not pct.startswith("image/"):
                xml = payload
            else:
                images.append(
                    ImageRef(
                        name=_part_name(headers, i),
                        content_type=pct or "application/octet-stream",
                        size=len(payload),
                        sha256=hashlib.sha256(payload).hexdigest(),
                    )
                )
        if xml is None:
            raise IsapiError("multipart body has no XML part")
        return IsapiPush(decode_alert_xml(xml, default_tz=default_tz), xml, tuple(images))
    return IsapiPush(decode_alert_xml(body.strip(), default_tz=default_tz), body)
