"""SIA DC-09 over TCP and UDP: framing, decoding, replies and encoding. Pure: bytes in, models/bytes out.

Edition: ANSI/SIA DC-09-2013 and DC-09-2021 (same frame; 2021 adds nothing this receiver reads
differently). The data blocks inside are Contact ID (:mod:`.contactid`) and SIA DCS (:mod:`.sia`).

A DC-09 frame on the wire::

    <LF> CCCC 0LLL "ID" seq Rrcvr Lpref #acct [data] [x…] _HH:MM:SS,MM-DD-YYYY <CR>

``CCCC`` is CRC-16/ARC (poly 0x8005 reflected, init 0) over everything from the opening quote of the
token to the last character before ``<CR>`` (the "body"), as four upper-case hex digits; ``0LLL`` is the
body length in hex. An encrypted token starts with ``*``; then everything after the ``[`` is the hex of
AES-CBC (IV zero) over ``pad | data ] [x…] _timestamp``, padded at the front to a multiple of 16 bytes.

The face (docs/architecture.md, "protocol vocabulary"): :class:`Framer`, :func:`decode` (or its steps
:func:`decode_frame` → :func:`decode_header` → :func:`decode_message`, for a key looked up from the
header), :func:`reply` (``ACK``), :func:`reply_duh`, :func:`reply_nak`, :func:`encode` and
:func:`decode_reply` (a transmitter's side: simulator, tests). CRC and AES live in ``_dc09_codec``.

Choices: tokens ``SIA-DCS``, ``ADM-CID`` and ``NULL`` are read, any other is answered ``DUH``; the
CRC and length fields must be strict hex and match; a clear body must be ASCII; an encrypted message
without a timestamp is refused. Tolerated: absent receiver/line prefixes and leading zeros
(``L000`` is ``L0``), lower-case hex, any pad character but ``[ ] |`` (control characters, ``#``), and
pysiaalarm's pads without ``|``; control characters in decrypted data travel on. Replies to
encrypted messages are encrypted with our timestamp; ``DUH`` never is.

The module never touches a socket and never reads the clock: callers pass ``now``. Errors carry a
``reason`` (a bounded metric label) and say which reply the standard calls for:

- :class:`FrameError` (bad CRC, bad length, not a frame): no reply — the transmitter cannot be trusted
  to be who it says and will retry.
- :class:`UnsupportedError` (unknown token, unparseable fields or payload): ``DUH``.
- :class:`DecryptError` (wrong key, garbage ciphertext) and timestamp window violations: ``NAK``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Literal

from ._dc09_codec import (
    Dc09Error,
    DecryptError,
    FrameError,
    UnsupportedError,
    crc16,
    crc16_fast,
    decrypt_block,
    encrypt_block,
)

__all__ = [
    "DEFAULT_MAX_FRAME",
    "KNOWN_TOKENS",
    "Dc09Error",
    "Dc09Header",
    "Dc09Message",
    "Dc09Reply",
    "DecryptError",
    "FrameError",
    "Framer",
    "UnsupportedError",
    "crc16",
    "decode",
    "decode_frame",
    "decode_header",
    "decode_message",
    "decode_reply",
    "encode",
    "encode_frame",
    "reply",
    "reply_duh",
    "reply_nak",
]

LF: Final = 0x0A
CR: Final = 0x0D
#: The largest frame we buffer. The standard's length field allows 0x0FFF bytes of body.
DEFAULT_MAX_FRAME: Final = 1 + 8 + 0x0FFF + 1
#: Tokens this receiver understands (without the ``*`` of the encrypted form).
KNOWN_TOKENS: Final = frozenset({"SIA-DCS", "ADM-CID", "NULL"})


# ---------------------------------------------------------------------------------------------- framing


_HEX_DIGITS: Final = b"0123456789ABCDEFabcdef"


def encode_frame(body: bytes) -> bytes:
    """Wrap a body (``"ID"…``) into a complete ``LF CRC 0LLL body CR`` frame."""
    if len(body) > 0x0FFF:
        raise ValueError("body longer than the 0LLL field allows")
    return b"\n%04X%04X%s\r" % (crc16_fast(body), len(body), body)


def decode_frame(frame: bytes) -> bytes:
    """Check LF/CR, CRC and length of one frame and return its body. Raises :class:`FrameError`."""
    if len(frame) < 1 + 8 + 2 or frame[0] != LF or frame[-1] != CR:
        raise FrameError("format", "not an LF … CR frame")
    head = frame[1:9]
    body = frame[9:-1]
    try:
        crc_sent = int(head[:4], 16)
        if head[4:5] != b"0":
            raise ValueError
        length = int(head[4:8], 16)
    except ValueError:
        raise FrameError("format", "CRC or length field is not hex") from None
    if head.translate(None, _HEX_DIGITS):  # int() also takes "+", "_" and spaces; the field may not
        raise FrameError("format", "CRC or length field is not hex")
    crc = crc16_fast(body)
    if crc != crc_sent:
        raise FrameError("crc", f"sent {crc_sent:04X}, computed {crc:04X}")
    if length != len(body):
        raise FrameError("length", f"sent {length}, body has {len(body)}")
    return body


@dataclass
class Framer:
    """Splits a TCP byte stream into candidate frames (``LF … CR``), sans-IO.

    Bodies are printable ASCII, so a frame is the bytes from an LF to the next CR; an LF seen before
    that CR restarts the frame (what came before was noise). Bytes outside frames are dropped and
    counted in ``garbage``; a frame that grows past ``max_frame`` without a CR is dropped too.
    CRC and length are checked later by :func:`decode_frame`.
    """

    max_frame: int = DEFAULT_MAX_FRAME
    garbage: int = 0
    oversized: int = 0
    _buf: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return every complete frame now available, in order."""
        buf = self._buf
        buf += data
        frames: list[bytes] = []
        while buf:
            start = buf.find(b"\n")
            if start < 0:
                self.garbage += len(buf)
                buf.clear()
                break
            if start:
                self.garbage += start
                del buf[:start]
            end = buf.find(b"\r", 1)
            nxt = buf.find(b"\n", 1, end if end >= 0 else len(buf))
            if nxt >= 0:
                # a new LF before any CR: the bytes before it were not a frame
                self.garbage += nxt
                del buf[:nxt]
                continue
            if end < 0:
                if len(buf) > self.max_frame:
                    self.oversized += 1
                    self.garbage += len(buf)
                    buf.clear()
                break
            if end + 1 > self.max_frame:
                self.oversized += 1
                self.garbage += end + 1
            else:
                frames.append(bytes(buf[: end + 1]))
            del buf[: end + 1]
        return frames

    @property
    def pending(self) -> int:
        """Bytes held while waiting for the rest of a frame."""
        return len(self._buf)


