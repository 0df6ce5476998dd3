"""Platform credentials at rest: PBKDF2-SHA256 hashes of the passwords lower-level platforms log in with.

JT/T 809 sends the password in clear inside 0x1001 (8 bytes in the 2011 edition), so the upper platform
never needs it back: dispatch stores ``pbkdf2_sha256$<iterations>$<salt b64>$<hash b64>`` and ingest-gps
checks a login against it. A value without that prefix is a legacy clear-text row (written straight into
the table) and is compared in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

__all__ = ["PASSWORD_SCHEME", "hash_password", "is_password_hash", "verify_password"]

PASSWORD_SCHEME = "pbkdf2_sha256"
#: ~15 ms per check on one busy core: logins are rare, and a refused one must not stall the event loop long
_ITERATIONS = 20_000


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, iterations: int = _ITERATIONS, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return f"{PASSWORD_SCHEME}${iterations}${_b64(salt)}${_b64(digest)}"


def is_password_hash(stored: str) -> bool:
    return stored.startswith(PASSWORD_SCHEME + "$")


def verify_password(stored: str, given: str) -> bool:
    """True when ``given`` is the password ``stored`` was made from (hash, or legacy clear text)."""
    if not is_password_hash(stored):
        return hmac.compare_digest(stored.encode("utf-8"), given.encode("utf-8"))
    try:
        _, iterations, salt, digest = stored.split("$")
        want = _unb64(digest)
        got = hashlib.pbkdf2_hmac("sha256", given.encode("utf-8"), _unb64(salt), int(iterations))
    except ValueError:  # a malformed hash matches nothing
        return False
    return hmac.compare_digest(want, got)
