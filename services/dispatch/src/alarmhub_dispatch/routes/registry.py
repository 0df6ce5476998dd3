"""``/registry/{kind}``: the registries (accounts, cameras, vehicles, …) — list, create, replace, delete and
CSV import; supervisors write, alarm companies read their own accounts. The JT/T 809 platforms have
their own routes (``platforms.py``), registered first."""

# no "from __future__ import annotations": FastAPI resolves the dependency aliases at definition time

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response

from ..registry import KINDS, parse_csv
from .deps import D, Who, require_supervisor

__all__ = ["router"]

router = APIRouter()


def _kind(kind: str) -> Any:
    k = KINDS.get(kind)
    if k is None:
        raise HTTPException(404, "unknown registry")
    return k


def _key_body(kind: str, key: tuple[Any, ...]) -> dict[str, Any]:
    if kind == "accounts":
        return {"line": key[0], "account": key[1]}
    return {KINDS[kind].key[0]: key[0]}


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
    else:
        rows = await d.store.registry.page(k, limit, offset)
    items = [k.to_out(r) for r in rows]
    return {"items": items, "count": len(items)}


@router.post("/registry/{kind}", status_code=201)
async def registry_create(who: Who, d: D, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    require_supervisor(who)
    k = _kind(kind)
    try:
        row = k.to_row(body)
    except (KeyError, ValueError, TypeError) as exc:
        raise HTTPException(422, f"invalid {kind} record: {exc!r}") from None
    await d.store.registry.upsert(k, [row])
    return k.to_out(row)


@router.put("/registry/{kind}/{item_id:path}")
async def registry_put(who: Who, d: D, kind: str, item_id: str, body: dict[str, Any]) -> dict[str, Any]:
    require_supervisor(who)
    k = _kind(kind)
    try:
        key = k.parse_id(item_id)
        row = k.to_row({**body, **_key_body(kind, key)})
    except (KeyError, ValueError, TypeError) as exc:
        raise HTTPException(422, f"invalid {kind} record: {exc!r}") from None
    await d.store.registry.upsert(k, [row])
    return k.to_out(row)


@router.delete("/registry/{kind}/{item_id:path}", status_code=204)
async def registry_delete(who: Who, d: D, kind: str, item_id: str) -> Response:
    require_supervisor(who)
    k = _kind(kind)
    try:
        key = k.parse_id(item_id)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    if not await d.store.registry.delete(k, key):
        raise HTTPException(404, "not found")
    return Response(status_code=204)


@router.post("/registry/{kind}/import")
async def registry_import(who: Who, d: D, kind: str, request: Request) -> dict[str, Any]:
    require_supervisor(who)
    k = _kind(kind)
    body = await request.body()
    if len(body) > 50 * 1024 * 1024:
        raise HTTPException(413, "CSV larger than 50 MiB")
    rows, errors = [], []
    try:
        records = parse_csv(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise HTTPException(422, str(exc)) from None
    for i, rec in enumerate(records, start=2):  # line numbers as a spreadsheet shows them
        try:
            rows.append(k.to_row(rec))
        except (KeyError, ValueError, TypeError) as exc:
            errors.append({"line": i, "error": repr(exc)})
    if errors:
        return JSONResponse({"imported": 0, "errors": errors[:100]}, status_code=422)  # type: ignore[return-value]
    for start in range(0, len(rows), 1000):
        await d.store.registry.upsert(k, rows[start : start + 1000])
    return {"imported": len(rows), "errors": []}
