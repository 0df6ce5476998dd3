"""The HTTP shell: FastAPI routes of the contract's Dispatch API, the SSE stream and the console.

Routes hold no business rules: they authenticate, check the caller's scope, and call the
:class:`~.service.Dispatcher`, the store or the registry mappers.
"""

# no "from __future__ import annotations": FastAPI resolves the local dependency aliases at definition time

import asyncio
import json
import secrets
import time
import uuid
from datetime import datetime, timedelta
from importlib import resources
from typing import Annotated, Any, Literal

import asyncpg
from alarmhub_runtime import get_logger
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from .accounts import add_account_routes
from .audit import AuditMiddleware, AuditWriter, add_audit_routes
from .auth import ROLES, Principal, hash_token, new_token
from .cap import alert_xml, feed_xml
from .devices import add_device_routes
from .lifecycle import ActionError
from .platforms import add_platform_routes
from .registry import KINDS, parse_csv
from .reports import CAMERA_TARGETS, CITY_CAMERA_TARGET, to_csv
from .service import Dispatcher, NotFound, summary
from .theft import add_theft_routes
from .vehicle_commands import GatewayUnreachable, OwnerGone

__all__ = ["build_api"]

log = get_logger("alarmhub.dispatch.api")

KEEPALIVE_S = 15.0
# ingest services may LISTEN here to reload a registry at once instead of waiting for their refresh timer
REGISTRY_CHANNEL = "alarmhub_registry"


class TokenRequest(BaseModel):
    user: str = Field(min_length=1, max_length=128)
    unit: str | None = None
    company: str | None = None
    role: Literal["dispatcher", "supervisor", "department", "alarm_company", "vehicle_owner"]
    ttl_s: int = Field(default=8 * 3600, gt=0, le=90 * 86400)
    scope: dict[str, list[str]] = Field(default_factory=dict)


class WebhookRequest(BaseModel):
    unit: str | None = None
    company: str | None = None
    url: str = Field(pattern=r"^https?://", max_length=2000)
    secret: str | None = Field(default=None, min_length=16, max_length=200)


class VehicleCommandBody(BaseModel):
    command: Literal["query_position", "track", "text", "track_stop", "supervise"] = Field(
        description="JT/T 808 terminal: query_position (0x8201), track (0x8202), text (0x8300). Vehicle forwarded "
        "by a JT/T 809 platform: track (0x9205 start forwarding), track_stop (0x9206), supervise "
        "(0x9401 alarm supervision)"
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="808 track: interval_s, validity_s; text: text. 809 track/track_stop: reason (default 2, "
        "emergency); supervise: warn_type, warn_time, deadline_s, urgent, supervisor, tel, email "
        "(defaults from the incident's alarm and the caller)",
    )
    timeout_s: float = Field(default=10.0, ge=1.0, le=30.0, description="how long to wait for the answer")


class ActionBody(BaseModel):
    note: str | None = Field(default=None, max_length=2000)
    outcome: Literal["confirmed", "false", "unreachable"] | None = None
    verdict: Literal["genuine", "false_alarm", "test"] | None = None


