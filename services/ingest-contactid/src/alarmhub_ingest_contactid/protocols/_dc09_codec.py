"""DC-09's primitives behind :mod:`.dc09`: its errors, CRC-16/ARC and the AES-CBC block (private sibling)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Final, Literal

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

_IV: Final = bytes(16)
_PAD_ALPHABET: Final = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class Dc09Error(ValueError):
    """A frame the receiver cannot accept. ``reason`` is a short, bounded label for metrics and logs."""

    reply: Literal["none", "duh", "nak"] = "none"

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class FrameError(Dc09Error):
    """Broken framing, CRC or length: the standard says not to answer at all."""

    reply = "none"


class UnsupportedError(Dc09Error):
    """A sound frame whose token or fields we do not understand: answer ``DUH``."""

    reply = "duh"


class DecryptError(Dc09Error):
    """An encrypted frame we cannot open (no key, wrong key, bad ciphertext): answer ``NAK``."""

    reply = "nak"


def crc16(data: bytes) -> int:
    """CRC-16/ARC as DC-09 specifies it (x^16+x^15+x^2+1, reflected, init 0, no final xor)."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


# crc16() above is the readable definition; the hot path uses crcmod's C extension ("crc-16" is ARC),
# some 25 times faster, and falls back to a table when it is missing.
_CRC_TABLE: Final = [crc16(bytes([i])) for i in range(256)]


def _crc16_table(data: bytes) -> int:
    crc = 0
    table = _CRC_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


crc16_fast: Callable[[bytes], int]
try:
    from crcmod.predefined import mkCrcFun

    crc16_fast = mkCrcFun("crc-16")
except ImportError:  # pragma: no cover
    crc16_fast = _crc16_table


# ------------------------------------------------------------------------------------------- encryption


def _cipher(key: bytes) -> Cipher[modes.CBC]:
    """The AES-CBC cipher of a key (IV zero), kept per key: each message needs only a fresh
    encryptor/decryptor context from it, not a new key schedule object."""
    cipher = _CIPHERS.get(key)
    if cipher is None:
        if len(key) not in (16, 24, 32):
            raise ValueError("AES key must be 16, 24 or 32 bytes")
        if len(_CIPHERS) > 10_000:
            _CIPHERS.clear()
        cipher = _CIPHERS[key] = Cipher(algorithms.AES(key), modes.CBC(_IV))
    return cipher


_CIPHERS: dict[bytes, Cipher[modes.CBC]] = {}


def encrypt_block(plain: str, key: bytes, *, pad: bytes | None = None) -> str:
    """Encrypt ``data]…_timestamp`` as the standard wants: random pad, ``|``, text; hex upper-case.

    The pad (never ``|``, ``[`` or ``]``) brings the length to a multiple of 16. ``pad`` may be given
    for reproducible test vectors.
    """
    raw = plain.encode("ascii")
    need = (-(len(raw) + 1)) % 16
    if pad is None:
        rnd = os.urandom(need)
        pad = bytes(_PAD_ALPHABET[b % len(_PAD_ALPHABET)] for b in rnd)
    if len(pad) != need or any(c in b"|[]" for c in pad):
        raise ValueError("pad length or characters invalid")
    enc = _cipher(key).encryptor()
    return (enc.update(pad + b"|" + raw) + enc.finalize()).hex().upper()


def decrypt_block(hex_text: str, key: bytes, account: str | None = None) -> str:
    """Decrypt the hex after ``[`` and strip the pad. Raises :class:`DecryptError`.

    The decrypted block is judged by its structure, not by what its bytes look like: DC-09 lets the pad
    be any character but ``[``, ``]`` and ``|`` (dc09-spt pads with control characters and ``#``), so
    a block opens with the right key when it reads ``pad | data ] [x…] _timestamp`` — the pad ends at
    the first ``|`` before the first ``]``, and the block ends with a timestamp. A wrong key yields
    random bytes, which miss that shape (the 20-character timestamp alone) except by a chance of
    about 10^-22.

    Two transmitter habits are accepted as well: a pad with no ``|`` in front of empty data (e.g.
    pysiaalarm's encrypted ``ACK``: ``000…]_timestamp``), and a pad with no ``|`` in front of data
    that opens with the account block (``000…#acct|Nri1/BA01]…``, pysiaalarm's ``encrypt_content``):
    with ``account`` given, a pad that ends in ``#`` + that account is read as the account block.
    """
    try:
        blob = bytes.fromhex(hex_text)
    except ValueError:
        raise DecryptError("ciphertext", "not hex") from None
    if not blob or len(blob) % 16:
        raise DecryptError("ciphertext", "not a whole number of AES blocks")
    try:
        dec = _cipher(key).decryptor()
    except ValueError as exc:
        raise DecryptError("key", str(exc)) from None
    # latin-1 maps every byte to one character, so nothing is refused for its value: control
    # characters in the data travel on (the event model cleans them and keeps the raw frame).
    plain = (dec.update(blob) + dec.finalize()).decode("latin-1")
    if _TIMESTAMP_TAIL.search(plain) is None:
        raise DecryptError("wrong_key", "decrypted block does not end in a timestamp")
    close = plain.find("]")
    bar = plain.find("|", 0, close)
    if bar < 0:
        # no pad delimiter: the pad runs to the account block, or to the ] of empty data
        hash_ = plain.find("#", 0, close)
        start = hash_ if hash_ >= 0 else close
        if "[" in plain[:start]:
            raise DecryptError("wrong_key", "[ in the pad")
        return plain[start:]
    pad = plain[:bar]
    if "[" in pad:
        raise DecryptError("wrong_key", "[ in the pad")
    if account and not plain.startswith("#", bar + 1):
        own = "#" + account
        if pad.upper().endswith(own.upper()):
            return plain[bar - len(own) :]
    return plain[bar + 1 :]


#: The end of every decrypted block: ``]`` (of the data or of the last extended block) and the
#: timestamp ``_HH:MM:SS,MM-DD-YYYY``.
_TIMESTAMP_TAIL: Final = re.compile(r"\]_\d\d:\d\d:\d\d,\d\d-\d\d-\d{4}\Z")
