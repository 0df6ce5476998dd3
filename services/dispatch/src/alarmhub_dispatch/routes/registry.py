"""``/registry/{kind}``: the registries (accounts, cameras, vehicles, …) — list, create, replace, delete and
CSV import. The JT/T 809 platforms have their own routes (``platforms.py``), registered first.

Who (docs/security.md): every record belongs to a unit (``unit``; none = the city's). Supervisors write
records of their own subtree, the city tier all of them; dispatchers and department tokens read their
subtree; alarm companies read their own accounts; vehicle owners nothing. A record outside the caller's
subtree does not exist for it (404). Secrets (AES keys, auth codes, camera passwords) are write-only:
reads say ``key_set``/``auth_code_set``/``password_set``. Bodies are typed per kind (``registry.AccountIn``,
``VehicleIn``, ``CameraIn``): a constraint violation is a 422 naming the field.
"""

# no "from __future__ import annotations": FastAPI resolves the dependency aliases at definition time

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from ..auth import Principal
from ..registry import KINDS, AccountIn, CameraIn, Kind, VehicleIn, parse_csv, validation_detail
from ..service import Dispatcher
from .deps import D, Who, manages, require_supervisor

__all__ = ["router"]

router = APIRouter()

#: the CSV import reads at most this much (the body is streamed and counted, not buffered first)
MAX_CSV_BYTES = 50 * 1024 * 1024


def _kind(kind: str) -> Kind:
    k = KINDS.get(kind)
    if k is None:
        raise HTTPException(404, "unknown registry")
    return k


def _key_body(kind: str, key: tuple[Any, ...]) -> dict[str, Any]:
    if kind == "accounts":
        return {"line": key[0], "account": key[1]}
    return {KINDS[kind].key[0]: key[0]}


def _is_city(d: Dispatcher, who: Principal) -> bool:
    return who.unit is not None and d.tree.is_root(who.unit)


def _readable_units(d: Dispatcher, who: Principal) -> list[str] | None:
    """None: every record (the city tier); else the units whose records the caller may read."""
    if who.unit is None:
        raise HTTPException(403, "no registry access")
    if _is_city(d, who):
        return None
    return sorted(d.tree.subtree(who.unit))


def _may_hold(d: Dispatcher, who: Principal, unit: str | None) -> bool:
    """Whether a supervisor may write (or see) a record of ``unit``."""
    if _is_city(d, who):
        return True
    return who.unit is not None and unit is not None and manages(d.tree, who.unit, unit)


def _row(k: Kind, kind: str, body: dict[str, Any], who: Principal, d: Dispatcher) -> dict[str, Any]:
    """A validated row; a supervisor below the city writes into its own unit unless it names one below."""
    if k.scoped and "unit" not in body and not _is_city(d, who):
        body = {**body, "unit": who.unit}
    row = k.to_row(body)
    if k.scoped and "unit" not in body:
        row.pop("unit", None)  # the city tier leaving the unit out keeps the stored one
    return row


async def _write(d: Dispatcher, who: Principal, k: Kind, rows: list[dict[str, Any]]) -> None:
    """Scope check (the new unit and the stored one), then upsert."""
    require_supervisor(who)
    if not k.scoped:
        if not _is_city(d, who):
            raise HTTPException(403, "only the city tier manages this registry")
        await d.store.registry.upsert(k, rows)
        return
    for r in rows:
        if "unit" in r and not _may_hold(d, who, r["unit"]):
            raise HTTPException(403, f"unit {r['unit']!r} is outside your unit")
    stored = await d.store.registry.units_of(k, [tuple(r[c] for c in k.key) for r in rows])
    for key, unit in stored.items():
        if not _may_hold(d, who, unit):
            raise HTTPException(404, f"no such record: {'#'.join(map(str, key))}")
    await d.store.registry.upsert(k, rows)


def _invalid(exc: Exception, kind: str) -> HTTPException:
    if isinstance(exc, ValidationError):
        return HTTPException(422, [{**e, "loc": ["body", *e["loc"]]} for e in validation_detail(exc)])
    return HTTPException(422, f"invalid {kind} record: {exc}")


@router.get("/registry/{kind}")
async def registry_list(
    who: Who,
    d: D,
    kind: str,
    limit: int = Query(1000, ge=1, le=100_000),
    offset: int = Query(0, ge=0),
) -> dict[str, Any]:
    k = _kind(kind)
    if who.role == "vehicle_owner":
        raise HTTPException(403, "vehicle owners have no registry access")
    if who.role == "alarm_company":
        if kind != "accounts":
            raise HTTPException(403, "alarm companies see only their accounts")
        rows = await d.store.registry.company_accounts(who.company, limit, offset)
    elif not k.scoped:
        if not _is_city(d, who):
            raise HTTPException(403, "only the city tier reads this registry")
        rows = await d.store.registry.page(k, limit, offset)
    else:
        rows = await d.store.registry.page(k, limit, offset, _readable_units(d, who))
    items = [k.to_out(r) for r in rows]
    return {"items": items, "count": len(items)}


