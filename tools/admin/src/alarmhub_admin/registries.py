"""CSV import and export of the registries, the people and the external hand-off units.

Rows are parsed by the same code as dispatch's ``POST /api/v1/registry/{kind}/import``
(``alarmhub_dispatch.registry``) for accounts, vehicles, cameras and platforms, so a file the API takes
the tool takes too; people and external units are described here. Every row is checked first and each
bad row reported with its line number (as a spreadsheet shows it); nothing is written while a row is
bad unless ``--skip-bad-rows`` is given. Rows are upserted on their key in batches of 1,000, each
batch one transaction, and the services that cache a registry are told through the same
``pg_notify('alarmhub_registry', <table>)`` as the API uses.

Export writes the same columns back **without secrets**: DC-09 keys, terminal auth codes, camera and
platform passwords, JT/T 809 encryption keys and people's password hashes are never exported (an
exported platform file needs its passwords filled in again before it can be imported).
"""

from __future__ import annotations

import csv
import io
import json
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alarmhub_dispatch.registry import KINDS as API_KINDS
from alarmhub_events import AlarmKind
from argon2 import PasswordHasher

__all__ = ["EXPORTS", "IMPORTS", "RowKind", "generated_password", "parse_rows"]

REGISTRY_CHANNEL = "alarmhub_registry"  # the channel dispatch's API notifies (alarmhub_dispatch.api)
_HASHER = PasswordHasher()  # argon2id, RFC 9106 second recommendation: what dispatch's login verifies
_ROLES = ("dispatcher", "supervisor", "department", "alarm_company")


def generated_password(n: int = 16) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _person_row(b: dict[str, Any]) -> dict[str, Any]:
    user = str(b.get("user") or b.get("user_name") or "").strip()
    if (
        not user
        or len(user) > 64
        or any(c not in string.ascii_letters + string.digits + "._@-" for c in user)
    ):
        raise ValueError("user is 1-64 of A-Z a-z 0-9 . _ @ -")
    role = str(b.get("role") or "").strip()
    if role not in _ROLES:
        raise ValueError(f"role is one of {', '.join(_ROLES)}")
    unit = b.get("unit") or None
    company = b.get("company") or None
    if role == "alarm_company" and (company is None or unit is not None):
        raise ValueError("an alarm_company person names a company and no unit")
    if role != "alarm_company" and (unit is None or company is not None):
        raise ValueError(f"a {role} names a unit and no company")
    password = b.get("password")
    if password is not None and (len(password) < 12 or password.lower() == user.lower()):
        raise ValueError("a password has at least 12 characters and is not the user name")
    scope: dict[str, list[str]] = {}
    for k in ("districts", "kinds"):
        if b.get(k):
            scope[k] = [x for x in str(b[k]).replace(",", ";").split(";") if x.strip()]
    return {
        "user_name": user,
        "display_name": b.get("display_name") or None,
        "role": role,
        "unit": unit,
        "company": company,
        "scope": scope,
        "password": password,  # hashed by the importer; None → one is generated
    }


def _external_row(b: dict[str, Any]) -> dict[str, Any]:
    uid = str(b.get("id") or "").strip()
    if not uid:
        raise ValueError("id is required")
    kind = str(b.get("kind") or "").strip()
    if not kind or kind == "police":
        raise ValueError("kind names the agency (fire, medical, rescue, traffic…), not police")
    handover = [x.strip() for x in str(b.get("handover") or kind).replace(",", ";").split(";") if x.strip()]
    known = {k.value for k in AlarmKind}
    bad = [h for h in handover if h not in known]
    if bad:
        raise ValueError(
            f"unknown alarm kinds in handover: {', '.join(bad)} (known: {', '.join(sorted(known))})"
        )
    props: dict[str, Any] = {"handover": handover}
    for k in ("phone", "address", "note"):
        if b.get(k):
            props[k] = str(b[k])
    return {
        "id": uid,
        "name": str(b.get("name") or uid),
        "name_en": b.get("name_en") or None,
        "tier": 1,
        "parent_id": None,
        "kind": kind,
        "synthetic": False,
        "geometry": None,
        "properties": props,
    }


@dataclass(frozen=True)
class RowKind:
    """How one kind of file maps to a table."""

    table: str
    key: tuple[str, ...]
    to_row: Callable[[dict[str, Any]], dict[str, Any]]
    updated_at: bool = True


IMPORTS: dict[str, RowKind] = {
    **{name: RowKind(k.table, k.key, k.to_row) for name, k in API_KINDS.items()},
    "people": RowKind("people", ("user_name",), _person_row, updated_at=False),
    "external-units": RowKind("units", ("id",), _external_row, updated_at=False),
}

_NO_USERINFO = "regexp_replace({0}, '^([a-z]+://)[^/@]*@', '\\1')"
# (SELECT list, ORDER BY) of each export: every column the import reads back (so an export re-imported
# changes nothing), and secrets are simply not selected
EXPORTS: dict[str, tuple[str, str]] = {
    "accounts": (
        "line, account, company, encryption_required, supervision_s, site_name, site_address, lat, lon,"
        " zones, contacts, unit",
        "company, line, account",
    ),
    "vehicles": (
        "device_id, protocol, plate, plate_colour, description, model, owner, contact, armed, unit",
        "device_id",
    ),
    # a URL's user:password@ is a secret too (the API refuses it in stream_url, not in onvif_url)
    "cameras": (
        "id, name, type, lat, lon, ip, mac, channel, unit, network, category,"
        f" {_NO_USERINFO.format('onvif_url')} AS onvif_url, {_NO_USERINFO.format('stream_url')} AS stream_url,"
        " username, integrator",
        "id",
    ),
    "platforms": ("user_id, gnss_center_id, name, allowed, disabled", "user_id"),
    "people": (
        "user_name AS user, display_name, role, unit, company, scope->'districts' AS districts,"
        " scope->'kinds' AS kinds, active",
        "user_name",
    ),
    "external-units": (
        "id, name, name_en, kind, properties->'handover' AS handover, properties->>'phone' AS phone",
        "id",
    ),
}
_EXPORT_WHERE = {"external-units": "WHERE parent_id IS NULL AND kind <> 'police'"}


def parse_rows(text: str) -> list[tuple[int, dict[str, str]]]:
    """CSV with a header → (line number, cells) with empty cells dropped."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    out = []
    for i, r in enumerate(reader, start=2):
        out.append(
            (i, {k.strip(): v.strip() for k, v in r.items() if k and isinstance(v, str) and v.strip()})
        )
    return out


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def export_sql(kind: str) -> str:
    cols, order = EXPORTS[kind]
    table = IMPORTS[kind].table
    return f"SELECT {cols} FROM {table} {_EXPORT_WHERE.get(kind, '')} ORDER BY {order}"


def cell(v: Any) -> str:
    """A value as a CSV cell: lists as ``a;b``, objects as JSON, None as empty."""
    if v is None:
        return ""
    if isinstance(v, str) and v[:1] in "[{":
        try:
            v = json.loads(v)
        except ValueError:
            return v
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return ";".join(v)
    if isinstance(v, dict | list):
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
