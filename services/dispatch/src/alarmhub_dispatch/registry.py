"""The registries (accounts, vehicles, cameras, platforms): request bodies ↔ table rows (pure).

The ingest services read these tables directly; dispatch owns writing them through the API. Each
kind is described once here — its key, its columns, how a JSON body or a CSV row maps onto them — so
GET/POST/PUT/DELETE and CSV import share one code path.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from alarmhub_events import Sensor
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyAddress,
    ValidationError,
    field_validator,
    model_validator,
)

from .geo import gcj02_to_wgs84
from .platforms import platform_out, platform_row

__all__ = [
    "KINDS",
    "WATCHED_PROTOCOLS",
    "AccountIn",
    "CameraIn",
    "Kind",
    "SiteIn",
    "VehicleIn",
    "ZoneIn",
    "normalize_line",
    "parse_csv",
    "validation_detail",
]


def normalize_line(line: Any) -> str:
    """``L0``, ``l000``, ``0`` and empty all name line 0 (the same rule as ingest-contactid's registry)."""
    text = str(line or "").strip().upper()
    text = text.removeprefix("L")
    return text.lstrip("0") or "0"


def _json(v: Any, default: Any) -> Any:
    if v in (None, ""):
        return default
    return json.loads(v) if isinstance(v, str) else v


_HEX_KEY = r"^([0-9A-Fa-f]{32}|[0-9A-Fa-f]{48}|[0-9A-Fa-f]{64})?$"
_UNIT = Field(default=None, min_length=1, max_length=64, description="the responsible unit (scopes access)")
#: the plan's camera categories (ingest-camera's registry holds the same list for its CSV import)
CAMERA_CATEGORIES = frozenset(
    "city_checkpoint district_boundary street_boundary main_road market public_place key_facility"
    " residential_estate internal_unit".split()
)


class _In(BaseModel):
    """A registry record as written (JSON body or CSV row). Secrets are write-only: omitted → kept as they
    are, ``""`` → removed; reads say only whether one is set."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class ZoneIn(BaseModel):
    """One zone of a panel: its name and its detector's sensing principle (``alarmhub_events.Sensor``)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    name: str | None = Field(default=None, max_length=200)
    sensor: Sensor | None = Field(default=None, description="pir, microwave, contact, glass, video…")

    @field_validator("sensor", mode="before")
    @classmethod
    def _sensor_lower(cls, v: Any) -> Any:
        return v.strip().lower() or None if isinstance(v, str) else v


class SiteIn(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    name: str | None = Field(default=None, max_length=200)
    address: str | None = Field(default=None, max_length=500)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    crs: Literal["WGS84", "GCJ02", "WGS-84", "GCJ-02", "wgs84", "gcj02"] = "WGS84"
    zones: dict[str, str | ZoneIn] = Field(
        default_factory=dict,
        max_length=1000,
        description="the panel's zones by number: a name, or {name, sensor} with the detector's sensing "
        "principle (ingest-contactid writes it as attributes.sensor; triage's different-principles rule "
        "reads it); the list form [{zone, name, sensor}] is taken too",
    )

    @field_validator("zones", mode="before")
    @classmethod
    def _zones_json(cls, v: Any) -> Any:
        v = _json(v, {})
        if isinstance(v, list):  # [{"zone": "1", "name": "hall", "sensor": "pir"}], as ingest-contactid reads
            return {
                str(z.get("zone") or z.get("id")): z
                for z in v
                if isinstance(z, dict) and (z.get("zone") or z.get("id"))
            }
        return v

    def zones_row(self) -> dict[str, Any]:
        """The zones as the ``accounts.zones`` column holds them (ingest-contactid's registry reads it)."""
        return {
            k: z if isinstance(z, str) else z.model_dump(mode="json", exclude_none=True)
            for k, z in self.zones.items()
        }


class AccountIn(_In):
    """A DC-09 account of an alarm company: ``line`` + ``account`` is its key."""

    line: str = Field(default="0", max_length=8, pattern=r"^[Ll]?[0-9A-Fa-f]{0,6}$")
    account: str = Field(min_length=1, max_length=16, pattern=r"^[0-9A-Fa-f]+$")
    company: str = Field(min_length=1, max_length=64)
    key_hex: str | None = Field(
        default=None, pattern=_HEX_KEY, description="AES key, 32/48/64 hex; write-only ('' removes it)"
    )
    encryption_required: bool = False
    supervision_s: int | None = Field(default=None, gt=0, le=7 * 86400)
    site: SiteIn = Field(default_factory=SiteIn)
    contacts: list[dict[str, Any]] = Field(default_factory=list, max_length=50)
    unit: str | None = _UNIT

    @model_validator(mode="before")
    @classmethod
    def _flat_site(cls, b: Any) -> Any:
        """CSV rows (and older clients) give the site flat: site_name, address, lat, lon, zones, crs."""
        if not isinstance(b, dict):
            return b
        site = dict(b.get("site") or {})
        for k in ("name", "address", "lat", "lon", "zones", "crs"):
            if k not in site and (f"site_{k}" in b or (k != "name" and k in b)):
                site[k] = b.get(f"site_{k}", b.get(k))
        return {**b, "site": site, "contacts": _json(b.get("contacts"), [])}


#: protocols whose terminal talks to ingest-gps itself: its armed-vehicle watch sees their ignition and fixes.
#: A vehicle reported by its transport company's platform over JT/T 809 is not watched.
WATCHED_PROTOCOLS = frozenset({"jt808", "gt06", "h02"})


class VehicleIn(_In):
    """A GPS terminal (JT/T 808, GT06, H02) or a vehicle reported over JT/T 809."""

    device_id: str = Field(min_length=1, max_length=32)
    protocol: str = Field(min_length=1, max_length=16, pattern=r"^[a-z0-9-]+$")
    plate: str | None = Field(default=None, max_length=16)
    plate_colour: int | None = Field(default=None, ge=0, le=255)
    description: str | None = Field(default=None, max_length=500)
    model: str | None = Field(
        default=None,
        max_length=32,
        description="terminal model (ingest-gps's cut-off table, e.g. GT06, JT808)",
    )
    owner: str | None = Field(default=None, max_length=128)
    contact: str | None = Field(default=None, max_length=128)
    armed: bool = Field(default=False, description="watched while armed: jt808, gt06 and h02 vehicles only")
    auth_code: str | None = Field(
        default=None, max_length=64, description="JT/T 808 auth code; write-only ('' removes it)"
    )
    unit: str | None = _UNIT

    @model_validator(mode="after")
    def _watched(self) -> VehicleIn:
        if self.armed and self.protocol not in WATCHED_PROTOCOLS:
            raise ValueError(
                f"armed: a {self.protocol} vehicle cannot be armed, only a tracker on the gateway "
                f"({', '.join(sorted(WATCHED_PROTOCOLS))}) is watched while armed"
            )
        return self


class CameraIn(_In):
    id: str = Field(min_length=1, max_length=64)
    name: str | None = Field(default=None, max_length=200)
    type: str | None = Field(default=None, max_length=32)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    crs: Literal["WGS84", "GCJ02", "WGS-84", "GCJ-02", "wgs84", "gcj02"] = "WGS84"
    ip: IPvAnyAddress | None = None
    mac: str | None = Field(default=None, pattern=r"^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$")
    channel: int | None = Field(default=None, ge=0, le=65535)
    network: Literal["police_video", "social_video"] | None = None
    category: str | None = Field(default=None, description="one of CAMERA_CATEGORIES")
    onvif_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://")
    stream_url: str | None = Field(
        default=None,
        max_length=2000,
        description="the live stream, rtsp:// (as the camera, its ONVIF GetStreamUri or ISAPI channel gives it); "
        "credentials go in username/password",
    )
    username: str | None = Field(default=None, max_length=64)
    password: str | None = Field(default=None, max_length=128, description="write-only ('' removes it)")
    integrator: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="the webhook integrator (a name of ALARMHUB_WEBHOOK_SECRETS) whose signature may push "
        "events for this camera; no other may (docs/security.md)",
    )
    unit: str | None = _UNIT

    @field_validator("category")
    @classmethod
    def _category_known(cls, v: str | None) -> str | None:
        if v is not None and v not in CAMERA_CATEGORIES:
            raise ValueError(f"category must be one of {', '.join(sorted(CAMERA_CATEGORIES))}")
        return v

    @field_validator("stream_url")
    @classmethod
    def _stream_url(cls, v: str | None) -> str | None:
        if not v:
            return None
        parts = urlsplit(v.strip())
        if parts.scheme not in ("rtsp", "rtsps", "http", "https") or not parts.hostname:
            raise ValueError("stream_url is an rtsp:// (or http(s)://) URL")
        if parts.username or parts.password:
            raise ValueError("put the camera's credentials in username/password, not in stream_url")
        return v.strip()


def _secret(row: dict[str, Any], column: str, value: str | None) -> None:
    """Write-only secrets: absent → the column is left out (kept on update), ``""`` → removed."""
    if value is not None:
        row[column] = value or None


def _latlon(lat: float | None, lon: float | None, crs: str) -> tuple[float | None, float | None]:
    if (lat is None) != (lon is None):
        raise ValueError("lat and lon go together")
    if lat is not None and lon is not None and crs.upper().replace("-", "") == "GCJ02":
        lon, lat = gcj02_to_wgs84(lon, lat)
    return lat, lon


def _account_row(b: dict[str, Any]) -> dict[str, Any]:
    a = AccountIn.model_validate(b)
    lat, lon = _latlon(a.site.lat, a.site.lon, a.site.crs)
    row = {
        "line": normalize_line(a.line),
        "account": a.account.upper(),
        "company": a.company,
        "encryption_required": a.encryption_required,
        "supervision_s": a.supervision_s,
        "site_name": a.site.name,
        "site_address": a.site.address,
        "lat": lat,
        "lon": lon,
        "zones": a.site.zones_row(),
        "contacts": a.contacts,
        "unit": a.unit,
    }
    _secret(row, "key_hex", a.key_hex)
    return row


def _account_out(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"L{r['line']}#{r['account']}",
        "line": f"L{r['line']}",
        "account": r["account"],
        "company": r["company"],
        "key_set": bool(r.get("key_hex")),
        "encryption_required": r["encryption_required"],
        "supervision_s": r["supervision_s"],
        "contacts": r["contacts"],
        "unit": r.get("unit"),
        "site": {
            "name": r["site_name"],
            "address": r["site_address"],
            "lat": r["lat"],
            "lon": r["lon"],
            "zones": r["zones"],
        },
    }


def _account_key(id_: str) -> tuple[Any, ...]:
    for sep in ("#", ":"):
        if sep in id_:
            line, acct = id_.split(sep, 1)
            return normalize_line(line), acct.strip().upper()
    raise ValueError("account id is 'L<line>#<account>' or '<line>:<account>'")


def _vehicle_row(b: dict[str, Any]) -> dict[str, Any]:
    v = VehicleIn.model_validate(b)
    row = v.model_dump(exclude={"auth_code"})
    _secret(row, "auth_code", v.auth_code)
    return row


def _vehicle_out(r: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in r.items() if k not in ("auth_code", "created_at", "updated_at")}
    out["auth_code_set"] = bool(r.get("auth_code"))
    return out


def _camera_row(b: dict[str, Any]) -> dict[str, Any]:
    c = CameraIn.model_validate(b)
    lat, lon = _latlon(c.lat, c.lon, c.crs)
    row = {
        **c.model_dump(exclude={"password", "crs", "ip", "mac", "lat", "lon"}),
        "name": c.name or c.id,
        "lat": lat,
        "lon": lon,
        "ip": str(c.ip) if c.ip is not None else None,
        "mac": c.mac.lower().replace("-", ":") if c.mac else None,
    }
    _secret(row, "password", c.password)
    return row


def _camera_out(r: dict[str, Any]) -> dict[str, Any]:
    hidden = ("password", "intake_token_sha256", "created_at", "updated_at")
    out = {k: v for k, v in r.items() if k not in hidden}
    out["password_set"] = bool(r.get("password"))
    out["intake_token_set"] = bool(r.get("intake_token_sha256"))
    return out


@dataclass(frozen=True)
class Kind:
    table: str
    key: tuple[str, ...]
    to_row: Callable[[dict[str, Any]], dict[str, Any]]
    to_out: Callable[[dict[str, Any]], dict[str, Any]]
    parse_id: Callable[[str], tuple[Any, ...]]
    #: rows carry a ``unit``: reads and writes are scoped to the caller's subtree; without one (platforms)
    #: only the city tier writes
    scoped: bool = True


KINDS: dict[str, Kind] = {
    "accounts": Kind("accounts", ("line", "account"), _account_row, _account_out, _account_key),
    "vehicles": Kind("vehicles", ("device_id",), _vehicle_row, _vehicle_out, lambda s: (s,)),
    "cameras": Kind("cameras", ("id",), _camera_row, _camera_out, lambda s: (s,)),
    # platforms have their own routes (platforms.py); the CSV import goes through here, password hashed
    "platforms": Kind(
        "platforms", ("user_id",), platform_row, platform_out, lambda s: (int(s),), scoped=False
    ),
}


def validation_detail(exc: ValidationError) -> list[dict[str, Any]]:
    """A model's refusal as FastAPI words it (``loc`` naming the field), for the CSV import's lines."""
    return [
        {"loc": [str(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors()[:20]
    ]


def parse_csv(text: str, limit: int = 100_000) -> list[dict[str, Any]]:
    """CSV with a header row → dicts (empty cells dropped); at most ``limit`` rows."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    rows = []
    for i, r in enumerate(reader):
        if i >= limit:
            raise ValueError(f"more than {limit} rows")
        rows.append({k.strip(): v.strip() for k, v in r.items() if k and v is not None and v.strip() != ""})
    return rows
