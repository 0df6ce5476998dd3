"""Dispatch's core operations, between the I/O shells (consumer, HTTP) and the pure rules.

- :meth:`Dispatcher.handle_triaged` materializes incidents from ``alarms.triaged`` (idempotent by
  (incident_id, event_id)), locating and routing each one;
- :meth:`Dispatcher.act` applies a dispatcher's action;
- :meth:`Dispatcher.escalate_due` fires the escalation timers kept in the database.

Around it, one job each: the live stream's fan-out (``hub.py``), the outbox publisher to
``incidents.events`` (``outbox.py``), webhook deliveries (``deliveries.py``) and vehicle commands
(``vehicles.py``).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from alarmhub_events import DeviceStatus, IncidentEvent, Protocol, TriagedAlarm, utcnow
from alarmhub_kafka import DurableProducer
from alarmhub_runtime import TrustedProxies, get_logger

from . import vehicles
from .auth import Principal
from .cutoff import CutoffPolicy
from .deliveries import Deliveries
from .errors import Forbidden, Invalid, NotFound
from .hub import Hub
from .lifecycle import (
    ActionError,
    Policy,
    Transition,
    apply_action,
    apply_escalation,
    apply_triaged,
)
from .login_guard import LoginGuard
from .metrics import DispatchMetrics, stage_timer
from .oidc import OidcClient
from .outbox import OutboxPublisher
from .routing import NO_LOCATION, Route, Router
from .store import INCIDENT_COLUMNS, Store
from .units import UnitTree
from .vehicle_commands import VehicleCommands
from .views import summary

__all__ = ["Dispatcher", "Hub", "NotFound", "summary"]

log = get_logger("alarmhub.dispatch")

_DC09 = {Protocol.DC09_CID, Protocol.DC09_SIA}
_CAMERAS = {Protocol.GB28181, Protocol.ISAPI, Protocol.ONVIF, Protocol.WEBHOOK}


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
        self.outbox = OutboxPublisher(store, producer, metrics)
        self.deliveries = Deliveries(store, lambda: self.tree, metrics, lambda: self.clock())
        self.commands: VehicleCommands | None = None  # set by the app: ingest-gps's command endpoint
        self.cutoff_policy = CutoffPolicy()  # set by the app: ALARMHUB_CUTOFF_* (cutoff.py)
        self.login_ttl_s = 8 * 3600  # set by the app: ALARMHUB_LOGIN_TTL_S, how long a sign-in lasts
        self.login_guard = LoginGuard()  # login backoff and rate limits (login_guard.py)
        self.totp_required = "supervisors"  # set by the app: ALARMHUB_TOTP_REQUIRED (routes/totp.py)
        self.totp_issuer = "alarmhub"  # set by the app: ALARMHUB_TOTP_ISSUER
        self.oidc: OidcClient | None = None  # set by the app when ALARMHUB_OIDC_ISSUER is (routes/oidc.py)
        self.trusted_proxies = TrustedProxies()  # set by the app: ALARMHUB_DISPATCH_TRUSTED_PROXIES
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
        stage = stage_timer(self.metrics.batch_stage_seconds)
        applied: list[tuple[TriagedAlarm, Route, bool]] = []
        changed: dict[uuid.UUID, tuple[str, dict[str, Any]]] = {}  # incident → (change, row as written)
        async with (
            self.store.p.acquire() as conn
        ):  # one connection for the batch: no acquire/release between steps
            stage("pool_wait")
            located = await self._locate_many(items, conn)
            routes = [
                self._with_site(self.router.route(lon, lat), lon, lat) if lon is not None else NO_LOCATION
                for lon, lat, _, _ in located
            ]
            stage("locate")
            async with conn.transaction():
                queued = await self._apply(conn, items, located, routes, applied, changed, stage)
            stage("commit")
            self.outbox.remember(queued)  # committed: the outbox's drain sends these without reading them
        by_method: Counter[str] = Counter()
        by_decision: Counter[str] = Counter()
        for t, route, opened in applied:
            if opened:
                by_method[route.method.value] += 1
                by_decision[t.decision.value] += 1
            log.info(
                "incident_materialized",
                incident_id=str(t.incident_id),
                event_id=str(t.event_id),
                decision=t.decision.value,
                station=route.station,
                route=route.method.value,
            )
        for method, n in by_method.items():  # one label look-up per value and batch, not per incident
            self.metrics.routes.labels(method).inc(n)
        for decision, n in by_decision.items():
            self.metrics.incidents_opened.labels(decision).inc(n)
        # committed: the consoles see it now, whatever Kafka's state (the rows as written, not read back)
        for change, row in changed.values():
            self.hub.publish(summary(row, self.tree), change)
        stage("push")
        self.outbox.kick()  # incidents.events: the publisher task sends what was committed, in seq order
        return len(applied)

    def _with_site(self, route: Route, lon: float | None, lat: float | None) -> Route:
        """The route plus the grassroots site whose area holds the point (the station stays responsible)."""
        site = self.tree.site_at(lon, lat, route.station)
        return dataclasses.replace(route, site=site) if site else route

    async def _apply(
        self,
        conn: Any,
        items: Sequence[TriagedAlarm],
        located: Sequence[tuple[float | None, float | None, str | None, dict[str, Any] | None]],
        routes: Sequence[Route],
        applied: list[tuple[TriagedAlarm, Route, bool]],
        changed: dict[uuid.UUID, tuple[str, dict[str, Any]]],
        stage: Callable[[str], None],
    ) -> list[tuple[int, IncidentEvent]]:
        """The writes of :meth:`handle_triaged`, inside its transaction on ``conn``; returns the audit events
        queued in the outbox, with their seqs."""
        rows, done = await self.store.lock_incidents_claimed(
            conn, [(t.incident_id, t.event_id) for t in items]
        )
        stage("lock")
        new_rows: list[dict[str, Any]] = []
        updates: dict[uuid.UUID, dict[str, Any]] = {}
        claims: list[tuple[uuid.UUID, uuid.UUID, str, int, str]] = []
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
            # the decision as JSON text, serialized once by pydantic (the same jsonb as model_dump + json.dumps)
            claims.append((t.incident_id, t.event_id, t.decision.value, t.score, t.model_dump_json()))
            audit.append((row, trans))
            applied.append((t, route, opened_now))
        # a row opened in this batch and changed again later in it is inserted with its final values
        for r in new_rows:
            r.update(updates.pop(r["id"], {}))
        await self.store.insert_incidents(conn, new_rows)
        await self.store.update_incidents(conn, updates)
        # each claim carries its incident's district as the batch leaves it (else a trigger looks it up per row)
        districts = [rows[c[0]]["district"] or "" for c in claims]
        written = await self.store.claim_and_append(conn, claims, audit, districts)
        if written.claimed != len(claims):
            raise RuntimeError("another writer applied part of this batch concurrently; retrying it")
        await self.deliveries.enqueue_many(conn, audit, written.events, written.webhooks)
        stage("write")
        return list(zip(written.seqs, written.events, strict=True))

    # -- what other modules do, for the app and the timers --------------------------------------
    async def publish_outbox(self) -> int:
        """Drain the outbox to ``incidents.events`` now (:meth:`.outbox.OutboxPublisher.publish`)."""
        return await self.outbox.publish()

    async def drain_publisher(self) -> None:
        """Wait for the background outbox publisher (tests, stop)."""
        await self.outbox.drain()

    async def deliver_due(self, sender: Any, max_attempts: int = 8, concurrency: int = 8) -> int:
        return await self.deliveries.deliver_due(sender, max_attempts, concurrency)

    async def vehicle_command(
        self, who: Principal, incident_id: uuid.UUID, command: str, params: dict[str, Any], timeout_s: float
    ) -> dict[str, Any]:
        return await vehicles.vehicle_command(self, who, incident_id, command, params, timeout_s)

    async def vehicle_answers(self, items: Sequence[DeviceStatus]) -> int:
        return await vehicles.vehicle_answers(self, items)

    # -- dispatcher actions ----------------------------------------------------------------------
    async def act(
        self, who: Principal, incident_id: uuid.UUID, action: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        async with self.store.p.acquire() as conn, conn.transaction():
            row = await self.store.get_incident(conn, incident_id, lock=True)
            if row is None or not who.sees(self.tree, row):
                raise NotFound()
            if not who.can_act:
                raise Forbidden(f"role {who.role} is read-only")
            try:
                fields, trans = apply_action(
                    row, action, body, who.actor(), self.clock(), self.policy, self.tree.emergency_services()
                )
            except ValueError as exc:  # a value the rules refuse (ActionError: the state refuses the action)
                raise Invalid(str(exc)) from None
            await self.store.update_incident(conn, incident_id, fields)
            row = {**row, **fields}
            events = await self.store.append_transitions(conn, row, trans)
            await self.deliveries.enqueue(conn, row, events)
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
        await self.outbox.publish_soon()  # the sweeper retries a failure; the action itself is committed
        return out

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
                await self.deliveries.enqueue(conn, row, events)
            n += 1
            self.metrics.escalations.labels(str(row["escalation_level"])).inc()
            log.info("incident_escalated", incident_id=str(iid), level=row["escalation_level"])
            self.hub.publish(summary(row, self.tree), "escalated")
        return n
