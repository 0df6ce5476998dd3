"""Per-person accounts behind the bearer tokens: passwords (argon2id), login, logout, and their management.

- A person has a user name, a role and a unit (or an alarm company) and signs in with a password;
  ``POST /api/v1/login`` issues a bearer token carrying exactly that person, role, unit and scope, for
  ``ALARMHUB_LOGIN_TTL_S`` (default 8 h: one shift). Only the token's SHA-256 is stored, as for minted tokens.
- Passwords are hashed with **argon2id** (argon2-cffi, RFC 9106 "second recommended" parameters:
  64 MiB, 3 passes, 4 lanes), in a worker thread so a login never stalls the event loop. At least 12
  characters, not the user name.
- ``MAX_FAILED`` wrong passwords in a row lock the account for ``LOCK_S``; the answer to a wrong user
  and a wrong password is the same 401 (and takes as long: an unknown user is checked against a dummy
  hash). Locked: 429 with ``Retry-After``.
- Supervisors create people for their unit or below (the city tier for alarm companies), reset their
  passwords and disable them; either revokes every token the person holds. A person changes their own
  password with the current one.
- Every login, failed login and logout lands in the audit log (``audit.py`` records the rest).

The routes are ``routes/people.py``; the SQL is ``store/people.py``'s.
"""

from __future__ import annotations

from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from pydantic import BaseModel, Field

from .errors import Invalid

__all__ = [
    "DUMMY_HASH",
    "LOCK_S",
    "LOGIN_TTL_S",
    "MAX_FAILED",
    "LoginRequest",
    "PasswordChange",
    "PersonRequest",
    "check_policy",
    "hash_password",
    "person_out",
    "verify_password",
]

MAX_FAILED = 5
LOCK_S = 900
LOGIN_TTL_S = 8 * 3600
_HASHER = PasswordHasher()  # argon2id, m=64 MiB, t=3, p=4 (RFC 9106 second recommendation)
DUMMY_HASH = _HASHER.hash("alarmhub-dummy-password")
USER_PATTERN = r"^[A-Za-z0-9._@-]{1,64}$"


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored: str, given: str) -> bool:
    try:
        return _HASHER.verify(stored, given)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def check_policy(user: str, password: str) -> None:
    if len(password) < 12 or password.strip().lower() == user.lower():
        raise Invalid("a password has at least 12 characters and is not the user name")


class LoginRequest(BaseModel):
    user: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    otp: str | None = Field(
        default=None, max_length=8, description="the authenticator's 6-digit code (the second factor)"
    )
    recovery_code: str | None = Field(
        default=None, max_length=16, description="instead of otp: one of the one-time recovery codes"
    )


class PersonRequest(BaseModel):
    user: str = Field(pattern=USER_PATTERN)
    display_name: str | None = Field(default=None, max_length=128)
    password: str = Field(min_length=12, max_length=256)
    role: Literal["dispatcher", "supervisor", "department", "alarm_company"]
    unit: str | None = None
    company: str | None = Field(default=None, max_length=128)
    scope: dict[str, list[str]] = Field(default_factory=dict)


class PasswordChange(BaseModel):
    new_password: str = Field(min_length=12, max_length=256)
    current_password: str | None = Field(default=None, max_length=256)


def person_out(r: dict[str, Any]) -> dict[str, Any]:
    out = {
        "user": r["user_name"],
        "display_name": r.get("display_name"),
        "role": r["role"],
        "unit": r.get("unit"),
        "company": r.get("company"),
        "active": r.get("active", True),
    }
    for k in ("last_login_at", "locked_until"):
        if r.get(k) is not None:
            out[k] = r[k].isoformat()
    return out
