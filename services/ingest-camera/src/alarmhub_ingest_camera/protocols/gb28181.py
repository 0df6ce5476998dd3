"""GB/T 28181 over SIP: message parsing, TCP framing, digest authentication, MANSCDP bodies, registrar.

Edition: GB/T 28181-2016 (REGISTER §9.1, keepalive §9.6, alarm §9.4, AlarmMethod codes A.2.5, catalog
query §9.5.1); -2011 devices' bodies read the same. The platform (SIP server) side only: requests are
answered; the requests the platform sends (the alarm's answer, the Catalog query) are built here and
sent by the server.

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
- Catalog (§9.5.1): the platform's ``MESSAGE`` with ``<Query><CmdType>Catalog`` goes to the address the
  device registered from; the device answers ``200`` and then sends one or more ``<Response>`` Catalog
  MESSAGEs (``SumNum`` in each, items split across them), each answered ``200`` and handed on as a
  ``CATALOG`` event. Live view (§9.2, INVITE with SDP and an RTP/PS receiver) is not implemented.
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

from ._gb28181_manscdp import (
    ALARM_METHODS,
    CODE_KINDS,
    VIDEO_ALARM_TYPES,
    CatalogPage,
    ManscdpMessage,
    decode_catalog,
    decode_manscdp,
    encode_alarm_response,
    encode_alarm_response_body,
    encode_catalog_query_body,
    encode_manscdp_request,
)
from ._gb28181_sip import (
    MAX_MESSAGE,
    Framer,
    SipError,
    SipMessage,
    decode,
    decode_auth_params,
    digest_response,
    reply,
)

__all__ = [
    "ALARM_METHODS",
    "CODE_KINDS",
    "MAX_MESSAGE",
    "VIDEO_ALARM_TYPES",
    "CatalogPage",
    "Framer",
    "Gb28181Registrar",
    "ManscdpMessage",
    "RegistrarResult",
    "SipError",
    "SipEvent",
    "SipEventType",
    "SipMessage",
    "decode",
    "decode_auth_params",
    "decode_catalog",
    "decode_manscdp",
    "digest_response",
    "encode_alarm_response",
    "encode_alarm_response_body",
    "encode_catalog_query_body",
    "encode_manscdp_request",
    "reply",
]

# ---------------------------------------------------------------- registrar session


class SipEventType(StrEnum):
    REGISTERED = "registered"
    UNREGISTERED = "unregistered"
    KEEPALIVE = "keepalive"
    ALARM = "alarm"
    CATALOG = "catalog"
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
        if not hmac.compare_digest(
            mac.encode("utf-8", "surrogatepass"), want.encode("utf-8", "surrogatepass")
        ):  # str: ASCII only, bytes: anything
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

    def source(self, device_id: str, now: datetime) -> tuple[str, int] | None:
        """Where a registered device's requests come from (host, port): where requests to it go."""
        reg = self._registered.get(device_id)
        if reg is None or reg.expires_at <= now:
            return None
        host, _, port = reg.peer.rpartition(":")
        return (host, int(port)) if port.isdigit() else None

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
        """One request in; the answer and the events it produces out. Responses from the peer are ignored."""
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
            answer = reply(
                req, 200, "OK", to_tag=to_tag, peer=peer, extra=[("Allow", "REGISTER, MESSAGE, OPTIONS")]
            )
            return RegistrarResult(answer)
        if req.method == "ACK":
            return RegistrarResult(None)
        answer = reply(
            req,
            405,
            "Method Not Allowed",
            to_tag=to_tag,
            peer=peer,
            extra=[("Allow", "REGISTER, MESSAGE, OPTIONS")],
        )
        return RegistrarResult(answer)

    def _challenge(
        self, req: SipMessage, peer: tuple[str, int], now: datetime, to_tag: str, stale: bool = False
    ) -> bytes:
        value = f'Digest realm="{self.realm}", nonce="{self._nonce(now)}", algorithm=MD5, qop="auth"'
        if stale:
            value += ", stale=TRUE"
        return reply(req, 401, "Unauthorized", to_tag=to_tag, peer=peer, extra=[("WWW-Authenticate", value)])

    def _register(
        self, req: SipMessage, peer: tuple[str, int], peer_s: str, now: datetime, to_tag: str, raw: bytes
    ) -> RegistrarResult:
        device_id = req.from_user
        auth = req.header("authorization")
        if not auth:
            return RegistrarResult(self._challenge(req, peer, now, to_tag))
        params = decode_auth_params(auth)
        username = params.get("username", "")
        password = self.password(username)
        rejected = RegistrarResult(
            reply(req, 403, "Forbidden", to_tag=to_tag, peer=peer),
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
        if not hmac.compare_digest(
            want.encode("utf-8", "surrogatepass"),
            params.get("response", "").lower().encode("utf-8", "surrogatepass"),
        ):
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
        answer = reply(req, 200, "OK", to_tag=to_tag, peer=peer, extra=extra)
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
                self._remember(req, answer)
                return RegistrarResult(answer)  # refresh: nothing new to say
            event = SipEvent(SipEventType.REGISTERED, device_id, peer_s, raw=raw)
        fail = reply(req, 500, "Server Internal Error", to_tag=to_tag, peer=peer)
        return RegistrarResult(answer, [event], failure_reply=fail)

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
                reply(req, 403, "Forbidden", to_tag=to_tag, peer=peer),
                [SipEvent(SipEventType.REJECTED, device_id or "?", peer_s, reason=reason, raw=raw)],
            )
        assert reg is not None
        try:
            body = decode_manscdp(req.body)
        except SipError as exc:
            return RegistrarResult(
                reply(req, 400, "Bad Request", to_tag=to_tag, peer=peer),
                [SipEvent(SipEventType.REJECTED, device_id, peer_s, reason=str(exc), raw=raw)],
            )
        reg.peer = peer_s
        ok = reply(req, 200, "OK", to_tag=to_tag, peer=peer)
        fail = reply(req, 500, "Server Internal Error", to_tag=to_tag, peer=peer)
        if body.cmd_type == "Keepalive":
            # A keepalive proves liveness; extend the registration's grace at least to the next one.
            return RegistrarResult(
                ok, [SipEvent(SipEventType.KEEPALIVE, device_id, peer_s, body, raw=raw)], failure_reply=fail
            )
        if body.cmd_type == "Catalog" and body.root == "Response":
            # the answer to our query: nothing goes to Kafka, the 200 goes out at once
            return RegistrarResult(ok, [SipEvent(SipEventType.CATALOG, device_id, peer_s, body, raw=raw)])
        if body.cmd_type == "Alarm" and body.root == "Notify":
            return RegistrarResult(
                ok,
                [SipEvent(SipEventType.ALARM, body.device_id or device_id, peer_s, body, raw=raw)],
                failure_reply=fail,
            )
        return RegistrarResult(
            ok, [SipEvent(SipEventType.MESSAGE, device_id, peer_s, body, raw=raw)], failure_reply=fail
        )