# ----------------------------------------------------------------------------------------------- models

_HEADER_RE: Final = re.compile(
    rb'"(?P<star>\*?)(?P<token>[A-Z0-9-]{2,12})"(?P<seq>[0-9]{4})'
    rb"(?:R(?P<rcv>[0-9A-Fa-f]{1,6}))?(?:L(?P<line>[0-9A-Fa-f]{1,6}))?"
    rb"(?:#(?P<acct>[0-9A-Fa-f]{3,16}))?\[(?P<rest>.*)\Z",
    re.DOTALL,
)
_TS_RE: Final = re.compile(r"_(\d{2}):(\d{2}):(\d{2}),(\d{2})-(\d{2})-(\d{4})\Z")


@dataclass(frozen=True, slots=True)
class Dc09Header:
    """The clear part of a frame, up to and including ``[``. ``rest`` is everything after the ``[``.

    ``receiver``/``line`` are exactly as sent (``None`` when absent); use :meth:`line_id` for the
    normalized account key.
    """

    token: str
    encrypted: bool
    seq: str
    receiver: str | None
    line: str | None
    account: str | None
    rest: str
    body: bytes

    def line_id(self) -> str:
        """The line prefix without leading zeros (``L000`` and ``L0`` are the same line; none means 0)."""
        return _norm_hex(self.line)

    def receiver_id(self) -> str | None:
        return None if self.receiver is None else _norm_hex(self.receiver)


def _norm_hex(value: str | None) -> str:
    if not value:
        return "0"
    out = _NORM_HEX.get(value)
    if out is None:  # memoised: called several times per message, and lines and receivers repeat
        if len(_NORM_HEX) > 4096:
            _NORM_HEX.clear()
        out = _NORM_HEX[value] = value.upper().lstrip("0") or "0"
    return out


_NORM_HEX: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class Dc09Message:
    """One decoded (and, when it was encrypted, decrypted) DC-09 message."""

    token: str
    encrypted: bool
    seq: str
    receiver: str | None
    line: str | None
    account: str | None
    data: str
    extended: tuple[str, ...]
    timestamp: datetime | None
    body: bytes

    @property
    def is_null(self) -> bool:
        return self.token == "NULL"

    def line_id(self) -> str:
        return _norm_hex(self.line)

    def receiver_id(self) -> str | None:
        return None if self.receiver is None else _norm_hex(self.receiver)

    def device_id(self) -> str:
        """The contract's stable source id, ``L<line>#<account>``."""
        key = (self.line, self.account)
        out = _DEVICE_IDS.get(key)
        if out is None:  # memoised: asked for several times per message
            if len(_DEVICE_IDS) > 100_000:
                _DEVICE_IDS.clear()
            out = _DEVICE_IDS[key] = f"L{self.line_id()}#{(self.account or '').upper()}"
        return out


