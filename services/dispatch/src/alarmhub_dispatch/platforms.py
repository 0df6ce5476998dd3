"""The registry of JT/T 809 lower-level platforms, managed by supervisors through the API
(``routes/platforms.py``; the SQL is ``store/registry.py``'s).

ingest-gps reads the ``platforms`` table (every ``ALARMHUB_JT809_PLATFORMS_REFRESH_S``): it checks
logins against it and closes the link of a platform that is disabled or deleted. What this module
guarantees about the rows it writes:

- the password (at most 8 bytes in GBK: the 0x1001 field) is stored as a PBKDF2-SHA256 hash and never
  returned; JT/T 809 sends it in clear at login, so alarmhub never needs it back;
- the cipher constants M1/IA1/IC1 are stored as the standard needs them (numbers: ingest-gps decrypts
  with them) and are never returned either, only whether they are set;
- ``link_status`` / ``link_changed_at`` are written by ingest-gps only: read-only here;
- a GNSS centre id belongs to one platform (an encrypted login is decrypted with the keys of the
  platform registered under the header's centre id).
"""

from __future__ import annotations

import ipaddress
import json
from datetime import datetime
from typing import Any

from alarmhub_store import hash_password, is_password_hash
from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "PlatformAllowed",
    "PlatformCreate",
    "PlatformKeys",
    "PlatformOut",
    "PlatformUpdate",
    "platform_out",
    "platform_row",
    "table_row",
]

_U32 = 0xFFFFFFFF


def _password(v: str) -> str:
    raw = v.encode("gbk", errors="strict")
    if not 1 <= len(raw) <= 8 or b"\x00" in raw or v != v.strip():
        raise ValueError("a JT/T 809 password is 1-8 bytes (GBK), without NUL or surrounding blanks")
    return v


class PlatformKeys(BaseModel):
    """The standard's stream-cipher constants for this platform's encrypted frames."""

    model_config = ConfigDict(extra="forbid")
    m1: int = Field(ge=0, le=_U32)
    ia1: int = Field(ge=0, le=_U32)
    ic1: int = Field(ge=0, le=_U32)


class PlatformAllowed(BaseModel):
    """What the platform may do: forward only these vehicles / this region, log in only from these networks."""

    model_config = ConfigDict(extra="forbid")
    plates: list[str] | None = Field(
        default=None, max_length=100_000, description="plates or plate:colour; null = any vehicle"
    )
    plate_prefixes: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="region: plates starting with one of these (粤B = Shenzhen)",
    )
    ips: list[str] = Field(
        default_factory=list, max_length=1000, description="CIDRs the main link may come from"
    )

    @field_validator("ips")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        return [str(ipaddress.ip_network(x, strict=False)) for x in v]


class PlatformCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: int = Field(ge=1, le=0xFFFFFFFF, description="the 0x1001 USERID")
    password: str = Field(description="the 0x1001 PASSWORD (stored hashed, never returned)")
    gnss_center_id: int = Field(ge=0, le=_U32, description="the header's MSG_GNSSCENTERID (access code)")
    name: str | None = Field(default=None, max_length=200, description="shown as source.platform")
    encrypt: PlatformKeys | None = None
    allowed: PlatformAllowed = Field(default_factory=PlatformAllowed)
    disabled: bool = False

    _pw = field_validator("password")(_password)


class PlatformUpdate(BaseModel):
    """Only the fields present change; ``encrypt: null`` removes the keys. The link status is not writable."""

    model_config = ConfigDict(extra="forbid")
    password: str | None = None
    gnss_center_id: int | None = Field(default=None, ge=0, le=_U32)
    name: str | None = Field(default=None, max_length=200)
    encrypt: PlatformKeys | None = None
    allowed: PlatformAllowed | None = None
    disabled: bool | None = None

    @field_validator("password")
    @classmethod
    def _pw(cls, v: str | None) -> str | None:
        return None if v is None else _password(v)


class PlatformOut(BaseModel):
    user_id: int
    gnss_center_id: int
    name: str | None
    encrypt_configured: bool = Field(description="M1/IA1/IC1 are set (their values are never returned)")
    password_hashed: bool = Field(
        description="false for a legacy clear-text row written outside the API: rotate it"
    )
    allowed: PlatformAllowed
    disabled: bool
    link_status: str = Field(description="written by ingest-gps: down, up, up+slave")
    link_changed_at: datetime | None
    created_at: datetime | None = None
    updated_at: datetime | None = None


def platform_row(b: dict[str, Any]) -> dict[str, Any]:
    """A CSV row or JSON body → a table row (password hashed; keys as flat m1/ia1/ic1 columns or ``encrypt``)."""
    enc = b.get("encrypt")
    if isinstance(enc, str):
        enc = json.loads(enc) if enc else None
    if enc is None and any(b.get(k) not in (None, "") for k in ("m1", "ia1", "ic1")):
        enc = {k: b.get(k) for k in ("m1", "ia1", "ic1")}
    allowed = b.get("allowed")
    if isinstance(allowed, str):
        allowed = json.loads(allowed) if allowed else {}
    if allowed is None:
        allowed = {}
        if b.get("plates"):
            allowed["plates"] = [x for x in str(b["plates"]).replace(";", " ").split() if x]
        if b.get("plate_prefixes"):
            allowed["plate_prefixes"] = [x for x in str(b["plate_prefixes"]).replace(";", " ").split() if x]
        if b.get("ips"):
            allowed["ips"] = [x for x in str(b["ips"]).replace(";", " ").split() if x]
    disabled = b.get("disabled", False)
    if isinstance(disabled, str):
        disabled = disabled.strip().lower() in ("1", "true", "yes", "y")
    p = PlatformCreate(
        user_id=int(b["user_id"]),
        password=str(b["password"]),
        gnss_center_id=int(b["gnss_center_id"]),
        name=b.get("name") or None,
        encrypt=PlatformKeys(**{k: int(v) for k, v in enc.items() if k in ("m1", "ia1", "ic1")})
        if enc
        else None,
        allowed=PlatformAllowed(**allowed),
        disabled=bool(disabled),
    )
    return table_row(p)


def table_row(p: PlatformCreate) -> dict[str, Any]:
    return {
        "user_id": p.user_id,
        "password": hash_password(p.password),
        "gnss_center_id": p.gnss_center_id,
        "name": p.name,
        "encrypt": p.encrypt.model_dump() if p.encrypt else None,
        "allowed": p.allowed.model_dump(exclude_none=True),
        "disabled": p.disabled,
    }


def platform_out(r: dict[str, Any]) -> dict[str, Any]:
    allowed = r.get("allowed") or {}
    if isinstance(allowed, str):
        allowed = json.loads(allowed)
    enc = r.get("encrypt")
    if isinstance(enc, str):
        enc = json.loads(enc)
    return PlatformOut(
        user_id=r["user_id"],
        gnss_center_id=r["gnss_center_id"],
        name=r.get("name"),
        encrypt_configured=bool(enc and all(enc.get(k) is not None for k in ("m1", "ia1", "ic1"))),
        password_hashed=is_password_hash(str(r.get("password") or "")),
        allowed=PlatformAllowed(
            **{k: v for k, v in allowed.items() if k in ("plates", "plate_prefixes", "ips")}
        ),
        disabled=bool(r.get("disabled", False)),
        link_status=r.get("link_status") or "down",
        link_changed_at=r.get("link_changed_at"),
        created_at=r.get("created_at"),
        updated_at=r.get("updated_at"),
    ).model_dump(mode="json")
