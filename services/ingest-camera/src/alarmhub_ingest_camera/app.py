"""Wiring of the camera ingest service: the only module that knows every part.

Start: producer → registry → Redis → HTTP (uvicorn) → SIP (UDP+TCP) → command endpoint (when a token is
set) → ONVIF subscriptions → liveness sweep.
Stop, in the order the style guide asks: stop accepting (HTTP, commands, SIP, ONVIF), drain the SIP queue,
flush the producer, close the registry and Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import uvicorn
from alarmhub_kafka import DurableProducer, KafkaMetrics, PublishError
from alarmhub_redis import connect_redis, redis_address
from alarmhub_runtime import HealthServer, get_logger
from alarmhub_store import RegistryListener
from prometheus_client import CollectorRegistry

from .catalog import CatalogQueries
from .commands import build_command_app
from .config import CameraSettings
from .http import IdempotencyStore, build_http_app
from .ingest import CameraIngest
from .metrics import CameraMetrics
from .noise import NoiseGate
from .protocols.gb28181 import Gb28181Registrar
from .registry import CameraRegistry
from .sip import SipServer
from .subscriptions import OnvifSubscriptionManager

__all__ = ["CameraApp"]

log = get_logger("alarmhub.ingest_camera")


class CameraApp:
    def __init__(
        self,
        settings: CameraSettings,
        registry: CollectorRegistry,
        *,
        producer: DurableProducer | None = None,
        onvif_transport: Any = None,
    ) -> None:
        """The service's shape: settings and the Prometheus registry (tests may hand in their producer)."""
        metrics = CameraMetrics(registry)
        if producer is None:
            producer = DurableProducer.from_settings(
                settings, metrics=KafkaMetrics(registry), client_id="ingest-camera"
            )
        self.settings = settings
        self.producer = producer
        self.metrics = metrics
        self.registry = CameraRegistry(settings.database_url, ttl_s=settings.registry_cache_s)
        # dispatch's NOTIFY on every cameras write empties the lookup cache (hits and misses): a camera
        # created through the API is found at once; the cache's TTL stays as the fallback
        self.listener = RegistryListener(settings.database_url, self._cameras_changed, tables={"cameras"})
        gate = NoiseGate(hold_s=settings.hold_s, burst=settings.flood_burst, window_s=settings.flood_window_s)
        self.ingest = CameraIngest(producer, self.registry, metrics, gate)
        password = settings.sip_password.get_secret_value() if settings.sip_password else None
        self.registrar = Gb28181Registrar(
            server_id=settings.sip_server_id, realm=settings.sip_realm, default_password=password
        )
        self.sip = SipServer(settings, self.ingest, self.registrar)
        self.catalog = CatalogQueries(
            server_id=settings.sip_server_id,
            realm=settings.sip_realm,
            source=self.registrar.source,
            sender=self.sip.sender,
            now=self.ingest.now,
        )
        self.sip.on_response = self.catalog.on_response
        self.sip.on_catalog = self.catalog.on_catalog
        self.onvif = OnvifSubscriptionManager(settings, self.ingest, transport=onvif_transport)
        self._redis: Any = None
        self._uvicorn: uvicorn.Server | None = None
        self._http_task: asyncio.Task[None] | None = None
        self._commands: uvicorn.Server | None = None
        self._commands_task: asyncio.Task[None] | None = None
        self._sweep_task: asyncio.Task[None] | None = None

    def add_checks(self, health: HealthServer) -> None:
        health.add_check("kafka", self.producer.ready)
        health.add_check("registry", self.registry.ready)

    @property
    def http_port(self) -> int:
        if self._uvicorn is None or not self._uvicorn.servers:
            return self.settings.http_port
        return int(self._uvicorn.servers[0].sockets[0].getsockname()[1])

    @property
    def sip_port(self) -> int:
        return self.sip.port

    @property
    def command_port(self) -> int | None:
        if self._commands is None or not self._commands.servers:
            return None
        return int(self._commands.servers[0].sockets[0].getsockname()[1])

    @staticmethod
    async def _serve(app: Any, host: str, port: int, name: str) -> tuple[uvicorn.Server, asyncio.Task[None]]:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="off",
            limit_concurrency=4096,
            timeout_keep_alive=30,
        )
        server = uvicorn.Server(config)
        # run_service owns SIGTERM/SIGINT; uvicorn (0.29+) would otherwise take them over in serve()
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        task = asyncio.create_task(server.serve(), name=name)
        for _ in range(200):
            if server.started:
                break
            if task.done():
                task.result()  # raises the bind error
            await asyncio.sleep(0.025)
        return server, task

    async def start(self) -> None:
        await self.producer.start()
        await self.registry.start()
        await self.listener.start()
        idem = None
        if self.settings.integrator_secrets():
            self._redis = connect_redis(redis_address(self.settings))
            idem = IdempotencyStore(self._redis, self.settings.topic_prefix, self.settings.idempotency_ttl_s)
        http_app = build_http_app(self.settings, self.ingest, idem)
        self._uvicorn, self._http_task = await self._serve(
            http_app, self.settings.http_host, self.settings.http_port, "http"
        )
        await self.sip.start()
        if self.settings.command_token is not None:
            commands = build_command_app(
                self.catalog, self.settings.command_token.get_secret_value(), self.settings.catalog_timeout_s
            )
            self._commands, self._commands_task = await self._serve(
                commands, self.settings.command_host, self.settings.command_port, "commands"
            )
        await self.onvif.start()
        self._sweep_task = asyncio.create_task(self._sweep_loop(), name="liveness-sweep")
        log.info(
            "ingest_camera_started",
            http_port=self.http_port,
            sip_port=self.sip_port,
            command_port=self.command_port,
            onvif_mode=self.settings.onvif_mode,
            sip_password_set=self.settings.sip_password is not None,
        )

    async def _cameras_changed(self, table: str | None) -> None:
        self.registry.invalidate()

    async def stop(self) -> None:
        if self._sweep_task is not None:
            self._sweep_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweep_task
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._commands is not None:
            self._commands.should_exit = True
        for task in (self._http_task, self._commands_task):
            if task is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(task, 10.0)
        await self.onvif.stop()
        await self.sip.stop()
        await self.producer.stop()
        await self.listener.stop()
        await self.registry.stop()
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.aclose()

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(5.0)
            statuses = self.ingest.sweep()
            if statuses:
                try:
                    await self.ingest.publish_statuses(statuses)
                except PublishError as exc:
                    log.warning("status_publish_failed", error=repr(exc))
