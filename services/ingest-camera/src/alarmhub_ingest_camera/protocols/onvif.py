"""ONVIF events: WS-BaseNotification ``Notify`` and PullPoint messages, and the SOAP requests we send.

Edition: ONVIF Core event service (``ver10/events``) over OASIS WS-BaseNotification 1.3 (``wsn/b-2``),
SOAP 1.2 envelopes; WS-Security UsernameToken on requests.

Pure: an envelope in, :class:`OnvifNotification` objects out; request builders return bytes.
The same ``wsnt:NotificationMessage`` shape arrives pushed (``Notify`` to our consumer endpoint) or
pulled (``PullMessagesResponse``), so one decoder serves both.

Topics are matched on their path without the namespace prefix (``tns1:``), because cameras bind the
ONVIF topic namespace to different prefixes. Each topic names the data item that carries its state.
``PropertyOperation="Initialized"`` messages are the camera's snapshot of current state when a
subscription starts: they update state but are not news (the noise gate sees them as such).
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from alarmhub_events import AlarmKind
from defusedxml import ElementTree as SafeET

__all__ = [
    "TOPICS",
    "Credentials",
    "OnvifError",
    "OnvifNotification",
    "SubscriptionInfo",
    "decode",
    "decode_subscription_response",
    "encode_create_pullpoint",
    "encode_pull_messages",
    "encode_renew",
    "encode_subscribe",
    "encode_unsubscribe",
]

NS_SOAP = "http://www.w3.org/2003/05/soap-envelope"
NS_WSNT = "http://docs.oasis-open.org/wsn/b-2"
NS_WSA = "http://www.w3.org/2005/08/addressing"
NS_TEV = "http://www.onvif.org/ver10/events/wsdl"

#: topic path (prefix stripped) → (kind, name of the boolean data item that carries the state)
TOPICS: dict[str, tuple[AlarmKind, str]] = {
    "VideoSource/MotionAlarm": (AlarmKind.MOTION, "State"),
    "RuleEngine/CellMotionDetector/Motion": (AlarmKind.MOTION, "IsMotion"),
    "RuleEngine/FieldDetector/ObjectsInside": (AlarmKind.INTRUSION, "IsInside"),
    "RuleEngine/LineDetector/Crossed": (AlarmKind.LINE_CROSSING, "ObjectId"),
    "RuleEngine/TamperDetector/Tamper": (AlarmKind.TAMPER, "IsTamper"),
    "VideoSource/GlobalSceneChange/ImagingService": (AlarmKind.TAMPER, "State"),
    "VideoSource/GlobalSceneChange/AnalyticsService": (AlarmKind.TAMPER, "State"),
    "VideoSource/SignalLoss": (AlarmKind.TROUBLE, "State"),
}


class OnvifError(ValueError):
    """Not a usable SOAP notification (the caller answers 4xx and dead-letters it)."""


@dataclass(frozen=True)
class OnvifNotification:
    topic: str
    utc_time: datetime | None
    operation: str | None
    source: dict[str, str] = field(default_factory=dict)
    key: dict[str, str] = field(default_factory=dict)
    data: dict[str, str] = field(default_factory=dict)
    producer: str | None = None

    @property
    def path(self) -> str:
        """Topic without namespace prefixes: ``tns1:RuleEngine/tns1:X`` → ``RuleEngine/X``."""
        return "/".join(seg.split(":", 1)[-1] for seg in self.topic.strip().split("/"))

    @property
    def kind(self) -> AlarmKind | None:
        spec = TOPICS.get(self.path)
        return spec[0] if spec else None

    @property
    def active(self) -> bool | None:
        """The alarm state the message reports, or None when the topic is not one we interpret."""
        spec = TOPICS.get(self.path)
        if spec is None:
            return None
        if spec[1] == "ObjectId":  # line crossing is an instantaneous event, never "restored"
            return True
        value = self.data.get(spec[1])
        if value is None:
            return None
        return value.strip().lower() in ("true", "1")

    @property
    def rule(self) -> str:
        """What distinguishes two detectors of one camera: the analytics rule or the video source."""
        for name in ("Rule", "Source", "VideoSourceConfigurationToken", "VideoSourceToken", "InputToken"):
            if self.source.get(name):
                return self.source[name]
        return ""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _items(el: object) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in el.iter():  # type: ignore[attr-defined]
        if _local(item.tag) == "SimpleItem" and item.get("Name") is not None:
            out[item.get("Name")] = item.get("Value", "")
    return out


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _root(body: bytes) -> object:
    try:
        return SafeET.fromstring(body)
    except SafeET.ParseError as exc:
        raise OnvifError(f"malformed XML: {exc}") from exc
    except Exception as exc:
        raise OnvifError(f"forbidden XML construct: {type(exc).__name__}") from exc


def decode(body: bytes) -> list[OnvifNotification]:
    """Every ``NotificationMessage`` in a Notify or PullMessagesResponse envelope (may be empty)."""
    root = _root(body)
    if _local(root.tag) not in ("Envelope", "Notify", "PullMessagesResponse"):  # type: ignore[attr-defined]
        raise OnvifError(f"unexpected root element {_local(root.tag)!r}")  # type: ignore[attr-defined]
    found: list[OnvifNotification] = []
    for nm in root.iter():  # type: ignore[attr-defined]
        if _local(nm.tag) != "NotificationMessage":
            continue
        topic = ""
        producer = None
        msg = None
        for child in nm:
            name = _local(child.tag)
            if name == "Topic":
                topic = (child.text or "").strip()
            elif name == "ProducerReference":
                producer = next(
                    ((a.text or "").strip() for a in child.iter() if _local(a.tag) == "Address"), None
                )
            elif name == "Message":
                msg = next((m for m in child if _local(m.tag) == "Message"), None)
        if not topic:
            raise OnvifError("NotificationMessage without a Topic")
        source: dict[str, str] = {}
        key: dict[str, str] = {}
        data: dict[str, str] = {}
        utc = op = None
        if msg is not None:
            utc = _parse_time(msg.get("UtcTime"))
            op = msg.get("PropertyOperation")
            for part in msg:
                pname = _local(part.tag)
                if pname == "Source":
                    source = _items(part)
                elif pname == "Key":
                    key = _items(part)
                elif pname == "Data":
                    data = _items(part)
        found.append(OnvifNotification(topic, utc, op, source, key, data, producer))
    return found


@dataclass(frozen=True)
class SubscriptionInfo:
    address: str
    current_time: datetime | None
    termination_time: datetime | None


def decode_subscription_response(body: bytes) -> SubscriptionInfo:
    """SubscribeResponse / CreatePullPointSubscriptionResponse / RenewResponse."""
    root = _root(body)
    address = ""
    current = termination = None
    for el in root.iter():  # type: ignore[attr-defined]
        name = _local(el.tag)
        if name == "Fault":
            raise OnvifError(
                "SOAP fault: " + " ".join((t.text or "").strip() for t in el.iter() if t.text).strip()
            )
        if name == "SubscriptionReference":
            address = next(((a.text or "").strip() for a in el.iter() if _local(a.tag) == "Address"), "")
        elif name == "CurrentTime":
            current = _parse_time(el.text)
        elif name == "TerminationTime":
            termination = _parse_time(el.text)
    return SubscriptionInfo(address, current, termination)


@dataclass(frozen=True)
class Credentials:
    """WS-Security UsernameToken (ONVIF Core §5.12): PasswordDigest = B64(SHA1(nonce + created + password)).

    ``nonce`` and ``created`` are inputs so that the builder stays pure; the caller draws them.
    """

    username: str
    password: str
    nonce: bytes
    created: datetime

    def header(self) -> str:
        created = self.created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        digest = base64.b64encode(
            hashlib.sha1(self.nonce + created.encode() + self.password.encode()).digest()
        )
        return (
            f'<wsse:Security s:mustUnderstand="1" xmlns:wsse="{NS_WSSE}" xmlns:wsu="{NS_WSU}"><wsse:UsernameToken>'
            f"<wsse:Username>{_esc(self.username)}</wsse:Username>"
            f'<wsse:Password Type="{PASSWORD_DIGEST}">{digest.decode()}</wsse:Password>'
            f'<wsse:Nonce EncodingType="{BASE64_BINARY}">{base64.b64encode(self.nonce).decode()}</wsse:Nonce>'
            f"<wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security>"
        )


NS_WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
NS_WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
PASSWORD_DIGEST = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
)
BASE64_BINARY = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)


def _envelope(action: str, to: str, body: str, creds: Credentials | None = None) -> bytes:
    security = creds.header() if creds is not None else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>'
        f'<s:Envelope xmlns:s="{NS_SOAP}" xmlns:wsa="{NS_WSA}" xmlns:wsnt="{NS_WSNT}" xmlns:tev="{NS_TEV}">'
        f"<s:Header>{security}<wsa:Action>{action}</wsa:Action><wsa:MessageID>urn:uuid:{uuid.uuid4()}</wsa:MessageID>"
        f"<wsa:To>{_esc(to)}</wsa:To></s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _duration(seconds: int) -> str:
    return f"PT{int(seconds)}S"


def encode_subscribe(
    service_url: str, consumer_url: str, ttl_s: int, creds: Credentials | None = None
) -> bytes:
    """Base-notification Subscribe naming our ``POST /events/onvif`` endpoint as the consumer."""
    return _envelope(
        "http://docs.oasis-open.org/wsn/bw-2/NotificationProducer/SubscribeRequest",
        service_url,
        f"<wsnt:Subscribe><wsnt:ConsumerReference><wsa:Address>{_esc(consumer_url)}</wsa:Address>"
        f"</wsnt:ConsumerReference><wsnt:InitialTerminationTime>{_duration(ttl_s)}</wsnt:InitialTerminationTime>"
        f"</wsnt:Subscribe>",
        creds,
    )


def encode_create_pullpoint(service_url: str, ttl_s: int, creds: Credentials | None = None) -> bytes:
    return _envelope(
        "http://www.onvif.org/ver10/events/wsdl/EventPortType/CreatePullPointSubscriptionRequest",
        service_url,
        f"<tev:CreatePullPointSubscription><tev:InitialTerminationTime>{_duration(ttl_s)}"
        f"</tev:InitialTerminationTime></tev:CreatePullPointSubscription>",
        creds,
    )


def encode_pull_messages(
    subscription_url: str, timeout_s: int, limit: int, creds: Credentials | None = None
) -> bytes:
    return _envelope(
        "http://www.onvif.org/ver10/events/wsdl/PullPointSubscription/PullMessagesRequest",
        subscription_url,
        f"<tev:PullMessages><tev:Timeout>{_duration(timeout_s)}</tev:Timeout>"
        f"<tev:MessageLimit>{int(limit)}</tev:MessageLimit></tev:PullMessages>",
        creds,
    )


def encode_renew(subscription_url: str, ttl_s: int, creds: Credentials | None = None) -> bytes:
    return _envelope(
        "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/RenewRequest",
        subscription_url,
        f"<wsnt:Renew><wsnt:TerminationTime>{_duration(ttl_s)}</wsnt:TerminationTime></wsnt:Renew>",
        creds,
    )


def encode_unsubscribe(subscription_url: str, creds: Credentials | None = None) -> bytes:
    return _envelope(
        "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/UnsubscribeRequest",
        subscription_url,
        "<wsnt:Unsubscribe/>",
        creds,
    )
