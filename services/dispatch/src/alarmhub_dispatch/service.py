"""Dispatch's core operations, between the I/O shells (consumer, HTTP) and the pure rules.

- :meth:`Dispatcher.handle_triaged` materializes incidents from ``alarms.triaged`` (idempotent by
  (incident_id, event_id)), locating and routing each one;
- :meth:`Dispatcher.act` applies a dispatcher's action;
- :meth:`Dispatcher.escalate_due` fires the escalation timers kept in the database;
- :meth:`Dispatcher.publish_outbox` drains the audit outbox to ``incidents.events``.

Every change is pushed to the live-stream :class:`Hub`, which filters by what each subscriber may see.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alarmhub_events import (
    INCIDENTS_EVENTS,
    SUPERVISION_ANSWER,
    DeviceStatus,
    IncidentEventType,
    IncidentStatus,
    Protocol,
    TriagedAlarm,
    utcnow,
)
from alarmhub_kafka import DurableProducer
from alarmhub_runtime import get_logger

from .auth import Principal
from .lifecycle import (
    GPS_GATEWAY,
    ActionError,
    Policy,
    Transition,
    apply_action,
    apply_escalation,
    apply_triaged,
)
from .metrics import DispatchMetrics
from .routing import NO_LOCATION, Route, Router
from .store import INCIDENT_COLUMNS, Store
from .units import UnitTree
from .vehicle_commands import COMMANDS_BY_PROTOCOL, VehicleCommands

__all__ = ["Dispatcher", "Hub", "NotFound", "summary"]

log = get_logger("alarmhub.dispatch")

_DC09 = {Protocol.DC09_CID, Protocol.DC09_SIA}
_CAMERAS = {Protocol.GB28181, Protocol.ISAPI, Protocol.ONVIF, Protocol.WEBHOOK}
#: namespace of the timeline event ids derived from those statuses' event ids (replays collide)
_ANSWER_NS = uuid.UUID("2e35bce1-204d-48f7-8a83-7178711bfac5")


class NotFound(Exception):
    pass


def _ts(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def _iso(v: Any) -> Any:
    return v.isoformat().replace("+00:00", "Z") if isinstance(v, datetime) else v


def summary(row: dict[str, Any], tree: UnitTree | None = None) -> dict[str, Any]:
    """An incident as the API, the stream and the console show it."""
    out = {
        "id": str(row["id"]),
        "status": row["status"],
        "decision": row["decision"],
        "priority": row["priority"],
        "score": row["score"],
        "reasons": row["reasons"],
        "kind": row["kind"],
        "station": row["station"],
        "district": row["district"],
        "location": row["location"],
        "route": row["route"],
        "opened_at": _iso(row["opened_at"]),
        "updated_at": _iso(row["updated_at"]),
        "acknowledged_at": _iso(row["acknowledged_at"]),
        "on_scene_at": _iso(row["on_scene_at"]),
        "closed_at": _iso(row["closed_at"]),
        "verdict": row["verdict"],
        "verification": row["verification"],
        "source_device_id": row["source_device_id"],
        "protocol": row["protocol"],
        "account": row["account"],
        "company": row["company"],
        "major_event": row["major_event"],
        "escalation_level": row["escalation_level"],
        "escalate_at": _iso(row["escalate_at"]),
        "alarm_count": row["alarm_count"],
        "rule_version": row["rule_version"],
    }
    if tree is not None:
        out["station_name"] = tree.name(row["station"])
        out["district_name"] = tree.name(row["district"])
        node = tree.nodes.get(row["station"] or "")
        out["station_synthetic"] = bool(node and node.synthetic)
    return out


@dataclass(eq=False)  # identity semantics: subscribers live in a set
class _Sub:
    principal: Principal
    queue: asyncio.Queue[dict[str, Any] | None]


class Hub:
    """Fan-out of incident changes to this replica's SSE subscribers (bounded queues; slow readers are cut).

    Changes arrive twice: at once from this replica's own writes, and from ``incidents.events`` (every
    replica tails it, so a change made by another replica reaches this one's subscribers too). The hub
    remembers the last ``updated_at`` it pushed per incident and drops a change that is not newer.
    """

    def __init__(
        self, tree_fn: Callable[[], UnitTree], queue_size: int = 1000, remember: int = 20_000
    ) -> None:
        self._subs: set[_Sub] = set()
        self._tree_fn = tree_fn
        self._size = queue_size
        self._pushed: OrderedDict[str, str] = OrderedDict()
        self._remember = remember

    def _is_new(self, incident: dict[str, Any]) -> bool:
        iid, version = str(incident.get("id")), str(incident.get("updated_at") or "")
        last = self._pushed.get(iid)
        if last is not None and version and _ts(version) <= _ts(last):
            return False
        self._pushed[iid] = version
        self._pushed.move_to_end(iid)
        while len(self._pushed) > self._remember:
            self._pushed.popitem(last=False)
        return True

    def pushed_since(self, incident_id: str, at: datetime) -> bool:
        """Whether this hub already pushed a version of the incident at least as new as ``at`` (a change learnt
        from ``incidents.events`` that this replica made itself needs no read-back from PostgreSQL)."""
        last = self._pushed.get(incident_id)
        return last is not None and last != "" and _ts(last) >= at

    def publish_if_new(self, incident: dict[str, Any], change: str) -> bool:
        """Push a change learnt from ``incidents.events`` unless this replica already pushed that version."""
        if not self._is_new(incident):
            return False
        self._fan_out(incident, change)
        return True

    def __len__(self) -> int:
        return len(self._subs)

    @contextlib.asynccontextmanager
    async def subscribe(self, principal: Principal) -> AsyncIterator[asyncio.Queue[dict[str, Any] | None]]:
        sub = _Sub(principal, asyncio.Queue(self._size))
        self._subs.add(sub)
        try:
            yield sub.queue
        finally:
            self._subs.discard(sub)

    def publish(self, incident: dict[str, Any], change: str) -> None:
        """Push a change made by this replica (always: an action's answer must show at once)."""
        self._is_new(incident)
        self._fan_out(incident, change)

    def _fan_out(self, incident: dict[str, Any], change: str) -> None:
        tree = self._tree_fn()
        queued = time.monotonic()  # "_queued": for the queue-wait metric, removed before the change is sent
        for sub in list(self._subs):
            if not sub.principal.sees(tree, incident):
                continue
            try:
                sub.queue.put_nowait({"type": change, "incident": incident, "_queued": queued})
            except asyncio.QueueFull:
                self._subs.discard(sub)
                with contextlib.suppress(asyncio.QueueFull):
                    sub.queue.get_nowait()
                    sub.queue.put_nowait(None)  # tells the stream to end; the client reconnects

    def close(self) -> None:
        for sub in list(self._subs):
            with contextlib.suppress(asyncio.QueueFull):
                sub.queue.put_nowait(None)
        self._subs.clear()


class Dispatcher:
    def __init__(
        self,
        store: Store,
        tree: UnitTree,
        router: Router,
        producer: DurableProducer,
        metrics: DispatchMetrics,
        policy: Policy,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.tree = tree
        self.router = router
        self.producer = producer
        self.metrics = metrics
        self.policy = policy
        self.clock = clock
        self.hub = Hub(lambda: self.tree)
        self._publish_lock = asyncio.Lock()
        self._publish_again = False
        self._publisher: asyncio.Task[None] | None = None
        self.commands: VehicleCommands | None = None  # set by the app: ingest-gps's command endpoint
        self._handover_tree: UnitTree | None = None
        self._handover_cache: dict[str, list[str]] = {}

    # -- alarms.triaged -------------------------------------------------------------------------
    @staticmethod
    def _account_key(t: TriagedAlarm) -> tuple[str | None, str]:
        src = t.event.source
        line = src.line
        if line is None and "#" in src.device_id:
            line = src.device_id.split("#", 1)[0]
        return line, src.account or src.device_id.split("#", 1)[-1]

    async def _locate_many(
        self,
        items: Sequence[TriagedAlarm],
        conn: Any = None,
    ) -> list[tuple[float | None, float | None, str | None, dict[str, Any] | None]]:
        """Position (WGS-84), company and site of each decision: from the event, else the registries (account
        site, camera). Two queries for the whole batch."""
        accounts = [self._account_key(t)[1] for t in items if t.event.source.protocol in _DC09]
        cams = [
            t.event.source.device_id
            for t in items
            if t.event.location is None and t.event.source.protocol in _CAMERAS
        ]
        sites = await self.store.account_sites(accounts, conn)
        cameras = await self.store.camera_positions(cams, conn)
        out: list[tuple[float | None, float | None, str | None, dict[str, Any] | None]] = []
        for t in items:
            ev = t.event
            company = None
            site = None
            if ev.source.protocol in _DC09:
                line, account = self._account_key(t)
                candidates = sites.get(account, [])
                rec = None
                if line is None:
                    rec = candidates[0] if candidates else None
                else:  # the registry keeps the line without its "L"; an exact match is the fallback
                    rec = next((r for r in candidates if r["line"] == line.removeprefix("L")), None) or next(
                        (r for r in candidates if r["line"] == line), None
                    )
                if rec is not None:
                    company = rec["company"]
                    site = {"name": rec["site_name"], "address": rec["site_address"]}
                    if ev.location is None and rec["lat"] is not None:
                        out.append((rec["lon"], rec["lat"], company, {**site, "source": "registry"}))
                        continue
            if ev.location is not None:
                out.append((ev.location.lon, ev.location.lat, company, site))
                continue
            cam = cameras.get(ev.source.device_id) if ev.source.protocol in _CAMERAS else None
            if cam is not None and cam["lat"] is not None:
                out.append((cam["lon"], cam["lat"], company, {"name": cam["name"], "source": "registry"}))
                continue
            out.append((None, None, company, site))
        return out

    def _handover(self, kind: str) -> list[str]:
        """External services (119/120) an alarm of this kind is handed to (the unit tree scanned once per kind)."""
        if self._handover_tree is not self.tree:
            self._handover_tree, self._handover_cache = self.tree, {}
        if kind not in self._handover_cache:
            self._handover_cache[kind] = sorted(
                u for u in self.tree.nodes if kind in (self.tree.service_kinds(u) or ())
            )
        return self._handover_cache[kind]

    async def handle_triaged(self, items: Sequence[TriagedAlarm]) -> int:
        """Apply a batch of decisions in order, in one transaction; return how many were new.

        The batch is one partition's, or several partitions' joined by the app's coalescer (each partition's
        decisions in their order; an incident's decisions are all in one partition, keyed by its id).

        Idempotent per (incident id, event id): a decision already applied (a replay after a crash or a
        rebalance) is skipped. The incidents the batch touches are locked first; a concurrent writer of the
        same incident (only possible during a rebalance) makes the claim count or the insert fail, the
        transaction roll back and the pipeline retry the batch, which then skips what the other applied.
        """
        if not items:
            return 0
        stage = self._stage_timer()
        applied: list[tuple[TriagedAlarm, Route, bool]] = []
        changed: dict[uuid.UUID, tuple[str, dict[str, Any]]] = {}  # incident → (change, row as written)
        async with (
            self.store.p.acquire() as conn
        ):  # one connection for the batch: no acquire/release between steps
            stage("pool_wait")
            located = await self._locate_many(items, conn)
            routes = [
                self.router.route(lon, lat) if lon is not None else NO_LOCATION for lon, lat, _, _ in located
            ]
            stage("locate")
            async with conn.transaction():
                await self._apply(conn, items, located, routes, applied, changed, stage)
            stage("commit")
        for t, route, opened in applied:
            if opened:
                self.metrics.routes.labels(route.method.value).inc()
                self.metrics.incidents_opened.labels(t.decision.value).inc()
            log.info(
                "incident_materialized",
                incident_id=str(t.incident_id),
                event_id=str(t.event_id),
                decision=t.decision.value,
                station=route.station,
                route=route.method.value,
            )
        # committed: the consoles see it now, whatever Kafka's state (the rows as written, not read back)
        for change, row in changed.values():
            self.hub.publish(summary(row, self.tree), change)
        stage("push")
        self.kick_publisher()  # incidents.events: the publisher task sends what was committed, in seq order
        return len(applied)

    def kick_publisher(self) -> None:
        """Have the outbox drained to ``incidents.events`` by a background task, so a partition's batch does not
        wait for the broker (the outbox is in PostgreSQL: nothing is lost if the process dies before)."""
        if self._publisher is not None and not self._publisher.done():
            self._publish_again = True
            return
        self._publisher = asyncio.create_task(self._publish_in_background(), name="dispatch:outbox")

    async def _publish_in_background(self) -> None:
        t0 = time.perf_counter()
        try:
            await self.publish_outbox()
        except Exception as exc:  # the timer's sweep retries
            log.warning("outbox_publish_deferred", error=repr(exc))
        self.metrics.batch_stage_seconds.labels("publish").observe(time.perf_counter() - t0)

    async def drain_publisher(self) -> None:
        """Wait for the background publisher (tests, stop)."""
        while self._publisher is not None and not self._publisher.done():
            await asyncio.shield(self._publisher)

    def _stage_timer(self) -> Callable[[str], None]:
        """A function that records the time since its previous call (or creation) under a stage's name."""
        last = time.perf_counter()
        hist = self.metrics.batch_stage_seconds

        def mark(name: str) -> None:
            nonlocal last
            now = time.perf_counter()
            hist.labels(name).observe(now - last)
            last = now

        return mark

    async def _apply(
        self,
        conn: Any,
        items: Sequence[TriagedAlarm],
        located: Sequence[tuple[float | None, float | None, str | None, dict[str, Any] | None]],
        routes: Sequence[Route],
        applied: list[tuple[TriagedAlarm, Route, bool]],
        changed: dict[uuid.UUID, tuple[str, dict[str, Any]]],
        stage: Callable[[str], None],
    ) -> None:
        """The writes of :meth:`handle_triaged`, inside its transaction on ``conn``."""
        rows, done = await self.store.lock_incidents_claimed(
            conn, [(t.incident_id, t.event_id) for t in items]
        )
        stage("lock")
        new_rows: list[dict[str, Any]] = []
        updates: dict[uuid.UUID, dict[str, Any]] = {}
        claims: list[tuple[uuid.UUID, uuid.UUID, str, int, dict[str, Any]]] = []
        audit: list[tuple[dict[str, Any], list[Transition]]] = []
        now = self.clock()
        for t, (lon, lat, company, site), route in zip(items, located, routes, strict=True):
            key = (t.incident_id, t.event_id)
            if key in done:
                self.metrics.replays.inc()
                continue
            done.add(key)
            row = rows.get(t.incident_id)
            opened_now = row is None
            fields, trans = apply_triaged(row, t, route, now, self.policy)
            if row is None:
                if lon is not None and t.event.location is None:
                    fields["location"] = {"lat": lat, "lon": lon, "crs": "WGS84", "source": "registry"}
                    fields["lat"], fields["lon"] = lat, lon
                if site:
                    fields["location"] = {**(fields["location"] or {}), "site": site}
                fields["company"] = company
                handover = self._handover(t.event.kind.value)
                if handover:
                    trans[0].data["handover"] = handover
                new_rows.append(fields)
                row = {**dict.fromkeys(INCIDENT_COLUMNS), **fields}  # as the database will return it
                change = "opened"
            else:
                updates.setdefault(t.incident_id, {}).update(fields)
                row = {**row, **fields}
                change = changed[t.incident_id][0] if t.incident_id in changed else "updated"
            rows[t.incident_id] = row
            changed[t.incident_id] = (change, row)
            claims.append((t.incident_id, t.event_id, t.decision.value, t.score, t.model_dump(mode="json")))
            audit.append((row, trans))
            applied.append((t, route, opened_now))
        # a row opened in this batch and changed again later in it is inserted with its final values
        for r in new_rows:
            r.update(updates.pop(r["id"], {}))
        await self.store.insert_incidents(conn, new_rows)
        await self.store.update_incidents(conn, updates)
        if await self.store.claim_alarms(conn, claims) != len(claims):
            raise RuntimeError("another writer applied part of this batch concurrently; retrying it")
        events = await self.store.append_transitions_many(conn, audit)
        await self._enqueue_webhooks_many(conn, audit, events)
        stage("write")

    # -- webhooks to stations' systems and alarm companies ------------------------------------------
    def _hook_matches(self, kind: str, target: str, row: dict[str, Any]) -> bool:
        if kind == "company":
            return row.get("company") == target
        kinds = self.tree.service_kinds(target)
        if kinds is not None:
            return row.get("kind") in kinds
        return (
            self.tree.is_root(target)
            or self.tree.covers(target, row.get("station"))
            or self.tree.covers(target, row.get("district"))
        )

    async def _enqueue_webhooks(self, conn: Any, row: dict[str, Any], events: Sequence[Any]) -> None:
        """Queue one delivery per (matching webhook, audit event), in the transaction that wrote the event."""
        if not events:
            return
        await self.store.enqueue_deliveries(
            conn, self._deliveries(await self.store.active_webhooks(conn), row, events)
        )

    async def _enqueue_webhooks_many(
        self, conn: Any, audit: Sequence[tuple[dict[str, Any], Sequence[Transition]]], events: Sequence[Any]
    ) -> None:
        """:meth:`_enqueue_webhooks` for a batch: ``events`` are the audit rows of ``audit``, in its order."""
        if not events:
            return
        hooks = await self.store.active_webhooks(conn)
        if not hooks:
            return
        items, i = [], 0
        for row, trans in audit:
            items += self._deliveries(hooks, row, events[i : i + len(trans)])
            i += len(trans)
        await self.store.enqueue_deliveries(conn, items)

    def _deliveries(
        self, all_hooks: Sequence[Any], row: dict[str, Any], events: Sequence[Any]
    ) -> list[tuple[int, str, uuid.UUID, dict[str, Any]]]:
        hooks = [h for h in all_hooks if self._hook_matches(h["target_kind"], h["target"], row)]
        if not hooks or not events:
            return []
        brief = {
            k: row.get(k)
            for k in (
                "station",
                "district",
                "status",
                "kind",
                "priority",
                "decision",
                "verdict",
                "account",
                "source_device_id",
                "company",
            )
        }
        brief["id"] = str(row["id"])
        brief["station_name"] = self.tree.name(row.get("station"))
        items = []
        for ev in events:
            payload = {
                "event": ev.model_dump(mode="json", by_alias=True, exclude_none=True),
                "incident": brief,
            }
            for h in hooks:
                items.append((h["id"], f"{h['id']}:{ev.event_id}", row["id"], payload))
        return items

    async def deliver_due(self, sender: Any, max_attempts: int = 8, concurrency: int = 8) -> int:
        """Attempt every due delivery once (bounded batch); record the outcome, backoff or dead letter."""
        from .webhooks import backoff

        due = await self.store.due_deliveries(50)
        sem = asyncio.Semaphore(concurrency)

        async def one(d: dict[str, Any]) -> None:
            async with sem:
                now = self.clock()
                a = await sender.send(d["url"], d["secret"], d["idempotency_key"], d["payload"], now)
                attempts = d["attempts"] + 1
                if a.delivered:
                    status, next_at = "delivered", None
                elif a.retry and attempts < max_attempts:
                    status, next_at = "pending", now + backoff(attempts)
                else:
                    status, next_at = "dead", None
                    log.warning("webhook_dead_lettered", delivery=d["id"], status=a.status, error=a.error)
                self.metrics.webhook_attempts.labels(status).inc()
                await self.store.record_attempt(d["id"], status, attempts, next_at, a.status, a.error)

        await asyncio.gather(*(one(d) for d in due))
        return len(due)

    # -- outbox → incidents.events ---------------------------------------------------------------
    async def publish_outbox(self) -> int:
        """Send queued lifecycle events (raises PublishError if the broker does not take them).

        One publisher at a time drains the whole outbox. A caller arriving while it runs does not queue
        behind it (six partitions' handlers did, and waited ~70 ms each per batch): it flags that more
        was committed and returns; the running publisher queries again before it lets go. No await lies
        between the flag check and the release, so nothing committed before a caller's return is left
        behind (and the timer's sweep would take it anyway).
        """
        if self._publish_lock.locked():
            self._publish_again = True
            return 0
        total = 0
        async with self._publish_lock:
            for _ in range(100):  # bounded: at most 50k events per call
                self._publish_again = False
                stage = self._stage_timer()
                pending = await self.store.pending_events(500)
                stage("outbox_read")
                if not pending:
                    if self._publish_again:
                        continue
                    break
                await self.producer.send_many([(INCIDENTS_EVENTS, ev, ev.key) for _, ev in pending])
                stage("outbox_send")
                await self.store.mark_published([s for s, _ in pending])
                stage("outbox_mark")
                total += len(pending)
                self.metrics.events_published.inc(len(pending))
        return total

    # -- dispatcher actions ----------------------------------------------------------------------
    async def act(
        self, who: Principal, incident_id: uuid.UUID, action: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        async with self.store.p.acquire() as conn, conn.transaction():
            row = await self.store.get_incident(conn, incident_id, lock=True)
            if row is None or not who.sees(self.tree, row):
                raise NotFound(str(incident_id))
            if not who.can_act:
                raise PermissionError(f"role {who.role} is read-only")
            fields, trans = apply_action(row, action, body, who.actor(), self.clock(), self.policy)
            await self.store.update_incident(conn, incident_id, fields)
            row = {**row, **fields}
            events = await self.store.append_transitions(conn, row, trans)
            await self._enqueue_webhooks(conn, row, events)
        self.metrics.actions.labels(action).inc()
        if row.get("acknowledged_at") and action in ("ack", "on-scene") and row.get("opened_at"):
            self.metrics.ack_seconds.observe((row["acknowledged_at"] - row["opened_at"]).total_seconds())
        log.info(
            "incident_action",
            incident_id=str(incident_id),
            action=action,
            user=who.user,
            status=row["status"],
        )
        out = summary(row, self.tree)
        self.hub.publish(out, action)
        try:
            await self.publish_outbox()
        except Exception as exc:  # the sweeper retries; the action itself is committed
            log.warning("outbox_publish_deferred", error=repr(exc))
        return out

    async def vehicle_command(
        self, who: Principal, incident_id: uuid.UUID, command: str, params: dict[str, Any], timeout_s: float
    ) -> dict[str, Any]:
        """Forward a command to the incident's vehicle and record it, with the terminal's answer, on the timeline."""
        row = await self.store.get_incident(None, incident_id)
        if row is None or not who.sees(self.tree, row):
            raise NotFound(str(incident_id))
        if not who.can_act:
            raise PermissionError(f"role {who.role} is read-only")
        device = row.get("source_device_id")
        if not device or self.commands is None:
            raise ActionError("this incident has no vehicle to command")
        protocol = row.get("protocol") or "jt808"
        allowed = COMMANDS_BY_PROTOCOL.get(protocol)
        if allowed is None:
            raise ActionError(f"a {protocol} device takes no vehicle commands")
        if command not in allowed:
            raise ActionError(f"a {protocol} vehicle takes {', '.join(allowed)}, not {command}")
        platform = None
        if protocol == "jt809":
            platform, params = await self._platform_request(incident_id, who, command, params)
        reply = await self.commands.send(
            device,
            command,
            params,
            timeout_s,
            protocol=protocol if protocol == "jt809" else None,
            platform=platform,
        )
        async with self.store.p.acquire() as conn, conn.transaction():
            row = await self.store.get_incident(conn, incident_id, lock=True)
            assert row is not None
            trans = Transition(
                IncidentEventType.UPDATED,
                IncidentStatus(row["status"]),
                who.actor(),
                self.clock(),
                data={
                    "vehicle_command": {
                        "command": command,
                        "params": params,
                        "device_id": device,
                        "reply": reply,
                    }
                },
            )
            await self.store.append_transitions(conn, row, [trans])
        self.metrics.actions.labels(f"vehicle_{command}").inc()
        log.info(
            "vehicle_command",
            incident_id=str(incident_id),
            command=command,
            user=who.user,
            status=reply.get("status"),
        )
        try:
            await self.publish_outbox()
        except Exception as exc:  # the sweeper retries; the record itself is committed
            log.warning("outbox_publish_deferred", error=repr(exc))
        return {"incident_id": str(incident_id), "device_id": device, "command": command, "reply": reply}

    async def vehicle_answers(self, items: Sequence[DeviceStatus]) -> int:
        """Late answers to vehicle commands (``devices.status`` with ``attributes.jt809_supervision_answer``)
        → an ``updated`` transition on the vehicle's most recent open incident; returns how many were added.

        A 0x9401 supervision runs for an hour and platforms answer "processing" first and "handled" later,
        after the HTTP reply of ``vehicle_command`` is long gone. The transition's event id is derived from
        the status event's id, so a replayed status (redelivery, a second consumer) adds nothing — neither
        a timeline entry, nor an ``incidents.events`` record, nor a webhook delivery."""
        added = 0
        for s in items:
            answer = s.attributes.get(SUPERVISION_ANSWER)
            if not isinstance(answer, dict):
                continue
            async with self.store.p.acquire() as conn, conn.transaction():
                incident_id = await conn.fetchval(
                    "SELECT id FROM incidents WHERE source_device_id = $1 AND status <> 'closed'"
                    " ORDER BY opened_at DESC LIMIT 1",
                    s.device_id,
                )
                row = await self.store.get_incident(conn, incident_id, lock=True) if incident_id else None
                if row is None or row["status"] == IncidentStatus.CLOSED.value:
                    log.info(
                        "vehicle_answer_without_incident", device_id=s.device_id, event_id=str(s.event_id)
                    )
                    continue
                trans = Transition(
                    IncidentEventType.UPDATED,
                    IncidentStatus(row["status"]),
                    GPS_GATEWAY,
                    s.occurred_at,
                    data={
                        "vehicle_command_answer": {
                            **answer,
                            "command": "supervise",
                            "device_id": s.device_id,
                            "protocol": s.protocol.value,
                            "status_event_id": str(s.event_id),
                        }
                    },
                )
                ev = await self.store.append_transition_once(
                    conn, row, trans, uuid.uuid5(_ANSWER_NS, str(s.event_id))
                )
                if ev is not None:  # the station's system hears of it as of every other transition
                    await self._enqueue_webhooks(conn, row, [ev])
            if ev is not None:
                added += 1
                self.metrics.actions.labels("vehicle_answer").inc()
                log.info(
                    "vehicle_answer",
                    incident_id=str(row["id"]),
                    device_id=s.device_id,
                    result=answer.get("result_text"),
                )
        if added:
            try:
                await self.publish_outbox()
            except Exception as exc:  # the sweeper retries; the record itself is committed
                log.warning("outbox_publish_deferred", error=repr(exc))
        return added

    async def _platform_request(
        self, incident_id: uuid.UUID, who: Principal, command: str, params: dict[str, Any]
    ) -> tuple[str | None, dict[str, Any]]:
        """The JT/T 809 platform that forwarded the incident's latest alarm, and the request's defaults.

        A supervision (0x9401) names the alarm it supervises: its type (the alarm's ``code``, e.g.
        ``theft``, or ``attributes.warn_type``), its time and the dispatcher asking.
        """
        alarms = await self.store.incident_alarms(incident_id)
        event: dict[str, Any] = {}
        for a in reversed(alarms):
            ev = (a.get("triaged") or {}).get("event") or {}
            if (ev.get("source") or {}).get("protocol") == "jt809":
                event = ev
                break
        platform = (event.get("source") or {}).get("platform")
        if command == "supervise":
            attrs = event.get("attributes") or {}
            defaults = {
                "warn_type": attrs.get("warn_type", event.get("code")),
                "warn_time": event.get("occurred_at"),
                "supervisor": who.user,
            }
            params = {**{k: v for k, v in defaults.items() if v is not None}, **params}
        return platform, params

    # -- escalation timers ------------------------------------------------------------------------
    async def escalate_due(self) -> int:
        now = self.clock()
        n = 0
        for iid in await self.store.due_escalations(now):
            async with self.store.p.acquire() as conn, conn.transaction():
                row = await self.store.get_incident(conn, iid, lock=True)
                if row is None or row["escalate_at"] is None or row["escalate_at"] > now:
                    continue
                try:
                    fields, trans = apply_escalation(row, now, self.policy)
                except ActionError:
                    await self.store.update_incident(conn, iid, {"escalate_at": None})
                    continue
                await self.store.update_incident(conn, iid, fields)
                row = {**row, **fields}
                events = await self.store.append_transitions(conn, row, trans)
                await self._enqueue_webhooks(conn, row, events)
            n += 1
            self.metrics.escalations.labels(str(row["escalation_level"])).inc()
            log.info("incident_escalated", incident_id=str(iid), level=row["escalation_level"])
            self.hub.publish(summary(row, self.tree), "escalated")
        return n
