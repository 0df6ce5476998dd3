"""GB/T 28181 over SIP: message parsing, TCP framing, digest authentication, MANSCDP bodies, registrar.

Edition: GB/T 28181-2016 (REGISTER §9.1, keepalive §9.6, alarm §9.4, AlarmMethod codes A.2.5); -2011
devices' bodies read the same. The platform (SIP server) side only: requests are answered, none is sent.

Sans-IO throughout (h11 style): the server feeds bytes and a peer address in, and gets back reply
bytes and domain events. Nothing here touches a socket or a clock of its own — ``now`` is passed in.

What the standard asks of the platform (SIP server) side that we implement:

- REGISTER (§9.1): challenge with ``401`` + ``WWW-Authenticate: Digest`` (realm = the 10-digit SIP
  domain), accept the repeated REGISTER whose ``Authorization`` answers the nonce (RFC 2617, MD5,
  with or without ``qop=auth``), reply ``200`` with ``Expires`` and a ``Date`` header the device uses
  to set its clock. ``Expires: 0`` unregisters.
- MESSAGE with ``Application/MANSCDP+xml`` bodies (§9.6 keepalive, §9.4 alarm): ``200 OK``. Bodies
  declare ``encoding="GB2312"`` about as often as UTF-8; GB2312/GBK are decoded as GB18030 (a strict
  superset), and a body that declares nothing is tried as UTF-8 then GB18030.
- Only registered devices may send MESSAGEs; others get ``403`` — an unauthenticated sender never
  reaches Kafka.
- UDP retransmissions (RFC 3261 §17.2) of a request we already answered are answered again from a
  small cache and produce no second event.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import StrEnum

from defusedxml import ElementTree as SafeET

__all__ = [
    "Gb28181Registrar",
    "ManscdpMessage",
    "RegistrarResult",
    "SipError",
    "SipEvent",
    "SipEventType",
    "SipFramer",
    "SipMessage",
    "build_response",
    "decode_manscdp",
    "digest_response",
    "parse_auth_params",
    "parse_sip",
]

MAX_MESSAGE = 64 * 1024
CRLF = b"\r\n"


class SipError(ValueError):
    """Unparseable SIP from the peer (answered with 400 where a reply is possible, and dead-lettered)."""


_COMPACT = {
    "v": "via",
    "f": "from",
    "t": "to",
    "i": "call-id",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
}


@dataclass
class SipMessage:
    """A SIP request or response. Header names are kept as sent; lookups are case-insensitive."""

    method: str | None
    uri: str | None
    status: int | None
    reason: str | None
    headers: list[tuple[str, str]]
    body: bytes = b""

    @property
    def is_request(self) -> bool:
        return self.method is not None

    def header(self, name: str) -> str | None:
        want = name.lower()
        for k, v in self.headers:
            key = k.lower()
            if _COMPACT.get(key, key) == want:
                return v
        return None

    def header_all(self, name: str) -> list[str]:
        want = name.lower()
        return [v for k, v in self.headers if _COMPACT.get(k.lower(), k.lower()) == want]

    @property
    def call_id(self) -> str:
        return self.header("call-id") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        raw = (self.header("cseq") or "").split()
        try:
            return int(raw[0]), raw[1].upper() if len(raw) > 1 else ""
        except (ValueError, IndexError):
            return 0, ""

    @property
    def from_user(self) -> str:
        return _uri_user(self.header("from") or "")

    @property
    def branch(self) -> str:
        via = self.header("via") or ""
        m = re.search(r";\s*branch=([^;,\s]+)", via)
        return m.group(1) if m else ""

    def to_bytes(self) -> bytes:
        if self.is_request:
            first = f"{self.method} {self.uri} SIP/2.0"
        else:
            first = f"SIP/2.0 {self.status} {self.reason}"
        lines = [first] + [f"{k}: {v}" for k, v in self.headers if k.lower() != "content-length"]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body


def _uri_user(value: str) -> str:
    m = re.search(r"sips?:([^@;>\s]+)@", value)
    return m.group(1) if m else ""


def parse_sip(data: bytes) -> SipMessage:
    """Parse one complete SIP message (a UDP datagram, or one frame from :class:`SipFramer`)."""
    if len(data) > MAX_MESSAGE:
        raise SipError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE}")
    sep = data.find(b"\r\n\r\n")
    sep_len = 4
    if sep < 0:
        sep, sep_len = data.find(b"\n\n"), 2
    if sep < 0:
        head, body = data, b""
    else:
        head, body = data[:sep], data[sep + sep_len :]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = head.decode("gb18030", errors="replace")
    lines = text.replace("\r\n", "\n").split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        raise SipError("empty message")
    first = lines[0].strip()
    method = uri = reason = None
    status = None
    if first.startswith("SIP/2.0 "):
        parts = first.split(" ", 2)
        try:
            status = int(parts[1])
        except (IndexError, ValueError) as exc:
            raise SipError(f"bad status line {first!r}") from exc
        reason = parts[2] if len(parts) > 2 else ""
    else:
        parts = first.split(" ")
        if len(parts) != 3 or parts[2] != "SIP/2.0" or not re.fullmatch(r"[A-Z]+", parts[0]):
            raise SipError(f"bad request line {first[:80]!r}")
        method, uri = parts[0], parts[1]
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line.strip():
            continue
        if line[0] in " \t" and headers:  # folded continuation
            k, v = headers[-1]
            headers[-1] = (k, v + " " + line.strip())
            continue
        if ":" not in line:
            raise SipError(f"bad header line {line[:80]!r}")
        k, v = line.split(":", 1)
        headers.append((k.strip(), v.strip()))
    msg = SipMessage(method, uri, status, reason, headers, body)
    clen = msg.header("content-length")
    if clen is not None:
        try:
            n = int(clen)
        except ValueError as exc:
            raise SipError("bad Content-Length") from exc
        if n < 0 or n > len(body):
            raise SipError(f"Content-Length {n} but {len(body)} body bytes")
        msg.body = body[:n]
    if msg.is_request:
        for required in ("via", "from", "to", "call-id", "cseq"):
            if msg.header(required) is None:
                raise SipError(f"request without {required} header")
    return msg


class SipFramer:
    """Split a TCP byte stream into SIP messages by the blank line and ``Content-Length`` (RFC 3261 §18.3)."""

    def __init__(self, max_message: int = MAX_MESSAGE) -> None:
        self._buf = bytearray()
        self._max = max_message

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while True:
            while self._buf[:2] == CRLF:  # keep-alive CRLFs between messages
                del self._buf[:2]
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > self._max:
                    raise SipError("header section too long")
                return out
            head = bytes(self._buf[:end])
            m = re.search(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*$", head)
            n = int(m.group(1)) if m else 0
            total = end + 4 + n
            if total > self._max:
                raise SipError(f"message of {total} bytes exceeds {self._max}")
            if len(self._buf) < total:
                return out
            out.append(bytes(self._buf[:total]))
            del self._buf[:total]


# ---------------------------------------------------------------- digest (RFC 2617 / RFC 3261 §22)


def parse_auth_params(value: str) -> dict[str, str]:
    """``Digest a="b", c=d`` → ``{"a": "b", "c": "d"}`` (scheme dropped, keys lowercased)."""
    text = value.strip()
    if text.lower().startswith("digest"):
        text = text[6:]
    params: dict[str, str] = {}
    for m in re.finditer(r'([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]+))', text):
        params[m.group(1).lower()] = m.group(2) if m.group(2) is not None else m.group(3)
    return params


def _h(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def digest_response(
    *,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
) -> str:
    ha1 = _h(f"{username}:{realm}:{password}")
    ha2 = _h(f"{method}:{uri}")
    if qop:
        return _h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _h(f"{ha1}:{nonce}:{ha2}")


# ---------------------------------------------------------------- MANSCDP bodies


@dataclass(frozen=True)
class ManscdpMessage:
    """A decoded MANSCDP+xml body: root (Notify/Response/Query/Control), CmdType and its fields."""

    root: str
    cmd_type: str
    sn: str | None
    device_id: str
    fields: dict[str, str]
    text: str
    encoding: str

    def get(self, name: str) -> str | None:
        return self.fields.get(name)


_DECL = re.compile(rb'^\s*<\?xml[^>]*?encoding\s*=\s*["\']([A-Za-z0-9_-]+)["\'][^>]*\?>', re.IGNORECASE)


def _decode_body(body: bytes) -> tuple[str, str]:
    """The body as text. A byte that its encoding cannot carry becomes U+FFFD instead of refusing the
    message: an alarm with one damaged byte is still an alarm (the raw bytes travel on in ``raw``)."""
    m = _DECL.match(body)
    declared = m.group(1).decode("ascii").lower() if m else ""
    if declared in ("gb2312", "gbk", "gb18030", "gb-2312"):
        return body.decode("gb18030", errors="replace"), "gb18030"
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        # devices that declare UTF-8 (or nothing) and send GB2312
        return body.decode("gb18030", errors="replace"), "gb18030"


def decode_manscdp(body: bytes) -> ManscdpMessage:
    text, encoding = _decode_body(body)
    # The declaration names a byte encoding; the text is already decoded, so drop it before parsing.
    stripped = re.sub(r"^\s*<\?xml[^>]*\?>", "", text).strip()
    try:
        root = SafeET.fromstring(stripped)
    except SafeET.ParseError as exc:
        raise SipError(f"malformed MANSCDP XML: {exc}") from exc
    except Exception as exc:
        raise SipError(f"forbidden XML construct: {type(exc).__name__}") from exc
    fields: dict[str, str] = {}
    for el in root.iter():
        if el is root:
            continue
        value = (el.text or "").strip()
        if value and el.tag not in fields:
            fields[el.tag] = value
    cmd = fields.get("CmdType", "")
    if not cmd:
        raise SipError("MANSCDP body without CmdType")
    return ManscdpMessage(root.tag, cmd, fields.get("SN"), fields.get("DeviceID", ""), fields, text, encoding)


# ---------------------------------------------------------------- responses


def build_response(
    req: SipMessage,
    status: int,
    reason: str,
    *,
    to_tag: str | None = None,
    extra: list[tuple[str, str]] | None = None,
    peer: tuple[str, int] | None = None,
    server: str = "alarmhub",
) -> bytes:
    """A response that copies Via/From/To/Call-ID/CSeq as RFC 3261 §8.2.6 requires.

    ``received``/``rport`` are filled on the top Via (RFC 3581) so devices behind NAT get the answer.
    """
    headers: list[tuple[str, str]] = []
    for i, via in enumerate(req.header_all("via")):
        if i == 0 and peer is not None:
            if re.search(r";\s*rport(?=;|$)", via):
                via = re.sub(r";\s*rport(?=;|$)", f";rport={peer[1]}", via)
            if "received=" not in via:
                via += f";received={peer[0]}"
        headers.append(("Via", via))
    headers.append(("From", req.header("from") or ""))
    to = req.header("to") or ""
    if to_tag and ";tag=" not in to:
        to += f";tag={to_tag}"
    headers.append(("To", to))
    headers.append(("Call-ID", req.call_id))
    headers.append(("CSeq", req.header("cseq") or ""))
    headers.extend(extra or [])
    headers.append(("Server", server))
    return SipMessage(None, None, status, reason, headers).to_bytes()


# ---------------------------------------------------------------- registrar session


class SipEventType(StrEnum):
    REGISTERED = "registered"
    UNREGISTERED = "unregistered"
    KEEPALIVE = "keepalive"
    ALARM = "alarm"
    MESSAGE = "message"
    REJECTED = "rejected"


@dataclass(frozen=True)
class SipEvent:
    type: SipEventType
    device_id: str
    peer: str
    message: ManscdpMessage | None = None
    reason: str | None = None
    raw: bytes = b""


@dataclass
class RegistrarResult:
    """What to do with one incoming message: events to publish, then ``reply`` to send.

    When ``needs_publish`` is true the reply must only be sent after the events are durably written;
    if that fails, send ``failure_reply`` instead (a 500 makes the device retransmit).
    """

    reply: bytes | None
    events: list[SipEvent] = field(default_factory=list)
    failure_reply: bytes | None = None
    retransmission: bool = False

    @property
    def needs_publish(self) -> bool:
        return bool(self.events) and self.failure_reply is not None


@dataclass
class _Registration:
    expires_at: datetime
    contact: str
    peer: str
    #: the address the digest-authenticated REGISTER came from: the device's MESSAGEs must come from it
    host: str = ""


class Gb28181Registrar:
    """The SIP server side of GB/T 28181 for REGISTER and MESSAGE, as a pure state machine."""

    def __init__(
        self,
        *,
        server_id: str,
        realm: str,
        password_for: dict[str, str] | None = None,
        default_password: str | None = None,
        nonce_ttl_s: int = 300,
        max_expires_s: int = 86400,
        max_devices: int = 500_000,
        secret: bytes | None = None,
        nonce_source: Callable[[datetime], str] | None = None,
    ) -> None:
        self.server_id = server_id
        self.realm = realm
        self._passwords = password_for or {}
        self._default_password = default_password
        self._nonce_ttl = nonce_ttl_s
        self._max_expires = max_expires_s
        self._max_devices = max_devices
        self._secret = secret or secrets.token_bytes(32)
        self._registered: OrderedDict[str, _Registration] = OrderedDict()
        # Replaying a captured exchange needs the captured nonce: tests may supply the nonces, which are
        # then remembered (bounded) instead of being self-validating.
        self._nonce_source = nonce_source
        self._issued: OrderedDict[str, float] = OrderedDict()
        self._answered: OrderedDict[tuple[str, int, str, str], bytes] = OrderedDict()

    # -- nonces are self-validating (HMAC of their issue time), so nothing is stored per challenge
    def _nonce(self, now: datetime) -> str:
        if self._nonce_source is not None:
            nonce = self._nonce_source(now)
            self._issued[nonce] = now.timestamp()
            while len(self._issued) > 10_000:
                self._issued.popitem(last=False)
            return nonce
        ts = f"{int(now.timestamp()):x}"
        mac = hmac.new(self._secret, ts.encode(), hashlib.sha256).hexdigest()[:16]
        return ts + mac

    def _nonce_valid(self, nonce: str, now: datetime) -> bool:
        if self._nonce_source is not None:
            issued_at = self._issued.get(nonce)
            return issued_at is not None and 0 <= now.timestamp() - issued_at <= self._nonce_ttl
        if len(nonce) < 17:
            return False
        ts, mac = nonce[:-16], nonce[-16:]
        want = hmac.new(self._secret, ts.encode(), hashlib.sha256).hexdigest()[:16]
        if not hmac.compare_digest(mac, want):
            return False
        try:
            issued = int(ts, 16)
        except ValueError:
            return False
        return 0 <= now.timestamp() - issued <= self._nonce_ttl

    def password(self, device_id: str) -> str | None:
        return self._passwords.get(device_id, self._default_password)

    def set_password(self, device_id: str, password: str) -> None:
        self._passwords[device_id] = password

    def is_registered(self, device_id: str, now: datetime) -> bool:
        reg = self._registered.get(device_id)
        return reg is not None and reg.expires_at > now

    def expire(self, now: datetime) -> list[str]:
        """Drop registrations past their expiry; returns the device ids that went offline."""
        gone = [d for d, r in self._registered.items() if r.expires_at <= now]
        for d in gone:
            del self._registered[d]
        return gone

    @property
    def registered_count(self) -> int:
        return len(self._registered)

    def _remember(self, req: SipMessage, reply: bytes) -> None:
        cseq_n, cseq_m = req.cseq
        self._answered[(req.call_id, cseq_n, cseq_m, req.branch)] = reply
        while len(self._answered) > 4096:
            self._answered.popitem(last=False)

    def remember_reply(self, req: SipMessage, reply: bytes) -> None:
        """Called by the server once a deferred reply (after publishing) has been sent."""
        self._remember(req, reply)

    def handle(
        self, req: SipMessage, peer: tuple[str, int], now: datetime, raw: bytes = b""
    ) -> RegistrarResult:
        """One request in; the reply and the events it produces out. Responses from the peer are ignored."""
        if not req.is_request:
            return RegistrarResult(None)
        cseq_n, cseq_m = req.cseq
        cached = self._answered.get((req.call_id, cseq_n, cseq_m, req.branch))
        if cached is not None:
            return RegistrarResult(cached, retransmission=True)
        peer_s = f"{peer[0]}:{peer[1]}"
        to_tag = hashlib.sha1(f"{req.call_id}{self.server_id}".encode()).hexdigest()[:10]
        if req.method == "REGISTER":
            return self._register(req, peer, peer_s, now, to_tag, raw)
        if req.method == "MESSAGE":
            return self._message(req, peer, peer_s, now, to_tag, raw)
        if req.method in ("OPTIONS",):
            reply = build_response(
                req, 200, "OK", to_tag=to_tag, peer=peer, extra=[("Allow", "REGISTER, MESSAGE, OPTIONS")]
            )
            return RegistrarResult(reply)
        if req.method == "ACK":
            return RegistrarResult(None)
        reply = build_response(
            req,
            405,
            "Method Not Allowed",
            to_tag=to_tag,
            peer=peer,
            extra=[("Allow", "REGISTER, MESSAGE, OPTIONS")],
        )
        return RegistrarResult(reply)

    def _challenge(
        self, req: SipMessage, peer: tuple[str, int], now: datetime, to_tag: str, stale: bool = False
    ) -> bytes:
        value = f'Digest realm="{self.realm}", nonce="{self._nonce(now)}", algorithm=MD5, qop="auth"'
        if stale:
            value += ", stale=TRUE"
        return build_response(
            req, 401, "Unauthorized", to_tag=to_tag, peer=peer, extra=[("WWW-Authenticate", value)]
        )

    def _register(
        self, req: SipMessage, peer: tuple[str, int], peer_s: str, now: datetime, to_tag: str, raw: bytes
    ) -> RegistrarResult:
        device_id = req.from_user
        auth = req.header("authorization")
        if not auth:
            return RegistrarResult(self._challenge(req, peer, now, to_tag))
        params = parse_auth_params(auth)
        username = params.get("username", "")
        password = self.password(username)
        rejected = RegistrarResult(
            build_response(req, 403, "Forbidden", to_tag=to_tag, peer=peer),
            [
                SipEvent(
                    SipEventType.REJECTED,
                    device_id or username or "?",
                    peer_s,
                    reason="bad credentials",
                    raw=raw,
                )
            ],
        )
        if password is None or username != device_id or params.get("realm") != self.realm:
            return rejected
        nonce = params.get("nonce", "")
        if not self._nonce_valid(nonce, now):
            return RegistrarResult(self._challenge(req, peer, now, to_tag, stale=True))
        qop = params.get("qop")
        want = digest_response(
            username=username,
            realm=self.realm,
            password=password,
            method="REGISTER",
            uri=params.get("uri", ""),
            nonce=nonce,
            qop=qop,
            nc=params.get("nc"),
            cnonce=params.get("cnonce"),
        )
        if not hmac.compare_digest(want, params.get("response", "").lower()):
            return rejected
        try:
            expires = int(req.header("expires") or 3600)
        except ValueError:
            expires = 3600
        contact = req.header("contact") or ""
        m = re.search(r";\s*expires=(\d+)", contact)
        if m:
            expires = int(m.group(1))
        expires = max(0, min(expires, self._max_expires))
        date = (
            now.astimezone(timezone(timedelta(hours=8))).strftime("%Y-%m-%dT%H:%M:%S.")
            + f"{now.microsecond // 1000:03d}"
        )
        extra = [("Contact", contact)] if contact else []
        extra += [("Expires", str(expires)), ("Date", date)]
        reply = build_response(req, 200, "OK", to_tag=to_tag, peer=peer, extra=extra)
        if expires == 0:
            self._registered.pop(device_id, None)
            event = SipEvent(SipEventType.UNREGISTERED, device_id, peer_s, raw=raw)
        else:
            was = self.is_registered(device_id, now)
            self._registered[device_id] = _Registration(
                now + timedelta(seconds=expires), contact, peer_s, peer[0]
            )
            self._registered.move_to_end(device_id)
            while len(self._registered) > self._max_devices:
                self._registered.popitem(last=False)
            if was:
                self._remember(req, reply)
                return RegistrarResult(reply)  # refresh: nothing new to say
            event = SipEvent(SipEventType.REGISTERED, device_id, peer_s, raw=raw)
        fail = build_response(req, 500, "Server Internal Error", to_tag=to_tag, peer=peer)
        return RegistrarResult(reply, [event], failure_reply=fail)

    def _message(
        self, req: SipMessage, peer: tuple[str, int], peer_s: str, now: datetime, to_tag: str, raw: bytes
    ) -> RegistrarResult:
        device_id = req.from_user
        reg = self._registered.get(device_id)
        # The From header is the sender's say-so: only the address whose REGISTER passed the digest
        # speaks for the device (a stranger naming a registered device id is refused, docs/security.md)
        reason = (
            "not registered"
            if reg is None or reg.expires_at <= now
            else ("foreign source" if reg.host and reg.host != peer[0] else None)
        )
        if reason is not None:
            return RegistrarResult(
                build_response(req, 403, "Forbidden", to_tag=to_tag, peer=peer),
                [SipEvent(SipEventType.REJECTED, device_id or "?", peer_s, reason=reason, raw=raw)],
            )
        assert reg is not None
        try:
            body = decode_manscdp(req.body)
        except SipError as exc:
            return RegistrarResult(
                build_response(req, 400, "Bad Request", to_tag=to_tag, peer=peer),
                [SipEvent(SipEventType.REJECTED, device_id, peer_s, reason=str(exc), raw=raw)],
            )
        reg.peer = peer_s
        ok = build_response(req, 200, "OK", to_tag=to_tag, peer=peer)
        fail = build_response(req, 500, "Server Internal Error", to_tag=to_tag, peer=peer)
        if body.cmd_type == "Keepalive":
            # A keepalive proves liveness; extend the registration's grace at least to the next one.
            return RegistrarResult(
                ok, [SipEvent(SipEventType.KEEPALIVE, device_id, peer_s, body, raw=raw)], failure_reply=fail
            )
        if body.cmd_type == "Alarm" and body.root == "Notify":
            return RegistrarResult(
                ok,
                [SipEvent(SipEventType.ALARM, body.device_id or device_id, peer_s, body, raw=raw)],
                failure_reply=fail,
            )
        return RegistrarResult(
            ok, [SipEvent(SipEventType.MESSAGE, device_id, peer_s, body, raw=raw)], failure_reply=fail
        )


def build_alarm_response_body(device_id: str, sn: str | None) -> bytes:
    """The application-level answer to an alarm Notify (A.2.6: ``<Response><CmdType>Alarm`` … OK)."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\r\n<Response>\r\n<CmdType>Alarm</CmdType>\r\n'
        f"<SN>{sn or 0}</SN>\r\n<DeviceID>{device_id}</DeviceID>\r\n<Result>OK</Result>\r\n</Response>\r\n"
    ).encode()


