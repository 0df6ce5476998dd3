"""GB/T 28181's SIP layer (RFC 3261 as the standard profiles it): message parsing, TCP framing, digest
authentication (RFC 2617), responses. Private: the face is :mod:`.gb28181`."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

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


def decode(data: bytes) -> SipMessage:
    """Parse one complete SIP message (a UDP datagram, or one frame from :class:`Framer`)."""
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


class Framer:
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


def decode_auth_params(value: str) -> dict[str, str]:
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


# ---------------------------------------------------------------- responses


def reply(
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