_DEVICE_IDS: dict[tuple[str | None, str | None], str] = {}


@dataclass(frozen=True, slots=True)
class Dc09Reply:
    """A receiver's reply as a transmitter (simulator, tests) sees it."""

    token: Literal["ACK", "NAK", "DUH", "RSP"]
    encrypted: bool
    seq: str
    receiver: str | None
    line: str | None
    account: str | None
    timestamp: datetime | None


# ---------------------------------------------------------------------------------------------- parsing


def decode_header(body: bytes) -> Dc09Header:
    """Parse the clear header of a body. Raises :class:`UnsupportedError` (→ ``DUH``)."""
    m = _HEADER_RE.match(body)
    if m is None:
        raise UnsupportedError("header", "token, sequence, receiver, line or account malformed")
    star, token, seq, rcv, line, acct, rest_b = m.groups()
    try:
        rest = rest_b.decode("ascii")
    except UnicodeDecodeError:
        raise UnsupportedError("encoding", "non-ASCII data") from None
    return Dc09Header(token.decode(), bool(star), seq.decode(), _opt(rcv), _opt(line), _opt(acct), rest, body)


def _opt(value: bytes | None) -> str | None:
    return None if value is None else value.decode().upper()


def _timestamp(text: str) -> datetime:
    """``_HH:MM:SS,MM-DD-YYYY`` (UTC) to an aware datetime. Raises :class:`UnsupportedError`.

    Memoised: a timestamp has one-second resolution, so every transmitter reporting in the same second
    sends the same text (a regular expression, six ints and a datetime per message otherwise).
    """
    out = _TIMESTAMPS.get(text)
    if out is not None:
        return out
    m = _TS_RE.match(text)
    if m is None:
        raise UnsupportedError("timestamp", text[:32])
    hh, mi, ss, mo, dd, yy = map(int, m.groups())
    try:
        out = datetime(yy, mo, dd, hh, mi, ss, tzinfo=UTC)
    except ValueError:
        raise UnsupportedError("timestamp", text[:32]) from None
    if len(_TIMESTAMPS) >= 4096:
        _TIMESTAMPS.clear()
    _TIMESTAMPS[text] = out
    return out


_TIMESTAMPS: dict[str, datetime] = {}


def _format_timestamp(when: datetime) -> str:
    """An aware datetime as the DC-09 timestamp ``_HH:MM:SS,MM-DD-YYYY`` in UTC."""
    return when.astimezone(UTC).strftime("_%H:%M:%S,%m-%d-%Y")


def _plaintext(rest: str) -> tuple[str, tuple[str, ...], datetime | None]:
    """Split what follows ``[`` (clear, or decrypted and unpadded) into data, extended blocks, timestamp."""
    close = rest.find("]")
    if close < 0:
        raise UnsupportedError("data", "no closing ]")
    data = rest[:close]
    if "[" in data:
        raise UnsupportedError("data", "[ inside data")
    tail = rest[close + 1 :]
    extended: list[str] = []
    while tail.startswith("["):
        end = tail.find("]")
        if end < 0:
            raise UnsupportedError("xdata", "no closing ] in extended data")
        extended.append(tail[1:end])
        tail = tail[end + 1 :]
    timestamp = _timestamp(tail) if tail else None
    return data, tuple(extended), timestamp


def decode(frame: bytes, key: bytes | None = None) -> Dc09Message:
    """Open, parse and (with ``key``) decrypt one frame. Raises a :class:`Dc09Error` subclass."""
    return decode_message(decode_header(decode_frame(frame)), key)


def decode_message(header: Dc09Header, key: bytes | None) -> Dc09Message:
    """Finish decoding once the caller has looked up the account's key from the header."""
    if header.encrypted:
        if key is None:
            raise DecryptError("no_key", f"encrypted message for account {header.account}")
        plain = decrypt_block(header.rest, key, header.account)
        data, extended, ts = _plaintext(plain)
        if ts is None:
            raise DecryptError("timestamp_missing", "encrypted message without a timestamp")
    else:
        data, extended, ts = _plaintext(header.rest)
    return Dc09Message(
        token=header.token,
        encrypted=header.encrypted,
        seq=header.seq,
        receiver=header.receiver,
        line=header.line,
        account=header.account,
        data=data,
        extended=extended,
        timestamp=ts,
        body=header.body,
    )


# ---------------------------------------------------------------------------------------------- replies


