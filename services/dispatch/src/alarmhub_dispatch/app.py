"""Wiring of the dispatch service: the only module that knows every part.

Start: schema → units (the demo geography when the table is empty) → router → dev token →
producer → ``alarms.triaged`` consumer (group ``dispatch``), ``telemetry.gps`` (``dispatch-tracks``),
``devices.status`` (``dispatch-devices``), the group-less tail of ``incidents.events`` (live streams) →
HTTP server → timers (escalation,
outbox sweep). Stop in reverse: stop accepting HTTP, close live streams, stop consuming (the batch in
hand commits), stop timers, flush the producer, close the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import uvicorn
from alarmhub_events import (
    ALARMS_TRIAGED,
    DEVICES_STATUS,
    INCIDENTS_EVENTS,
    TELEMETRY_GPS,
    DeviceStatus,
    IncidentEvent,
    TriagedAlarm,
)
from alarmhub_kafka import (
    Coalescer,
    ConsumerPipeline,
    DurableProducer,
    KafkaMetrics,
    KafkaSecurity,
    Message,
    TopicTail,
)
from alarmhub_redis import connect_redis, redis_address
from alarmhub_runtime import HealthServer, TrustedProxies, get_logger
from alarmhub_store import migrate
from prometheus_client import CollectorRegistry

from .api import build_api
from .auth import hash_token
from .backup import ReadOnlyGate
from .basemap import add_map_routes
from .camera_catalog import CameraCatalog
from .config import DispatchSettings, oidc_client
from .cutoff import CutoffPolicy
from .demo_geo import demo_units, external_services
from .devices import DeviceStatusStore
from .hub import EventHead, event_head
from .lifecycle import Policy
from .media_relay import MediaRelay
from .metrics import DispatchMetrics
from .owner_notify import OwnerNotifier
from .precedence import AlarmPrecedence
from .routing import Router
from .service import Dispatcher
from .store import Store
from .store.read_only import ReadOnlyStore
from .tracks import RawRecord, TrackStore
from .units import UnitTree
from .vehicle_commands import VehicleCommands
from .views import summary
from .webhooks import TargetPolicy, WebhookSender

#: ``api_tokens.created_by`` of the dev stack's token
DEV_TOKEN_CREATOR = "ALARMHUB_DEV_TOKEN"

__all__ = ["DispatchApp"]

log = get_logger("alarmhub.dispatch")


class _Server(uvicorn.Server):
    """uvicorn without its own SIGINT/SIGTERM handlers: ``run_service`` owns the signals and the stop order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class DispatchApp:
    def __init__(
        self,
        settings: DispatchSettings,
        registry: CollectorRegistry,
        *,
        gps_transport: httpx.AsyncBaseTransport | None = None,
        owner_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self._owner_transport = owner_transport
        self.owners: OwnerNotifier | None = None
        self.metrics = DispatchMetrics(registry)
        self.kafka_metrics = KafkaMetrics(registry)
        self.store = (
            ReadOnlyStore(settings.database_url, max_size=settings.db_pool_size)
            if settings.read_only
            else Store(settings.database_url, max_size=settings.db_pool_size)
        )
        self.producer = DurableProducer.from_settings(
            settings, metrics=self.kafka_metrics, client_id="dispatch"
        )
        self.policy = Policy(
            ack_timeout_s=settings.ack_timeout_s, district_timeout_s=settings.district_timeout_s
        )
        self.vehicle_commands = VehicleCommands(
            settings.gps_command_url,
            transport=gps_transport,
            redis=connect_redis(redis_address(settings), timeout_s=2)
            if settings.gps_command_routing
            else None,
            prefix=settings.gps_key_prefix,
            lookups=self.metrics.gps_owner_lookups,
            platform_user=self._platform_user,
            token=settings.gps_command_token.get_secret_value(),
        )
        self.dispatcher: Dispatcher | None = None
        self.consumer: ConsumerPipeline | None = None
        self.gps_consumer: ConsumerPipeline | None = None
        self.devices_consumer: ConsumerPipeline | None = None
        self.devices: DeviceStatusStore | None = None
        self.stream_feed: TopicTail | None = None
        self.tracks: TrackStore | None = None
        self.server: uvicorn.Server | None = None
        self._server_task: asyncio.Task[None] | None = None
        self._timer_task: asyncio.Task[None] | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self.sender = WebhookSender(
            timeout_s=settings.webhook_timeout_s, policy=TargetPolicy(settings.webhook_allow_networks)
        )
        token = settings.camera_command_token
        self.camera_catalog = CameraCatalog(
            settings.camera_command_url, token.get_secret_value() if token is not None else None
        )
        self.relay = MediaRelay(
            max_streams=settings.live_max_streams,
            max_viewers=settings.live_max_viewers,
            token_ttl_s=settings.live_token_ttl_s,
            transcode=settings.live_transcode,
            on_change=self.metrics.live_relays.set,
        )
        self.precedence = AlarmPrecedence(settings.gps_yield_max_s, self.metrics.gps_yield_seconds)
        # the partitions of a poll hand over their decisions together: one transaction for all of them
        self._triaged: Coalescer[TriagedAlarm] | None = (
            Coalescer(self._apply_triaged) if settings.coalesce else None
        )
        # and their fixes: one statement for a poll's partitions (telemetry.gps has 12), one at a time
        self._fixes: Coalescer[bytes] = Coalescer(self._store_fixes)

    def add_checks(self, health: HealthServer) -> None:
        health.add_check("http", lambda: self.server is not None and self.server.started)
        health.add_check("postgres", self._pg_ok)
        if self.settings.read_only:
            return  # a district backup has no Kafka parts
        health.add_check("kafka_producer", self.producer.ready)
        health.add_check("triaged_consumer", lambda: self.consumer is not None and self.consumer.ready())
        health.add_check("gps_consumer", lambda: self.gps_consumer is not None and self.gps_consumer.ready())
        health.add_check(
            "devices_consumer", lambda: self.devices_consumer is not None and self.devices_consumer.ready()
        )
        health.add_check("stream_feed", lambda: self.stream_feed is not None and self.stream_feed.ready())

    async def _pg_ok(self) -> bool:
        try:
            return self.store.pool is not None and await self.store.ping()
        except Exception:
            return False

    async def _platform_user(self, name: str) -> int | None:
        """The user id of the JT/T 809 platform registered under ``name`` (its link's ownership key)."""
        return await self.store.registry.platform_user(name)

    def _build_http(self) -> Any:
        assert self.dispatcher is not None
        app = build_api(self.dispatcher, self.tracks, devices=self.devices)
        add_map_routes(app, self.settings)  # base map config and offline tiles (basemap.py)
        app.state.relay = self.relay  # live view (routes/live.py)
        app.state.camera_catalog = self.camera_catalog  # a GB/T 28181 camera's channels (routes/live.py)
        app.state.cameras_near_m = self.settings.cameras_near_m
        district = self.settings.backup_district
        if self.settings.read_only and district is not None:
            app.state.backup_district = district
            app.add_middleware(ReadOnlyGate, district=district)  # outermost: before the body and the token
        return app

    @property
    def http_port(self) -> int | None:
        """The bound API port (useful with ``ALARMHUB_HTTP_PORT=0``)."""
        if self.server is None or not self.server.servers:
            return None
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    async def _dev_token(self, tree: UnitTree) -> None:
        """The dev stack's city supervisor token: only in dev mode (settings refuse it otherwise), expiring,
        and revoked by the next start that does not name it (the row outlived the variable before)."""
        s = self.settings
        keep = hash_token(s.dev_token) if s.dev_token else None
        revoked = await self.store.revoke_dev_tokens(DEV_TOKEN_CREATOR, keep)
        if revoked:
            log.warning("dev_token_revoked", count=revoked)
        if not s.dev_token:
            return
        # The city is the root over the most units: a dev or test database may hold stray roots.
        roots = [u for u in tree.nodes.values() if u.parent_id is None]
        root = max(roots, key=lambda u: (len(tree.subtree(u.id)), u.id), default=None)
        if root is None:
            return
        expires = datetime.now(UTC) + timedelta(seconds=s.dev_token_ttl_s)
        await self.store.put_token(
            hash_token(s.dev_token), "dev-admin", "supervisor", root.id, None, {}, DEV_TOKEN_CREATOR, expires
        )
        log.info("dev_token_enabled", user="dev-admin", unit=root.id, expires_at=expires.isoformat())

    async def start_backup(self) -> None:
        """A district backup (backup.py): the copy's unit tree and the HTTP server, nothing that writes."""
        s = self.settings
        await self.store.start()
        tree = UnitTree(await self.store.load_units())
        if s.backup_district not in tree.nodes or tree.tier(s.backup_district) != 2:
            raise RuntimeError(
                f"ALARMHUB_BACKUP_DISTRICT={s.backup_district!r} is no district in the copy's units"
            )
        router = tree.router(max_distance_m=s.route_max_distance_m, grid_cell_m=None)
        self.dispatcher = Dispatcher(self.store, tree, router, self.producer, self.metrics, self.policy)
        self.dispatcher.login_ttl_s = s.login_ttl_s
        self.dispatcher.trusted_proxies = TrustedProxies(s.trusted_proxies)
        self.tracks = TrackStore(self.dispatcher)
        await self._start_http()
        log.warning("district_backup_serving", district=s.backup_district, units=len(tree.nodes))

    async def start(self) -> None:
        s = self.settings
        if s.read_only:
            await self.start_backup()
            return
        if s.migrate:
            await migrate(s.database_url)
        await self.store.start()
        tree, router = await self._load_jurisdictions()
        await self._dev_token(tree)
        await self.producer.start()
        self.dispatcher = Dispatcher(self.store, tree, router, self.producer, self.metrics, self.policy)
        self.dispatcher.commands = self.vehicle_commands
        self.dispatcher.login_ttl_s = s.login_ttl_s
        self.dispatcher.totp_required = s.totp_required
        self.dispatcher.totp_issuer = s.totp_issuer
        self.dispatcher.cutoff_policy = CutoffPolicy(s.cutoff_max_speed_kmh, s.cutoff_fix_max_age_s)
        self.dispatcher.oidc = oidc_client(s, self.store.oidc_logins)
        self.dispatcher.trusted_proxies = TrustedProxies(s.trusted_proxies)
        self.owners = OwnerNotifier(
            self.dispatcher,
            hook_url=s.owner_hook_url,
            transport=self._owner_transport,
            track_interval_s=s.owner_track_interval_s,
        )
        feeds = self._build_consumers()
        self.tracks = TrackStore(self.dispatcher)
        await self.tracks.ensure_partitions(self.dispatcher.clock())
        await asyncio.gather(*(f.start() for f in feeds), self._build_route_grid(router))
        await self._start_http()
        self._timer_task = asyncio.create_task(self._timers(), name="dispatch:timers")
        self._webhook_task = asyncio.create_task(self._webhooks(), name="dispatch:webhooks")

    async def _load_jurisdictions(self) -> tuple[UnitTree, Router]:
        """The unit tree from PostgreSQL (the demo geography first when the table is empty) and its router."""
        s = self.settings
        if s.load_demo_geography and await self.store.station_areas() == 0:
            t0 = time.monotonic()
            n = await self.store.insert_units(demo_units(s.demo_seed, s.demo_stations))
            log.info(
                "demo_geography_loaded", units=n, seconds=round(time.monotonic() - t0, 2), synthetic=True
            )
        if s.load_demo_geography:
            # the demo city's 119/120; a real city imports its own (`alarmhub-admin import external-units`)
            await self.store.insert_units(external_services())
        tree = UnitTree(await self.store.load_units())
        # the lookup grid is built below, in a thread, while the consumers join their groups
        router = tree.router(
            max_distance_m=s.route_max_distance_m,
            district_distance_m=s.route_district_distance_m,
            grid_cell_m=None,
        )
        log.info("jurisdictions_loaded", units=len(tree.nodes), stations=len(router.stations))
        return tree, router

    def _build_consumers(self) -> list[ConsumerPipeline | TopicTail]:
        """The three consumer groups and the group-less tail of ``incidents.events`` (started together)."""
        s = self.settings
        assert self.dispatcher is not None
        self.consumer = ConsumerPipeline.from_settings(
            s,
            topics=[ALARMS_TRIAGED],
            model=TriagedAlarm,
            handler=self.handle,
            producer=self.producer,
            metrics=self.kafka_metrics,
            client_id="dispatch",
            max_records=s.max_records,
        )
        self.gps_consumer = ConsumerPipeline.from_settings(
            s,
            group_suffix="-tracks",
            topics=[TELEMETRY_GPS],
            model=RawRecord,  # not parsed: PostgreSQL reads and checks them (TrackStore.handle_records)
            handler=self.handle_gps,
            producer=self.producer,
            metrics=self.kafka_metrics,
            client_id="dispatch-tracks",
            max_records=s.gps_batch,
            max_concurrency=s.gps_concurrency,
            fetch_max_wait_ms=s.side_fetch_wait_ms,
            fetch_min_bytes=s.gps_fetch_min_bytes,
        )
        # both group joins at once: each waits for the broker's rebalance delay
        d = self.dispatcher
        self.devices = DeviceStatusStore(self.store, lambda: d.tree, lambda: d.router)
        self.devices_consumer = ConsumerPipeline.from_settings(
            s,
            group_suffix="-devices",
            topics=[DEVICES_STATUS],
            model=DeviceStatus,
            handler=self.handle_devices,
            producer=self.producer,
            metrics=self.kafka_metrics,
            client_id="dispatch-devices",
            max_records=1000,
            fetch_max_wait_ms=s.side_fetch_wait_ms,
        )
        # every replica tails incidents.events (no group): its live streams then show what other replicas changed
        self.stream_feed = TopicTail(
            bootstrap=s.kafka_bootstrap,
            topic=INCIDENTS_EVENTS,
            model=IncidentEvent,
            decode=event_head,  # the three fields the handler reads: no full validation per event
            handler=self.handle_incident_events,
            topic_prefix=s.topic_prefix,
            client_id="dispatch-stream",
            security=KafkaSecurity.from_settings(s),
        )
        return [self.consumer, self.gps_consumer, self.devices_consumer, self.stream_feed]

    async def _start_http(self) -> None:
        """The API server; returns once it listens (raises if it stopped at start)."""
        s = self.settings
        config = uvicorn.Config(
            self._build_http(),
            host=s.http_host,
            port=s.http_port,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        self.server = _Server(config)
        self._server_task = asyncio.create_task(self.server.serve(), name="dispatch:http")
        for _ in range(200):
            if self.server.started or self._server_task.done():
                break
            await asyncio.sleep(0.05)
        if self._server_task.done():
            self._server_task.result()
            raise RuntimeError("HTTP server stopped at start")
        log.info("http_started", port=self.http_port, host=s.http_host)

    async def _build_route_grid(self, router: Router) -> None:
        """The router's lookup grid, off the event loop; lookups before it is in place take the exact path."""
        if self.settings.route_grid_cell_m > 0:
            stats = await asyncio.to_thread(router.build_grid, self.settings.route_grid_cell_m)
            log.info("route_grid_built", **stats)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.dispatcher is not None:
            self.dispatcher.hub.close()
            if self.dispatcher.oidc is not None:
                await self.dispatcher.oidc.close()
        if self._server_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server_task, 5)
        if self.stream_feed is not None:
            await self.stream_feed.stop()
        for consumer in (self.consumer, self.gps_consumer, self.devices_consumer):
            if consumer is not None:
                await consumer.stop()
        for task in (self._timer_task, self._webhook_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.dispatcher is not None and not self.settings.read_only:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.dispatcher.drain_publisher(), 10)
            await self.dispatcher.outbox.close()  # another replica takes over the outbox
        await self.relay.stop_all()  # no ffmpeg outlives the service
        await self.camera_catalog.close()
        await self.sender.aclose()
        if self.owners is not None:
            await self.owners.close()
        await self.vehicle_commands.close()
        await self.producer.stop()
        await self.store.stop()

    async def handle(self, msgs: Sequence[Message[Any]]) -> None:
        """One partition's batch of triage decisions → incidents (the pipeline commits afterwards).

        With ``ALARMHUB_DISPATCH_COALESCE`` (the default) the batches that the poll's other partitions hand
        over at the same moment join it in one transaction (:class:`alarmhub_kafka.Coalescer`); each
        partition's order is kept, and this returns only once that transaction committed.
        """
        items = [m.value for m in msgs]
        if self._triaged is not None:
            await self._triaged.submit(items)
        else:
            await self._apply_triaged(items)

    async def _apply_triaged(self, items: Sequence[TriagedAlarm]) -> None:
        assert self.dispatcher is not None
        t0 = time.monotonic()
        async with self.precedence.alarm():
            await self.dispatcher.handle_triaged(items)
        self.metrics.batch_seconds.observe(time.monotonic() - t0)
        if self.owners is not None:
            await self.owners.handle(items)  # after the incidents exist; slow parts run in the background

    async def handle_gps(self, msgs: Sequence[Message[Any]]) -> None:
        """Fixes → ``tracks``; vehicles with open incidents are followed and re-routed."""
        await self._fixes.submit([m.value for m in msgs])  # the records' bytes (tracks.RawRecord)

    async def _store_fixes(self, records: Sequence[bytes]) -> None:
        assert self.tracks is not None
        await self.precedence.yield_to_alarms()  # the alarm path first (docs/dispatch.md, precedence.py)
        await self.tracks.handle_records(records)

    async def handle_devices(self, msgs: Sequence[Message[Any]]) -> None:
        """``devices.status`` → the last status per device (online-rate reports), and late answers to
        vehicle commands → the vehicle's open incident."""
        assert self.devices is not None and self.dispatcher is not None
        items = [m.value for m in msgs]
        await self.devices.handle(items)
        await self.dispatcher.vehicle_answers(items)

    async def handle_incident_events(self, events: Sequence[EventHead]) -> None:
        """Changes from ``incidents.events`` (any replica's) → this replica's live streams, once per version."""
        d = self.dispatcher
        if d is None or not len(d.hub):
            return
        # only incidents changed after the version this replica pushed (its own writes were pushed at commit)
        change = {e.incident_id: e.type for e in events if not d.hub.pushed_since(str(e.incident_id), e.at)}
        if not change:
            return
        rows = await self.store.list_incidents("id = ANY($1::uuid[])", [list(change)], len(change))
        for row in rows:
            d.hub.publish_if_new(summary(row, d.tree), change[row["id"]])

    async def _webhooks(self) -> None:
        """Deliver due webhooks; its own task, so a slow receiver never delays escalation."""
        assert self.dispatcher is not None
        while True:
            await asyncio.sleep(self.settings.timer_interval_s)
            try:
                for _ in range(20):  # bounded: at most 1,000 attempts per tick
                    if (
                        await self.dispatcher.deliver_due(self.sender, self.settings.webhook_max_attempts)
                        < 50
                    ):
                        break
            except Exception as exc:
                log.warning("webhook_tick_failed", error=repr(exc))

    async def _timers(self) -> None:
        """Escalation deadlines and the outbox sweep; both state lives in PostgreSQL (restart-safe)."""
        assert self.dispatcher is not None and self.tracks is not None
        last_maintenance = 0.0
        while True:
            await asyncio.sleep(self.settings.timer_interval_s)
            try:
                await self.dispatcher.escalate_due()
                await self.dispatcher.publish_outbox()
                if time.monotonic() - last_maintenance > 300:
                    last_maintenance = time.monotonic()
                    now = self.dispatcher.clock()
                    await self.tracks.ensure_partitions(now)
                    dropped = await self.tracks.expire(now)
                    if dropped:
                        log.info("track_partitions_dropped", count=dropped)
            except Exception as exc:  # never let a timer problem kill the service
                log.warning("timer_tick_failed", error=repr(exc))
