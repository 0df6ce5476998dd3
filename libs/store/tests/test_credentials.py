"""Platform passwords at rest: PBKDF2-SHA256 (RFC 8018), checked against the RFC 7914 §11 test vector."""

from __future__ import annotations

import base64

from alarmhub_store import hash_password, is_password_hash, verify_password


def test_pbkdf2_sha256_matches_the_rfc_7914_vector() -> None:
    # RFC 7914 §11: PBKDF2-HMAC-SHA256, P="passwd", S="salt", c=1, dkLen=64 (we keep the first 32 bytes)
    stored = hash_password("passwd", iterations=1, salt=b"salt")
    digest = base64.b64decode(stored.split("$")[3] + "=")
    assert digest.hex() == "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"


def test_hash_verify_and_legacy_clear_text() -> None:
    stored = hash_password("20180920")
    assert is_password_hash(stored) and stored != hash_password("20180920")  # salted
    assert verify_password(stored, "20180920") and not verify_password(stored, "20180921")
    assert verify_password("plain", "plain") and not verify_password("plain", "Plain")
    assert not verify_password("pbkdf2_sha256$broken", "x")