#: GB/T 28181-2016 A.2.5 AlarmMethod codes
ALARM_METHODS = {
    "1": "phone",
    "2": "device",
    "3": "sms",
    "4": "gps",
    "5": "video",
    "6": "device_fault",
    "7": "other",
}
#: AlarmType within method 5 (video): 1 manual, 2 motion, 3 left object, 4 object removed, 5 tripwire,
#: 6 intrusion, 7 reverse, 8 loitering, 9 traffic, 10 fast moving, 11 tamper (video blocked)
VIDEO_ALARM_TYPES = {"2": "motion", "5": "line_crossing", "6": "intrusion", "11": "tamper"}


def build_alarm_response_request(
    *,
    server_id: str,
    realm: str,
    sip_device_id: str,
    alarm: ManscdpMessage,
    peer: tuple[str, int],
    local: tuple[str, int],
    transport: str,
    call_id: str,
    branch: str,
    from_tag: str,
    cseq: int = 1,
) -> bytes:
    """The server's MESSAGE that answers a device's alarm Notify (§9.4, A.2.6 ``Response``/``Alarm``/OK).

    The 200 OK to the device's MESSAGE only says the SIP transaction arrived; this request tells the
    device the alarm itself was taken, which is what makes devices stop repeating the notification.
    The random parts (Call-ID, branch, tag) are parameters so the function stays pure.
    """
    headers = [
        ("Via", f"SIP/2.0/{transport.upper()} {local[0]}:{local[1]};rport;branch=z9hG4bK{branch}"),
        ("From", f"<sip:{server_id}@{realm}>;tag={from_tag}"),
        ("To", f"<sip:{sip_device_id}@{realm}>"),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} MESSAGE"),
        ("Max-Forwards", "70"),
        ("User-Agent", "alarmhub"),
        ("Content-Type", "Application/MANSCDP+xml"),
    ]
    body = build_alarm_response_body(alarm.device_id or sip_device_id, alarm.sn)
    return SipMessage(
        "MESSAGE", f"sip:{sip_device_id}@{peer[0]}:{peer[1]}", None, None, headers, body
    ).to_bytes()