async def _stored(d: Dispatcher, k: Kind, row: dict[str, Any]) -> dict[str, Any]:
    """The record as stored after a write (what was kept, e.g. whether a secret is set)."""
    stored = await d.store.registry.one(k, tuple(row[c] for c in k.key))
    return k.to_out(stored if stored is not None else row)


async def _create(who: Principal, d: Dispatcher, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    require_supervisor(who)
    k = _kind(kind)
    try:
        row = _row(k, kind, body, who, d)
    except (KeyError, ValueError, TypeError) as exc:
        raise _invalid(exc, kind) from None
    await _write(d, who, k, [row])
    return await _stored(d, k, row)


async def _replace(
    who: Principal, d: Dispatcher, kind: str, item_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    require_supervisor(who)
    k = _kind(kind)
    try:
        key = k.parse_id(item_id)
        row = _row(k, kind, {**body, **_key_body(kind, key)}, who, d)
    except (KeyError, ValueError, TypeError) as exc:
        raise _invalid(exc, kind) from None
    await _write(d, who, k, [row])
    return await _stored(d, k, row)


# Typed bodies per kind for POST (OpenAPI shows each model; FastAPI's 422 names the field), registered
# before the generic routes. PUT takes the key from the path, so its body is validated by the same model
# after the key is merged in (the 422 names the field the same way).
@router.post("/registry/accounts", status_code=201)
async def account_create(who: Who, d: D, body: AccountIn) -> dict[str, Any]:
    return await _create(who, d, "accounts", body.model_dump(exclude_unset=True))


@router.post("/registry/vehicles", status_code=201)
async def vehicle_create(who: Who, d: D, body: VehicleIn) -> dict[str, Any]:
    return await _create(who, d, "vehicles", body.model_dump(exclude_unset=True))


@router.post("/registry/cameras", status_code=201)
async def camera_create(who: Who, d: D, body: CameraIn) -> dict[str, Any]:
    return await _create(who, d, "cameras", body.model_dump(mode="json", exclude_unset=True))


@router.post("/registry/vehicles/{device_id}/reset-registration")
async def vehicle_reset_registration(who: Who, d: D, device_id: str) -> dict[str, Any]:
    """Clear a JT/T 808 terminal's stored authentication code, so its next registration (0x0100) is
    answered: after a reflash or a new SIM, which the gateway refused with result 3 and alerted on."""
    require_supervisor(who)
    k = KINDS["vehicles"]
    stored = await d.store.registry.units_of(k, [(device_id,)])
    if not stored or not all(_may_hold(d, who, u) for u in stored.values()):
        raise HTTPException(404, "no such vehicle")
    await d.store.registry.clear_auth_code(device_id)
    return {"device_id": device_id, "registration": "reset"}


@router.post("/registry/{kind}", status_code=201)
async def registry_create(who: Who, d: D, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    return await _create(who, d, kind, body)


@router.put("/registry/{kind}/{item_id:path}")
async def registry_put(who: Who, d: D, kind: str, item_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return await _replace(who, d, kind, item_id, body)


@router.delete("/registry/{kind}/{item_id:path}", status_code=204)
async def registry_delete(who: Who, d: D, kind: str, item_id: str) -> Response:
    require_supervisor(who)
    k = _kind(kind)
    try:
        key = k.parse_id(item_id)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    if k.scoped:
        stored = await d.store.registry.units_of(k, [key])
        if not stored or not all(_may_hold(d, who, u) for u in stored.values()):
            raise HTTPException(404, "not found")
    elif not _is_city(d, who):
        raise HTTPException(403, "only the city tier manages this registry")
    if not await d.store.registry.delete(k, key):
        raise HTTPException(404, "not found")
    return Response(status_code=204)


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"CSV larger than {limit // (1024 * 1024)} MiB")
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            raise HTTPException(413, f"CSV larger than {limit // (1024 * 1024)} MiB")
    return bytes(buf)


@router.post("/registry/{kind}/import")
async def registry_import(who: Who, d: D, kind: str, request: Request) -> dict[str, Any]:
    require_supervisor(who)
    k = _kind(kind)
    body = await _read_limited(request, MAX_CSV_BYTES)
    rows, errors = [], []
    try:
        records = parse_csv(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise HTTPException(422, str(exc)) from None
    for i, rec in enumerate(records, start=2):  # line numbers as a spreadsheet shows them
        try:
            rows.append(_row(k, kind, rec, who, d))
        except ValidationError as exc:
            errors.append(
                {
                    "line": i,
                    "error": "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in validation_detail(exc)),
                    "detail": validation_detail(exc),
                }
            )
        except (KeyError, ValueError, TypeError) as exc:
            errors.append({"line": i, "error": str(exc)})
    if errors:
        return JSONResponse({"imported": 0, "errors": errors[:100]}, status_code=422)  # type: ignore[return-value]
    for start in range(0, len(rows), 1000):
        await _write(d, who, k, rows[start : start + 1000])
    return {"imported": len(rows), "errors": []}
