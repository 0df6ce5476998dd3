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
from typing import Any

from .geo import gcj02_to_wgs84
from .platforms import platform_out, platform_row

__all__ = ["KINDS", "Kind", "normalize_line", "parse_csv"]


def normalize_line(line: Any) -> str:
    """``L0``, ``l000``, ``0`` and empty all name line 0 (the same rule as ingest-contactid's registry)."""
    text = str(line or "").strip().upper()
    text = text.removeprefix("L")
    return text.lstrip("0") or "0"


def _opt_float(v: Any) -> float | None:
    return None if v in (None, "") else float(v)


def _opt_int(v: Any) -> int | None:
    return None if v in (None, "") else int(v)


def _bool(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes", "y")
    return bool(v)


def _json(v: Any, default: Any) -> Any:
    if v in (None, ""):
        return default
    return json.loads(v) if isinstance(v, str) else v


def _latlon(body: dict[str, Any]) -> tuple[float | None, float | None]:
    lat, lon = _opt_float(body.get("lat")), _opt_float(body.get("lon"))
    if (
        lat is not None
        and lon is not None
        and str(body.get("crs", "WGS84")).upper().replace("-", "") == "GCJ02"
    ):
        lon, lat = gcj02_to_wgs84(lon, lat)
    for v, lo, hi in ((lat, -90, 90), (lon, -180, 180)):
        if v is not None and not lo <= v <= hi:
            raise ValueError("lat/lon out of range")
    return lat, lon


def _account_row(b: dict[str, Any]) -> dict[str, Any]:
    site = dict(b.get("site") or {})
    for k in ("name", "address", "lat", "lon", "zones", "crs"):  # flat CSV columns: site_name, lat, …
        if k not in site and (f"site_{k}" in b or k in b):
            site[k] = b.get(f"site_{k}", b.get(k))
    lat, lon = _latlon(site)
    account = str(b["account"]).strip().upper()
    if not account:
        raise ValueError("account is required")
    return {
        "line": normalize_line(b.get("line")),
        "account": account,
        "company": str(b["company"]),
        "key_hex": (b.get("key_hex") or None),
        "encryption_required": _bool(b.get("encryption_required", False)),
        "supervision_s": _opt_int(b.get("supervision_s")),
        "site_name": site.get("name"),
        "site_address": site.get("address"),
        "lat": lat,
        "lon": lon,
        "zones": _json(site.get("zones"), {}),
        "contacts": _json(b.get("contacts"), []),
    }


def _account_out(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"L{r['line']}#{r['account']}",
        "line": f"L{r['line']}",
        "account": r["account"],
        "company": r["company"],
        "key_hex": r["key_hex"],
        "encryption_required": r["encryption_required"],
        "supervision_s": r["supervision_s"],
        "contacts": r["contacts"],
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
    return {
        "device_id": str(b["device_id"]).strip(),
        "protocol": str(b["protocol"]),
        "plate": b.get("plate") or None,
        "plate_colour": _opt_int(b.get("plate_colour")),
        "description": b.get("description") or None,
        "owner": b.get("owner") or None,
        "contact": b.get("contact") or None,
        "armed": _bool(b.get("armed", False)),
        "auth_code": b.get("auth_code") or None,
    }


def _camera_row(b: dict[str, Any]) -> dict[str, Any]:
    lat, lon = _latlon(b)
    network = b.get("network") or None
    if network not in (None, "police_video", "social_video"):
        raise ValueError("network is police_video or social_video")
    return {
        "id": str(b["id"]).strip(),
        "name": str(b.get("name") or b["id"]),
        "type": b.get("type") or None,
        "lat": lat,
        "lon": lon,
        "ip": b.get("ip") or None,
        "mac": b.get("mac") or None,
        "channel": _opt_int(b.get("channel")),
        "unit": b.get("unit") or None,
        "network": network,
        "category": b.get("category") or None,
        "onvif_url": b.get("onvif_url") or None,
        "username": b.get("username") or None,
        "password": b.get("password") or None,
    }


def _camera_out(r: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in r.items() if k not in ("password", "created_at", "updated_at")}
    return out


def _plain_out(r: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in r.items() if k not in ("created_at", "updated_at")}


@dataclass(frozen=True)
class Kind:
    table: str
    key: tuple[str, ...]
    to_row: Callable[[dict[str, Any]], dict[str, Any]]
    to_out: Callable[[dict[str, Any]], dict[str, Any]]
    parse_id: Callable[[str], tuple[Any, ...]]


KINDS: dict[str, Kind] = {
    "accounts": Kind("accounts", ("line", "account"), _account_row, _account_out, _account_key),
    "vehicles": Kind("vehicles", ("device_id",), _vehicle_row, _plain_out, lambda s: (s,)),
    "cameras": Kind("cameras", ("id",), _camera_row, _camera_out, lambda s: (s,)),
    # platforms have their own routes (platforms.py); the CSV import goes through here, password hashed
    "platforms": Kind("platforms", ("user_id",), platform_row, platform_out, lambda s: (int(s),)),
}


def parse_csv(text: str, limit: int = 100_000) -> list[dict[str, Any]]:
    """CSV with a header row → dicts (empty cells dropped); at most ``limit`` rows."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    rows = []
    for i, r in enumerate(reader):
        if i >= limit:
            raise ValueError(f"more than {limit} rows")
        rows.append({k.strip(): v.strip() for k, v in r.items() if k and v is not None and v.strip() != ""})
    return rows
