"""The second factor: time-based one-time passwords (RFC 6238 over RFC 4226's HOTP), and recovery codes.

- A secret is 20 random bytes (160 bits, RFC 4226 §4's recommendation), shown once as an ``otpauth://``
  URI and its base32 text; the ``people`` row keeps it write-only (no API reads it back).
- Codes are 6 digits over 30 s steps, HMAC-SHA-1 (what every authenticator app does); a code is accepted
  for the step before and after the server's (clock drift, RFC 6238 §5.2) and only for a step after the
  last one used (``people.totp_last_step``): a code seen once cannot be replayed within its window.
- Recovery codes: ten, each 10 base32 characters (50 bits), shown once; only their SHA-256 is kept and a
  code is consumed by its use. (High-entropy random codes need no slow hash, as bearer tokens do not.)

Tested against RFC 6238 appendix B's vectors and against ``pyotp`` (tests/test_totp.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from urllib.parse import quote, urlencode

__all__ = [
    "DIGITS",
    "STEP_S",
    "hotp",
    "new_recovery_codes",
    "new_secret",
    "otpauth_uri",
    "recovery_hash",
    "totp",
    "verify",
]

STEP_S = 30
DIGITS = 6
_ALGOS = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}


def new_secret() -> str:
    """A fresh secret, base32 without padding (as authenticator apps take it)."""
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii").rstrip("=")


def _key(secret: str) -> bytes:
    s = secret.strip().replace(" ", "").upper()
    return base64.b32decode(s + "=" * (-len(s) % 8))


def hotp(key: bytes, counter: int, *, digits: int = DIGITS, algorithm: str = "SHA1") -> str:
    """RFC 4226 §5.3: HMAC over the 8-byte counter, dynamic truncation, modulo 10^digits."""
    mac = hmac.new(key, struct.pack(">Q", counter), _ALGOS[algorithm]).digest()
    off = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[off : off + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def totp(key: bytes, t: float, *, digits: int = DIGITS, algorithm: str = "SHA1", step_s: int = STEP_S) -> str:
    """RFC 6238 §4.2: HOTP with T = floor((t - T0) / X), T0 = 0."""
    return hotp(key, int(t) // step_s, digits=digits, algorithm=algorithm)


def verify(secret: str, code: str, now: float, last_step: int, *, window: int = 1) -> int | None:
    """The step the code belongs to (one of now's ± ``window``, after ``last_step``), or None."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    key = _key(secret)
    current = int(now) // STEP_S
    found = None
    for step in range(current - window, current + window + 1):
        # every candidate is computed and compared in constant time (no early exit to time)
        if (
            hmac.compare_digest(
                hotp(key, step).encode("utf-8", "surrogatepass"), code.encode("utf-8", "surrogatepass")
            )
            and step > last_step
        ):
            found = step
    return found


def otpauth_uri(secret: str, user: str, issuer: str) -> str:
    """The Key Uri Format of Google Authenticator (what the apps scan or take as text)."""
    label = f"{quote(issuer, safe='')}:{quote(user, safe='@')}"
    query = urlencode(
        {"secret": secret, "issuer": issuer, "algorithm": "SHA1", "digits": DIGITS, "period": STEP_S}
    )
    return f"otpauth://totp/{label}?{query}"


def recovery_hash(code: str) -> str:
    return hashlib.sha256(code.strip().replace("-", "").replace(" ", "").upper().encode()).hexdigest()


def new_recovery_codes(n: int = 10) -> tuple[list[str], list[str]]:
    """(the codes to show once, formatted ``XXXXX-XXXXX``; their hashes to store)."""
    codes = []
    for _ in range(n):
        raw = base64.b32encode(secrets.token_bytes(7)).decode("ascii")[:10]
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes, [recovery_hash(c) for c in codes]
