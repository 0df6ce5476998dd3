"""``/incidents``: the caller's incidents, one incident with its alarms and timeline, its vehicle's track,
the dispatcher's actions and commands to the incident's vehicle."""

# no "from __future__ import annotations": FastAPI resolves the dependency aliases at definition time

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from ..store.incident_search import incident_filters
from ..views import summary
from .deps import D, Who, visible_incident

__all__ = ["ActionBody", "VehicleCommandBody", "router"]

router = APIRouter()


class VehicleCommandBody(BaseModel):
    command: Literal["query_position", "track", "text", "track_stop", "supervise", "cutoff", "restore"] = (
        Field(
            description="JT/T 808 terminal: query_position (0x8201), track (0x8202), text (0x8300). Vehicle forwarded "
            "by a JT/T 809 platform: track (0x9205 start forwarding), track_stop (0x9206), supervise "
            "(0x9401 alarm supervision). GT06 tracker: query_position (WHERE#). JT/T 808, GT06, H02 terminal "
            "whose model has one: cutoff / restore "
            "fuel or power (dispatchers and supervisors; params.confirm = the plate; cut-off refused unless "
            "the latest fix is fresh and below the safe speed)"
        )
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="808 track: interval_s, validity_s; text: text. 809 track/track_stop: reason (default 2, "
        "emergency); supervise: warn_type, warn_time, deadline_s, urgent, supervisor, tel, email "
        "(defaults from the incident's alarm and the caller); cutoff/restore: confirm (the vehicle's plate)",
    )
    timeout_s: float = Field(default=10.0, ge=1.0, le=30.0, description="how long to wait for the answer")


class ActionBody(BaseModel):
    note: str | None = Field(default=None, max_length=2000)
    outcome: Literal["confirmed", "false", "unreachable"] | None = None
    verdict: Literal["genuine", "false_alarm", "test"] | None = None
    service: Literal["119", "120"] | None = Field(
        default=None, description="handoff: fire (119) or medical (120)"
    )


@router.get("/incidents")
async def list_incidents(
    who: Who,
    d: D,
    station: str | None = None,
    district: str | None = None,
    status: str | None = None,
    decision: str | None = None,
    kind: str | None = None,
    priority: int | None = Query(None, ge=1, le=5),
    q: str | None = Query(
        None, min_length=1, max_length=100, description="account, device, plate or site name/address contains"
    ),
    since: datetime | None = None,
    limit: int = Query(200, ge=1, le=1000),
) -> dict[str, Any]:
    """The caller's incidents, filtered and searched; ``counts`` has the incidents per status under the
    same filters but any status (closed ones: closed in the last 24 h), for the console's counters."""
    where, args = who.sql_filter(d.tree, 1)
    filters = incident_filters(
        len(args) + 1,
        station=station,
        district=district,
        decision=decision,
        kind=kind,
        priority=priority,
        q=q,
    )
    clauses, fargs = [where, *filters.clauses], [*args, *filters.args]
    counts = await d.store.count_by_status(" AND ".join(clauses), list(fargs))
    if status:
        fargs.append(status.split(","))
        clauses.append(f"status = ANY(${len(fargs)}::text[])")
    if since:
        fargs.append(since)
        clauses.append(f"updated_at >= ${len(fargs)}")
    rows = await d.store.list_incidents(" AND ".join(clauses), fargs, limit)
    items = [summary(r, d.tree) for r in rows]
    return {"items": items, "count": len(items), "counts": counts}


def _alarm_out(a: dict[str, Any]) -> dict[str, Any]:
    t = a["triaged"]
    return {
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


def _timeline_out(e: dict[str, Any]) -> dict[str, Any]:
    return {
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


@router.get("/incidents/{incident_id}")
async def get_incident(who: Who, d: D, incident_id: uuid.UUID) -> dict[str, Any]:
    row = await visible_incident(d, who, incident_id)
    out = summary(row, d.tree)
    out["events"] = [_alarm_out(a) for a in await d.store.incident_alarms(incident_id)]
    out["timeline"] = [_timeline_out(e) for e in await d.store.timeline(incident_id)]
    return out


@router.get("/incidents/{incident_id}/track")
async def incident_track(
    who: Who,
    d: D,
    request: Request,
    incident_id: uuid.UUID,
    since: datetime | None = Query(None, description="from this time (default: an hour before it opened)"),
    limit: int = Query(5000, ge=1, le=50_000),
) -> dict[str, Any]:
    """The incident's vehicle track (WGS-84), from ``since`` or an hour before it opened."""
    row = await visible_incident(d, who, incident_id)
    tracks = request.app.state.tracks
    if tracks is None or not row["source_device_id"]:
        return {"device_id": row["source_device_id"], "points": []}
    start = since if since is not None else row["opened_at"] - timedelta(hours=1)
    points = await tracks.track(row["source_device_id"], start, limit)
    return {"device_id": row["source_device_id"], "points": points}


@router.post("/incidents/{incident_id}/vehicle-command")
async def incident_vehicle_command(
    who: Who, d: D, incident_id: uuid.UUID, body: VehicleCommandBody
) -> dict[str, Any]:
    """Locate now, track, or text the incident's vehicle through ingest-gps — or, for a vehicle forwarded
    by a JT/T 809 platform, start/stop its tracking or send an alarm supervision down the platform's
    link; the answer is returned and recorded on the incident's timeline (``not_connected`` and
    ``timeout`` included). A command the vehicle's protocol cannot carry gets 409."""
    return await d.vehicle_command(who, incident_id, body.command, body.params, body.timeout_s)


def _action_route(action: str) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def route(who: Who, d: D, incident_id: uuid.UUID, body: ActionBody | None = None) -> dict[str, Any]:
        return await d.act(who, incident_id, action, (body or ActionBody()).model_dump(exclude_none=True))

    route.__name__ = f"incident_{action.replace('-', '_')}"
    return route


for _action in ("ack", "on-scene", "escalate", "verify", "handoff", "close"):
    router.post(f"/incidents/{{incident_id}}/{_action}", name=f"incident_{_action}")(_action_route(_action))