def build_api(dispatcher: Dispatcher, tracks: Any = None, *, devices: Any = None) -> FastAPI:
    app = FastAPI(
        title="alarmhub dispatch",
        version="1.0",
        description="Incidents, routing to police stations, registries and the live stream.",
    )
    api = APIRouter(prefix="/api/v1")
    d = dispatcher

    @app.exception_handler(asyncpg.exceptions.DataError)
    @app.exception_handler(asyncpg.exceptions._base.DataError)
    async def _bad_value(request: Request, exc: Exception) -> JSONResponse:
        """A value PostgreSQL cannot take (a NUL in text, an integer beyond 64 bits) is the caller's error:
        422, not 500 (found by schemathesis, services/dispatch/tests/test_openapi_fuzz.py)."""
        log.info("request_value_rejected", path=request.url.path, error=type(exc).__name__)
        return JSONResponse({"detail": "invalid value in the request"}, status_code=422)

    async def principal(request: Request) -> Principal:
        auth = request.headers.get("authorization", "")
        token = (
            auth[7:].strip() if auth[:7].lower() == "bearer " else request.query_params.get("access_token")
        )
        if not token:
            raise HTTPException(401, "bearer token required", headers={"WWW-Authenticate": "Bearer"})
        rec = await d.store.get_token(hash_token(token))
        if rec is None:
            raise HTTPException(401, "unknown or expired token", headers={"WWW-Authenticate": "Bearer"})
        who = Principal(
            user=rec["user_name"],
            role=rec["role"],
            unit=rec["unit"],
            company=rec["company"],
            scope=rec["scope"] or {},
            address=request.client.host if request.client else None,
        )
        request.state.principal = who  # for the audit middleware
        return who

    Who = Annotated[Principal, Depends(principal)]
    audit = AuditWriter(d.store, d.metrics)
    app.add_middleware(AuditMiddleware, writer=audit)

    def supervisor(who: Principal) -> None:
        if who.role != "supervisor":
            raise HTTPException(403, "supervisors only")

    def _manages(unit: str, other: str) -> bool:
        """Its own unit and below; the city also manages the external services (119/120)."""
        return d.tree.covers(unit, other) or (
            d.tree.is_root(unit) and d.tree.service_kinds(other) is not None
        )

    # -- incidents ------------------------------------------------------------------------------
    @api.get("/incidents")
    async def list_incidents(
        who: Who,
        station: str | None = None,
        district: str | None = None,
        status: str | None = None,
        decision: str | None = None,
        since: datetime | None = None,
        limit: int = Query(200, ge=1, le=1000),
    ) -> dict[str, Any]:
        where, args = who.sql_filter(d.tree, 1)
        clauses = [where]
        for col, val in (("station", station), ("district", district), ("decision", decision)):
            if val:
                args.append(val)
                clauses.append(f"{col} = ${len(args)}")
        if status:
            args.append(status.split(","))
            clauses.append(f"status = ANY(${len(args)}::text[])")
        if since:
            args.append(since)
            clauses.append(f"updated_at >= ${len(args)}")
        rows = await d.store.list_incidents(" AND ".join(clauses), args, limit)
        items = [summary(r, d.tree) for r in rows]
        return {"items": items, "count": len(items)}

    async def _visible(who: Principal, incident_id: uuid.UUID) -> dict[str, Any]:
        row = await d.store.get_incident(None, incident_id)
        if row is None or not who.sees(d.tree, row):
            raise HTTPException(404, "no such incident")  # neighbours' incidents do not exist for the caller
        return row

    @api.get("/incidents/{incident_id}")
    async def get_incident(who: Who, incident_id: uuid.UUID) -> dict[str, Any]:
        row = await _visible(who, incident_id)
        out = summary(row, d.tree)
        events = []
        for a in await d.store.incident_alarms(incident_id):
            t = a["triaged"]
            events.append(
                {
                    "event_id": str(a["event_id"]),
                    "decision": a["decision"],
                    "score": a["score"],
                    "priority": t.get("priority"),
                    "reasons": t.get("reasons", []),
                    "major_event": t.get("major_event", False),
                    "rule_version": t.get("rule_version"),
                    "decided_at": t.get("decided_at"),
                    "received_at": a["received_at"].isoformat(),
                    "event": t["event"],
                }
            )
        out["events"] = events
        out["timeline"] = [
            {
                "seq": e["seq"],
                "event_id": str(e["event_id"]),
                "type": e["type"],
                "status": e["status"],
                "at": e["at"].isoformat(),
                "actor": {
                    "user": e["actor_user"],
                    "unit": e["actor_unit"],
                    "role": e["actor_role"],
                    "address": e["address"],
                },
                "station": e["station"],
                "district": e["district"],
                "verdict": e["verdict"],
                "data": e["data"],
            }
            for e in await d.store.timeline(incident_id)
        ]
        return out

    @api.get("/incidents/{incident_id}/track")
    async def incident_track(
        who: Who, incident_id: uuid.UUID, limit: int = Query(5000, ge=1, le=50_000)
    ) -> dict[str, Any]:
        """The incident's vehicle track (WGS-84), from an hour before it opened."""
        row = await _visible(who, incident_id)
        if tracks is None or not row["source_device_id"]:
            return {"device_id": row["source_device_id"], "points": []}
        points = await tracks.track(row["source_device_id"], row["opened_at"] - timedelta(hours=1), limit)
        return {"device_id": row["source_device_id"], "points": points}

    async def _act(
        who: Principal, incident_id: uuid.UUID, action: str, body: ActionBody | None
    ) -> dict[str, Any]:
        try:
            return await d.act(who, incident_id, action, (body or ActionBody()).model_dump(exclude_none=True))
        except NotFound:
            raise HTTPException(404, "no such incident") from None
        except PermissionError as exc:
            raise HTTPException(403, str(exc)) from None
        except ActionError as exc:
            raise HTTPException(409, str(exc)) from None
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None

    @api.post("/incidents/{incident_id}/vehicle-command")
    async def incident_vehicle_command(
        who: Who, incident_id: uuid.UUID, body: VehicleCommandBody
    ) -> dict[str, Any]:
        """Locate now, track, or text the incident's vehicle through ingest-gps — or, for a vehicle forwarded
        by a JT/T 809 platform, start/stop its tracking or send an alarm supervision down the platform's
        link; the answer is returned and recorded on the incident's timeline (``not_connected`` and
        ``timeout`` included). A command the vehicle's protocol cannot carry gets 409."""
        try:
            return await d.vehicle_command(who, incident_id, body.command, body.params, body.timeout_s)
        except NotFound:
            raise HTTPException(404, "no such incident") from None
        except PermissionError as exc:
            raise HTTPException(403, str(exc)) from None
        except ActionError as exc:
            raise HTTPException(409, str(exc)) from None
        except OwnerGone as exc:
            raise HTTPException(503, str(exc)) from None
        except GatewayUnreachable as exc:
            raise HTTPException(502, str(exc)) from None

    for _action in ("ack", "on-scene", "escalate", "verify", "close"):

        def _make(action: str) -> Any:
            async def route(
                who: Who, incident_id: uuid.UUID, body: ActionBody | None = None
            ) -> dict[str, Any]:
                return await _act(who, incident_id, action, body)

            route.__name__ = f"incident_{action.replace('-', '_')}"
            return route

        api.post(f"/incidents/{{incident_id}}/{_action}", name=f"incident_{_action}")(_make(_action))

    # -- CAP 1.2 ---------------------------------------------------------------------------------
    @api.get("/cap", response_class=Response, responses={200: {"content": {"application/atom+xml": {}}}})
    async def cap_feed(who: Who, request: Request, limit: int = Query(200, ge=1, le=1000)) -> Response:
        """Atom feed of the caller's dispatched incidents, each entry holding its current CAP 1.2 alert."""
        where, args = who.sql_filter(d.tree, 1)
        rows = await d.store.list_incidents(f"{where} AND decision = 'dispatch'", args, limit)
        body = feed_xml([(summary(r, d.tree), r["opened_at"]) for r in rows], str(request.url), d.clock())
        return Response(body, media_type="application/atom+xml")

    @api.get(
        "/incidents/{incident_id}/cap",
        response_class=Response,
        responses={200: {"content": {"application/cap+xml": {}}}},
    )
    async def cap_alert(who: Who, incident_id: uuid.UUID) -> Response:
        row = await _visible(who, incident_id)
        return Response(alert_xml(summary(row, d.tree), row["opened_at"]), media_type="application/cap+xml")

    # -- webhooks (stations' systems, alarm companies) and their dead letters -----------------------
    def _hook_visible(who: Principal, kind: str, target: str) -> bool:
        if who.unit is None:
            return False
        if kind == "company":
            return d.tree.is_root(who.unit)
        return _manages(who.unit, target)

    @api.post("/webhooks", status_code=201)
    async def webhook_create(who: Who, req: WebhookRequest) -> dict[str, Any]:
        """Register a webhook for a unit (its subtree's incidents) or an alarm company (its accounts')."""
        supervisor(who)
        if bool(req.unit) == bool(req.company):
            raise HTTPException(422, "name exactly one of unit or company")
        kind, target = ("unit", req.unit) if req.unit else ("company", req.company)
        if kind == "unit" and target not in d.tree:
            raise HTTPException(422, "unknown unit")
        if not _hook_visible(who, kind, target or ""):
            raise HTTPException(403, "outside your unit")
        secret = req.secret or secrets.token_urlsafe(32)
        hook_id = await d.store.p.fetchval(
            "INSERT INTO webhooks (target_kind, target, url, secret, created_by) VALUES ($1,$2,$3,$4,$5) RETURNING id",
            kind,
            target,
            req.url,
            secret,
            who.user,
        )
        return {"id": hook_id, "target_kind": kind, "target": target, "url": req.url, "secret": secret}

    @api.get("/webhooks")
    async def webhook_list(who: Who) -> dict[str, Any]:
        rows = await d.store.fetch(
            "SELECT id, target_kind, target, url, active, created_by, created_at FROM webhooks ORDER BY id"
        )
        items = [
            {**r, "created_at": r["created_at"].isoformat()}
            for r in rows
            if _hook_visible(who, r["target_kind"], r["target"])
        ]
        return {"items": items, "count": len(items)}

    @api.delete("/webhooks/{hook_id}", status_code=204)
    async def webhook_delete(who: Who, hook_id: int) -> Response:
        supervisor(who)
        row = await d.store.p.fetchrow("SELECT target_kind, target FROM webhooks WHERE id=$1", hook_id)
        if row is None or not _hook_visible(who, row["target_kind"], row["target"]):
            raise HTTPException(404, "no such webhook")
        await d.store.execute("UPDATE webhooks SET active=false WHERE id=$1", hook_id)
        return Response(status_code=204)

    @api.get("/webhooks/dead-letters")
    async def dead_letters(who: Who, limit: int = Query(200, ge=1, le=1000)) -> dict[str, Any]:
        """Deliveries that failed permanently or ran out of attempts: for operators to inspect and retry."""
        rows = await d.store.fetch(
            "SELECT d.id, d.webhook_id, w.target_kind, w.target, w.url, d.idempotency_key, d.incident_id, d.attempts,"
            " d.last_status, d.last_error, d.created_at, d.payload FROM webhook_deliveries d"
            f" JOIN webhooks w ON w.id = d.webhook_id WHERE d.status = 'dead' ORDER BY d.id DESC LIMIT {limit}"
        )
        items = [
            {**r, "incident_id": str(r["incident_id"]), "created_at": r["created_at"].isoformat()}
            for r in rows
            if _hook_visible(who, r["target_kind"], r["target"])
        ]
        return {"items": items, "count": len(items)}

    @api.post("/webhooks/dead-letters/{delivery_id}/retry")
    async def dead_letter_retry(who: Who, delivery_id: int) -> dict[str, Any]:
        supervisor(who)
        row = await d.store.p.fetchrow(
            "SELECT w.target_kind, w.target FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id"
            " WHERE d.id=$1 AND d.status='dead'",
            delivery_id,
        )
        if row is None or not _hook_visible(who, row["target_kind"], row["target"]):
            raise HTTPException(404, "no such dead letter")
        await d.store.execute(
            "UPDATE webhook_deliveries SET status='pending', attempts=0, next_attempt_at=now() WHERE id=$1",
            delivery_id,
        )
        return {"id": delivery_id, "status": "pending"}

    # -- reports ------------------------------------------------------------------------------
    def _report(rows: list[dict[str, Any]], columns: list[str], fmt: str, name: str) -> Any:
        if fmt == "csv":
            return Response(
                to_csv(rows, columns),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
            )
        return {"items": rows, "columns": columns}

    @api.get("/reports/ack-times")
    async def report_ack(who: Who, since: datetime | None = None, format: str = "json") -> Any:
        """Time to acknowledge (seconds) per district and station, p50 / p90, over visible incidents."""
        where, args = who.sql_filter(d.tree, 1)
        if since:
            args.append(since)
            where += f" AND opened_at >= ${len(args)}"
        rows = await d.store.fetch(
            "SELECT district, station, count(*) AS incidents, count(acknowledged_at) AS acknowledged,"
            " percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM acknowledged_at - opened_at)) AS p50_s,"
            " percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM acknowledged_at - opened_at)) AS p90_s"
            f" FROM incidents WHERE {where} AND decision IN ('dispatch','verify')"
            " GROUP BY GROUPING SETS ((district), (district, station)) ORDER BY district NULLS LAST, station NULLS FIRST",
            *args,
        )
        for r in rows:
            for k in ("p50_s", "p90_s"):
                r[k] = round(r[k], 1) if r[k] is not None else None
            r["level"] = "station" if r["station"] else "district"
            r["name"] = d.tree.name(r["station"] or r["district"])
        return _report(
            rows,
            ["level", "district", "station", "name", "incidents", "acknowledged", "p50_s", "p90_s"],
            format,
            "ack-times",
        )

    @api.get("/reports/false-alarms")
    async def report_false(
        who: Who,
        by: Literal["source", "account"] = "source",
        since: datetime | None = None,
        format: str = "json",
    ) -> Any:
        """False-alarm rate of closed incidents with a verdict, by source protocol or by account."""
        where, args = who.sql_filter(d.tree, 1)
        if since:
            args.append(since)
            where += f" AND opened_at >= ${len(args)}"
        key = "protocol" if by == "source" else "source_device_id"
        rows = await d.store.fetch(
            f"SELECT {key} AS key, count(*) AS closed, count(*) FILTER (WHERE verdict='false_alarm') AS false_alarms,"
            " count(*) FILTER (WHERE verdict='genuine') AS genuine"
            f" FROM incidents WHERE {where} AND verdict IS NOT NULL GROUP BY {key} ORDER BY 2 DESC LIMIT 1000",
            *args,
        )
        for r in rows:
            r["false_alarm_rate"] = round(r["false_alarms"] / r["closed"], 3) if r["closed"] else None
        return _report(
            rows,
            ["key", "closed", "false_alarms", "genuine", "false_alarm_rate"],
            format,
            f"false-alarms-by-{by}",
        )

    @api.get("/reports/cameras")
    async def report_cameras(who: Who, format: str = "json") -> Any:
        """Cameras per district (by their unit), online rate, and the plan's targets."""
        if who.role == "alarm_company" or who.unit is None:
            raise HTTPException(403, "units only")
        rows = await d.store.fetch(
            "SELECT unit, count(*) AS n, count(*) FILTER (WHERE online) AS online FROM cameras GROUP BY unit"
        )
        per: dict[str, dict[str, int]] = {}
        for r in rows:
            district = _district_of(r["unit"])
            acc = per.setdefault(district or "unassigned", {"cameras": 0, "online": 0})
            acc["cameras"] += r["n"]
            acc["online"] += r["online"]
        visible = d.tree.subtree(who.unit)
        out: list[dict[str, Any]] = []
        for dist in sorted(set(per) | set(CAMERA_TARGETS)):
            if dist != "unassigned" and dist not in visible:
                continue
            if dist == "unassigned" and not d.tree.is_root(who.unit):
                continue
            c = per.get(dist, {"cameras": 0, "online": 0})
            target = CAMERA_TARGETS.get(dist)
            out.append(
                {
                    "district": dist,
                    "name": d.tree.name(dist),
                    "cameras": c["cameras"],
                    "online": c["online"],
                    "online_rate": round(c["online"] / c["cameras"], 3) if c["cameras"] else None,
                    "target": target,
                    "of_target": round(c["cameras"] / target, 3) if target else None,
                }
            )
        if d.tree.is_root(who.unit):
            total = sum(r["cameras"] for r in out)
            out.append(
                {
                    "district": "city",
                    "name": d.tree.name("city"),
                    "cameras": total,
                    "online": sum(r["online"] for r in out),
                    "online_rate": None,
                    "target": CITY_CAMERA_TARGET,
                    "of_target": round(total / CITY_CAMERA_TARGET, 3),
                }
            )
        return _report(
            out,
            ["district", "name", "cameras", "online", "online_rate", "target", "of_target"],
            format,
            "cameras",
        )

    def _district_of(unit: str | None) -> str | None:
        n = d.tree.nodes.get(unit or "")
        while n is not None and n.tier > 2 and n.parent_id:
            n = d.tree.nodes.get(n.parent_id)
        return n.id if n is not None and n.tier == 2 else None

    # -- live stream ----------------------------------------------------------------------------
    @api.get("/stream")
    async def stream(who: Who, request: Request) -> StreamingResponse:
        async def gen() -> Any:
            d.metrics.stream_clients.inc()
            try:
                async with d.hub.subscribe(who) as q:
                    yield f"event: hello\ndata: {json.dumps({'user': who.user, 'unit': who.unit})}\n\n"
                    while True:
                        try:
                            msg = await asyncio.wait_for(q.get(), KEEPALIVE_S)
                        except TimeoutError:
                            if await request.is_disconnected():
                                return
                            yield ": keepalive\n\n"
                            continue
                        # everything queued goes out as one chunk: one write per wake-up, not per change
                        # (one change per loop pass drained ~180/s on the busy box and the queue grew)
                        msgs = [msg]
                        while not q.empty() and len(msgs) < 500:
                            msgs.append(q.get_nowait())
                        chunk, now = [], time.monotonic()
                        for m in msgs:
                            if m is None:
                                break
                            queued = m.pop("_queued", None)
                            if queued is not None:
                                d.metrics.stream_queue_seconds.observe(now - queued)
                            chunk.append(
                                f"event: incident\nid: {m['incident']['id']}\n"
                                f"data: {json.dumps(m, ensure_ascii=False)}\n\n"
                            )
                        if chunk:
                            yield "".join(chunk)
                        if len(chunk) < len(
                            msgs
                        ):  # None: this stream was cut (too slow) or the service stops
                            return
            finally:
                d.metrics.stream_clients.dec()

        return StreamingResponse(
            gen(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    # -- units ----------------------------------------------------------------------------------
    @api.get("/units")
    async def units(who: Who, geometry: bool = False) -> dict[str, Any]:
        if who.role == "alarm_company" or who.unit is None:
            visible: frozenset[str] = frozenset()
        else:
            visible = d.tree.subtree(who.unit)
        items = []
        for uid in sorted(visible, key=lambda u: (d.tree.nodes[u].tier, u)):
            n = d.tree.nodes[uid]
            item = {**n.summary(), "children": list(n.children)}
            if geometry:
                item["geometry"] = n.geometry
            items.append(item)
        return {"items": items, "count": len(items), "crs": "WGS84"}

    # -- tokens ---------------------------------------------------------------------------------
    @api.post("/tokens", status_code=201)
    async def mint(who: Who, req: TokenRequest) -> dict[str, Any]:
        supervisor(who)
        if req.role not in ROLES:
            raise HTTPException(422, "unknown role")
        if req.role == "alarm_company":
            if not req.company:
                raise HTTPException(422, "an alarm_company token names a company")
            if who.unit is None or not d.tree.is_root(who.unit):
                raise HTTPException(403, "only the city tier mints alarm company tokens")
            unit = None
        elif req.role == "vehicle_owner":
            vehicles = sorted(set(req.scope.get("vehicles") or ()))
            if not vehicles or len(vehicles) > 20:
                raise HTTPException(
                    422, "a vehicle_owner token names 1 to 20 registered vehicles in scope.vehicles"
                )
            known = await d.store.fetch(
                "SELECT device_id FROM vehicles WHERE device_id = ANY($1::text[])", vehicles
            )
            if len(known) != len(vehicles):
                raise HTTPException(
                    422,
                    "unknown vehicle: " + ", ".join(sorted(set(vehicles) - {r["device_id"] for r in known})),
                )
            if who.unit is None:
                raise HTTPException(403, "units only")
            unit = None
        else:
            if not req.unit or req.unit not in d.tree:
                raise HTTPException(422, "unknown unit")
            if who.unit is None or not _manages(who.unit, req.unit):
                raise HTTPException(403, "a supervisor mints tokens only for its own unit or below")
            unit = req.unit
        token = new_token()
        expires = datetime.now().astimezone() + timedelta(seconds=req.ttl_s)
        await d.store.put_token(
            hash_token(token),
            req.user,
            req.role,
            unit,
            req.company if req.role == "alarm_company" else None,
            req.scope
            if req.role == "department"
            else {"vehicles": sorted(set(req.scope["vehicles"]))}
            if req.role == "vehicle_owner"
            else {},
            who.user,
            expires,
        )
        return {
            "token": token,
            "user": req.user,
            "role": req.role,
            "unit": unit,
            "company": req.company,
            "expires_at": expires.isoformat(),
        }

    # -- registries -----------------------------------------------------------------------------
    def _kind(kind: str) -> Any:
        k = KINDS.get(kind)
        if k is None:
            raise HTTPException(404, "unknown registry")
        return k

    async def _notify_platforms(conn: Any) -> None:
        await conn.execute("SELECT pg_notify($1, $2)", REGISTRY_CHANNEL, "platforms")

    # JT/T 809 platforms: dedicated routes (hashed password, keys never returned, supervisors only),
    # registered before the generic ones below so they take precedence; CSV import stays generic
    add_platform_routes(api, d.store, Who, supervisor, _notify_platforms)

    async def _upsert(k: Any, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        cols = list(rows[0])
        updates = ", ".join(f"{c}=EXCLUDED.{c}" for c in cols if c not in k.key) + ", updated_at=now()"
        sql = (
            f"INSERT INTO {k.table} ({', '.join(cols)}) VALUES ({', '.join(f'${i + 1}' for i in range(len(cols)))})"
            f" ON CONFLICT ({', '.join(k.key)}) DO UPDATE SET {updates}"
        )
        async with d.store.p.acquire() as conn, conn.transaction():
            await conn.executemany(sql, [tuple(r[c] for c in cols) for r in rows])
            await conn.execute("SELECT pg_notify($1, $2)", REGISTRY_CHANNEL, k.table)

    @api.get("/registry/{kind}")
    async def registry_list(
        who: Who, kind: str, limit: int = Query(1000, ge=1, le=100_000), offset: int = Query(0, ge=0)
    ) -> dict[str, Any]:
        k = _kind(kind)
        if who.role == "vehicle_owner":
            raise HTTPException(403, "vehicle owners have no registry access")
        if who.role == "alarm_company":
            if kind != "accounts":
                raise HTTPException(403, "alarm companies see only their accounts")
            rows = await d.store.fetch(
                f"SELECT * FROM accounts WHERE company=$1 ORDER BY line, account"
                f" LIMIT {limit} OFFSET {offset}",
                who.company,
            )
        else:
            rows = await d.store.fetch(
                f"SELECT * FROM {k.table} ORDER BY {', '.join(k.key)} LIMIT {limit} OFFSET {offset}"
            )
        items = [k.to_out(r) for r in rows]
        return {"items": items, "count": len(items)}

    @api.post("/registry/{kind}", status_code=201)
    async def registry_create(who: Who, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        supervisor(who)
        k = _kind(kind)
        try:
            row = k.to_row(body)
        except (KeyError, ValueError, TypeError) as exc:
            raise HTTPException(422, f"invalid {kind} record: {exc!r}") from None
        await _upsert(k, [row])
        return k.to_out(row)

    @api.put("/registry/{kind}/{item_id:path}")
    async def registry_put(who: Who, kind: str, item_id: str, body: dict[str, Any]) -> dict[str, Any]:
        supervisor(who)
        k = _kind(kind)
        try:
            key = k.parse_id(item_id)
            row = k.to_row({**body, **_key_body(kind, key)})
        except (KeyError, ValueError, TypeError) as exc:
            raise HTTPException(422, f"invalid {kind} record: {exc!r}") from None
        await _upsert(k, [row])
        return k.to_out(row)

    @api.delete("/registry/{kind}/{item_id:path}", status_code=204)
    async def registry_delete(who: Who, kind: str, item_id: str) -> Response:
        supervisor(who)
        k = _kind(kind)
        try:
            key = k.parse_id(item_id)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        where = " AND ".join(f"{c}=${i + 1}" for i, c in enumerate(k.key))
        res = await d.store.execute(f"DELETE FROM {k.table} WHERE {where}", *key)
        await d.store.execute("SELECT pg_notify($1, $2)", REGISTRY_CHANNEL, k.table)
        if res.endswith(" 0"):
            raise HTTPException(404, "not found")
        return Response(status_code=204)

    @api.post("/registry/{kind}/import")
    async def registry_import(who: Who, kind: str, request: Request) -> dict[str, Any]:
        supervisor(who)
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
            await _upsert(k, rows[start : start + 1000])
        return {"imported": len(rows), "errors": []}

    add_theft_routes(api, d, Who)
    add_account_routes(api, d, Who, supervisor, _manages, audit.for_request)
    add_audit_routes(api, d, Who, supervisor, audit)
    if devices is not None:
        add_device_routes(api, d, Who, devices)
    app.include_router(api)

    # -- console --------------------------------------------------------------------------------
    console = resources.files("alarmhub_dispatch").joinpath("console")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(
            console.joinpath("index.html").read_text("utf-8"), headers={"Cache-Control": "no-cache"}
        )

    @app.get("/console/{name:path}", include_in_schema=False)
    async def asset(name: str) -> Response:
        types = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".svg": "image/svg+xml"}
        parts = name.split("/")
        suffix = name[name.rfind(".") :] if "." in parts[-1] else ""
        if any(p in ("", ".", "..") for p in parts) or suffix not in types:
            raise HTTPException(404)
        f = console.joinpath("assets")
        for p in parts:
            f = f.joinpath(p)
        if not f.is_file():
            raise HTTPException(404)
        return Response(f.read_bytes(), media_type=types[suffix], headers={"Cache-Control": "max-age=300"})

    return app


def _key_body(kind: str, key: tuple[Any, ...]) -> dict[str, Any]:
    if kind == "accounts":
        return {"line": key[0], "account": key[1]}
    return {KINDS[kind].key[0]: key[0]}
