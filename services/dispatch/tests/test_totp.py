"""The second factor's arithmetic (``alarmhub_dispatch.totp``) against RFC 6238 and a third-party library.

Sources: the test vectors are RFC 6238 appendix B's table (seeds "12345678901234567890" for SHA-1, its
32-byte extension for SHA-256 and 64-byte one for SHA-512; 8 digits, X = 30 s, T0 = 0); ``pyotp``
(PyPI, a test dependency) generates the codes and parses the ``otpauth://`` URI our server makes.
"""

from __future__ import annotations

import base64
import hashlib
import time

import pyotp
from alarmhub_dispatch import totp

SEEDS = {
    "SHA1": b"12345678901234567890",
    "SHA256": b"12345678901234567890123456789012",
    "SHA512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
# RFC 6238 appendix B: time (s) → TOTP for SHA1, SHA256, SHA512
APPENDIX_B = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]


def test_rfc6238_appendix_b_vectors_and_pyotp_agree() -> None:
    for t, *codes in APPENDIX_B:
        for algo, want in zip(SEEDS, codes, strict=True):
            assert totp.totp(SEEDS[algo], t, digits=8, algorithm=algo) == want, (t, algo)
            b32 = base64.b32encode(SEEDS[algo]).decode()
            assert pyotp.TOTP(b32, digits=8, digest=getattr(hashlib, algo.lower())).at(t) == want


def test_pyotp_codes_are_accepted_once_within_the_drift_window() -> None:
    secret = totp.new_secret()
    assert len(base64.b32decode(secret + "=" * (-len(secret) % 8))) == 20  # 160 bits (RFC 4226 §4)
    gen = pyotp.TOTP(secret)
    now = time.time()
    step = totp.verify(secret, gen.at(now), now, 0)
    assert step == int(now) // 30
    assert totp.verify(secret, gen.at(now), now, step) is None  # replay of a used code
    assert totp.verify(secret, gen.at(now - 30), now, 0) == step - 1  # one step of clock drift
    assert totp.verify(secret, gen.at(now + 30), now, step) == step + 1
    assert totp.verify(secret, gen.at(now - 90), now, 0) is None  # outside the window
    assert totp.verify(secret, "12345", now, 0) is None and totp.verify(secret, "abcdef", now, 0) is None


def test_the_otpauth_uri_is_what_authenticators_read() -> None:
    secret = totp.new_secret()
    parsed = pyotp.parse_uri(totp.otpauth_uri(secret, "wang.li@station-3", "alarmhub 深圳"))
    assert isinstance(parsed, pyotp.TOTP)
    assert parsed.secret == secret and parsed.name == "wang.li@station-3" and parsed.issuer == "alarmhub 深圳"
    assert parsed.digits == 6 and parsed.interval == 30


def test_recovery_codes_are_random_and_only_hashes_are_kept() -> None:
    codes, hashes = totp.new_recovery_codes()
    assert len(set(codes)) == 10 and all(len(c) == 11 and c[5] == "-" for c in codes)
    assert hashes == [hashlib.sha256(c.replace("-", "").encode()).hexdigest() for c in codes]
    assert totp.recovery_hash(codes[0].lower().replace("-", " ")) == hashes[0]  # as a person types it