def _ids(receiver: str | None, line: str | None) -> str:
    return (f"R{receiver}" if receiver is not None else "") + (f"L{line}" if line is not None else "")


def reply(msg: Dc09Message | Dc09Header, *, now: datetime, key: bytes | None = None) -> bytes:
    """``ACK`` echoing sequence, receiver, line and account; encrypted (with our timestamp) when the
    message was, as the standard requires."""
    return _reply("ACK", msg, now=now, key=key)


def reply_duh(msg: Dc09Message | Dc09Header) -> bytes:
    """``DUH``: we understood the frame but not its token or content. Never encrypted (we may not know
    the key), which transmitters accept."""
    ids = _ids(msg.receiver, msg.line)
    acct = f"#{msg.account}" if msg.account else ""
    return encode_frame(f'"DUH"{msg.seq}{ids}{acct}[]'.encode())


def reply_nak(*, now: datetime, receiver: str | None = "0", line: str | None = "0") -> bytes:
    """``NAK`` with sequence 0000, account ``A0`` and the receiver's time, per the standard: the
    transmitter uses the timestamp to resynchronise its clock before retrying."""
    ids = _ids(receiver if receiver is not None else "0", line if line is not None else "0")
    return encode_frame(f'"NAK"0000{ids}A0[]{_format_timestamp(now)}'.encode())


def _reply(token: str, msg: Dc09Message | Dc09Header, *, now: datetime, key: bytes | None) -> bytes:
    ids = _ids(msg.receiver, msg.line)
    acct = f"#{msg.account}" if msg.account else ""
    if msg.encrypted:
        if key is None:
            raise ValueError("an encrypted message needs an encrypted reply")
        hex_ = encrypt_block("]" + _format_timestamp(now), key)
        return encode_frame(f'"*{token}"{msg.seq}{ids}{acct}[{hex_}'.encode())
    return encode_frame(f'"{token}"{msg.seq}{ids}{acct}[]'.encode())


_REPLY_RE: Final = re.compile(
    r'"(?P<star>\*?)(?P<token>ACK|NAK|DUH|RSP)"(?P<seq>[0-9]{4})'
    r"(?:R(?P<rcv>[0-9A-Fa-f]{1,6}?))?(?:L(?P<line>[0-9A-Fa-f]{1,6}?))?"
    r"(?:#(?P<acct>[0-9A-Fa-f]{3,16})|A0)?\[(?P<rest>.*)\Z",
    re.DOTALL,
)


def decode_reply(frame: bytes, key: bytes | None = None) -> Dc09Reply:
    """Parse a receiver's reply (for the simulator and tests). Raises :class:`Dc09Error`."""
    body = decode_frame(frame)
    m = _REPLY_RE.match(body.decode("ascii", "replace"))
    if m is None:
        raise UnsupportedError("reply", body[:40].decode("ascii", "replace"))
    ts: datetime | None = None
    rest = m.group("rest")
    if m.group("star"):
        if key is None:
            raise DecryptError("no_key", "encrypted reply")
        rest = decrypt_block(rest, key, m.group("acct"))
    _, _, ts = _plaintext(rest)
    return Dc09Reply(
        token=m.group("token"),  # type: ignore[arg-type]
        encrypted=bool(m.group("star")),
        seq=m.group("seq"),
        receiver=_up(m.group("rcv")),
        line=_up(m.group("line")),
        account=_up(m.group("acct")),
        timestamp=ts,
    )


def _up(value: str | None) -> str | None:
    return None if value is None else value.upper()


# --------------------------------------------------------------------------------------------- encoding


def encode(
    token: str,
    seq: int,
    account: str,
    data: str,
    *,
    receiver: str | None = None,
    line: str | None = "0",
    timestamp: datetime | None = None,
    key: bytes | None = None,
    extended: tuple[str, ...] = (),
) -> bytes:
    """Build a full ``LF … CR`` frame, as a transmitter would (simulator and tests only).

    ``data`` is the text inside the brackets (``#1234|1120 01 001``); with ``key`` the frame uses the
    ``*`` token and the standard's AES-CBC block, and a timestamp is mandatory (the current time is
    used when none is given — the standard requires one on encrypted messages).
    """
    ids = _ids(receiver, line)
    head = f'"{"*" if key else ""}{token}"{seq % 10000:04d}{ids}#{account}['
    xdata = "".join(f"[{x}]" for x in extended)
    if key is not None:
        when = timestamp or datetime.now(UTC)
        tail = encrypt_block(f"{data}]{xdata}{_format_timestamp(when)}", key)
    else:
        tail = f"{data}]{xdata}{_format_timestamp(timestamp) if timestamp else ''}"
    return encode_frame((head + tail).encode("ascii"))
