"""Wiring of the GPS gateway: registry, producer, one server per protocol, operator commands.

Start order: producer (retries until the broker answers), registry view, servers, command endpoint.
Stop order: stop accepting, drain in-flight publishes and close connections (their ``offline``
statuses are published), flush the producer, close the registry.

Operator commands (JT/T 808 0x8201 position query, 0x8202 temporary tracking, 0x8300 text) come in
on an internal HTTP endpoint that dispatch calls — ``POST /commands`` with
``{"device_id", "command": "query_position" | "track" | "text", "params": {...}, "timeout_s"}`` —
and are answered with the terminal's correlated reply (0x0201 position, or the 0x0001 result).
``cutoff`` / ``restore`` (with ``params.model``, the registry's model) go only to a model listed in
``protocols/commands_cutoff.py`` on the protocol of the terminal's session — JT/T 808 (0x8105 vendor word
or 0x8500, answered by 0x0001 / 0x0500), GT06 (0x80 text, answered by 0x15/0x21 text) or H02 (``S20``,
answered by V4) — and come back with the terminal's words in ``answer``; any other model, or a command
a GT06/H02 session does not carry, is answered ``unsupported`` (HTTP 409) without a byte sent. Dispatch
checks the safe speed first.
With ``"protocol": "jt809"`` (and optionally ``"platform"``) the command is a request down the link of
the JT/T 809 platform forwarding the vehicle — ``track`` 0x9205, ``track_stop`` 0x9206, ``supervise``
0x9401 — answered by 0x1205/0x1206 (and the first tracked position) or 0x1401 (``jt809/commands.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from alarmhub_events import Event, GpsFix, utcnow
from alarmhub_kafka import DurableProducer, KafkaMetrics
from alarmhub_redis import connect_redis, redis_address
from alarmhub_runtime import HealthServer, connection_budget, get_logger
from alarmhub_store import RegistryListener
from prometheus_client import CollectorRegistry

from .config import DEV_AUTH_SECRET, DEV_COMMAND_TOKEN, GpsSettings
from .fastfix import RawFix, fix_json
from .jt809 import (
    Jt809Commands,
    Jt809Server,
    PlatformDirectory,
    SharedSupervisions,
    link_status_writer,
    load_platforms,
    raw_items,
    refresh_platforms,
)
from .metrics import GpsMetrics
from .ownership import SessionOwnership
from .protocols import commands_cutoff
from .registry import VehicleRegistry
from .server import ConnectionBudget, GpsServer, Session, Sink
from .sessions import CommandResult, Gt06Session, H02Session, Jt808Session, Output, SessionConfig
from .signals import WatchBook, WatchConfig

__all__ = ["COMMAND_ROUTES", "GpsApp"]

#: the command endpoint's routes, all for dispatch's token only (tests/security/authz_matrix.py has an
#: entry for each: a route added here without one fails tests/security/test_authz_surfaces.py)
COMMAND_ROUTES = frozenset({("POST", "/commands")})
#: the immobiliser commands (the model's encoding from protocols/commands_cutoff.py)
CUTOFF_COMMANDS = ("cutoff", "restore")

log = get_logger("alarmhub.ingest_gps")


def _serialized(topic: str, ev: Event | RawFix) -> tuple[str, bytes, str | None]:
    """A fix in the model's JSON without pydantic (written by the session: ``RawFix``; or ``fix_json``),
    anything else through pydantic."""
    if type(ev) is RawFix:
        return topic, ev.value, ev.device_id
    if type(ev) is GpsFix:
        try:
            return topic, fix_json(ev), ev.device_id
        except (TypeError, ValueError):  # an attribute value plain JSON cannot carry: pydantic knows how
            return topic, ev.to_bytes(), ev.device_id
    return topic, ev.to_bytes(), getattr(ev, "key", None)


class GpsApp(Sink):
    def __init__(
        self,
        settings: GpsSettings,
        registry: CollectorRegistry,
        *,
        producer: DurableProducer | None = None,
        vehicles: VehicleRegistry | None = None,
    ) -> None:
        """The service's shape: settings and the Prometheus registry (tests may hand in their producer or
        vehicle registry)."""
        collector = registry
        metrics = GpsMetrics(registry)
        if producer is None:
            # many small concurrent writes (a batch per event-loop iteration) join the open batches; a
            # JT/T 809 read of thousands of positions still goes through the batch API
            producer = DurableProducer.from_settings(
                settings, metrics=KafkaMetrics(registry), client_id="ingest-gps", batch_threshold=1000
            )
        self.settings = settings
        self.producer = producer
        self.metrics = metrics
        self.registry = vehicles or VehicleRegistry(
            settings.database_url,
            refresh_s=settings.registry_refresh_s,
            on_reload=lambda scope: metrics.registry_reloads.labels(scope).inc(),
        )
        self.session_config = SessionConfig(
            policy=settings.unregistered,
            auth_secret=settings.auth_secret.get_secret_value().encode(),
            jt808_tz_hours=settings.jt808_tz_hours,
            gt06_tz_hours=settings.gt06_tz_hours,
            h02_tz_hours=settings.h02_tz_hours,
            gt06_password=settings.gt06_command_password,
            max_refused=settings.max_refused,
        )
        # every vehicle's armed watch (parked spot, ignition), kept across its terminal's reconnects
        cfg = self.session_config
        self.watches = WatchBook(WatchConfig(cfg.armed_speed_kmh, cfg.parked_radius_m))
        self.servers: dict[str, GpsServer] = self._tracker_servers(settings, metrics)
        # JT/T 809: lower-level platforms forward whole fleets over one main link each.
        self.platforms = PlatformDirectory()
        self.jt809_commands = Jt809Commands(metrics=metrics, publish=self._publish_809)
        # Which process holds which session, for dispatch to route commands (ownership.py); the id and
        # URL are completed once the command endpoint is bound.
        self.ownership = SessionOwnership(
            connect_redis(redis_address(settings), timeout_s=5),
            prefix=settings.key_prefix,
            gateway_id=settings.gateway_id or "",
            ttl_s=max(settings.idle_timeout_s, settings.jt809_idle_timeout_s)
            + 2 * settings.ownership_refresh_s,
            refresh_s=settings.ownership_refresh_s,
            errors=metrics.ownership_errors,
        )
        # sent 0x9401s in Redis too: a late 0x1401 may reach another process (or this one after a restart)
        self.jt809_commands.shared = SharedSupervisions(self.ownership.redis, settings.key_prefix)
        self._write_link_status = link_status_writer(settings.database_url)
        self.jt809 = Jt809Server(
            host=settings.host,
            port=settings.jt809_port,
            directory=self.platforms,
            publish=self._publish_809,
            dead_letter=self._dead_letter_809,
            vehicles=self.registry,
            registry=collector,
            on_link_status=self._link_status,
            idle_timeout_s=settings.jt809_idle_timeout_s,
            slave_enabled=settings.jt809_slave_link,
            on_answer=self.jt809_commands.on_answer,
        )
        self.jt809_commands.server = self.jt809
        self._platform_refresh: asyncio.Task[None] | None = None
        # dispatch's NOTIFY on every platforms write: a JT/T 809 platform created through the API logs in at
        # once; the refresh timer stays as the fallback (vehicles: VehicleRegistry LISTENs itself, per row)
        # every table's notices: platforms here, vehicles (the table, or "vehicles:<id>") in the registry view
        self.listener = RegistryListener(settings.database_url, self._registry_changed)
        self._waiters: dict[tuple[str, int], asyncio.Future[CommandResult]] = {}
        self._command_server: asyncio.Server | None = None
        self._event_counters: dict[tuple[str, str], Any] = {}

    def _tracker_servers(self, settings: GpsSettings, metrics: GpsMetrics) -> dict[str, GpsServer]:
        """The tracker ports (JT/T 808, GT06, H02): a server each, sessions over the shared registry view."""
        reg, cfg, book = self.registry, self.session_config, self.watches
        common: dict[str, Any] = dict(
            host=settings.host,
            idle_timeout_s=settings.idle_timeout_s,
            login_timeout_s=settings.login_timeout_s,
            max_connections=ConnectionBudget(settings.max_connections or connection_budget()),
        )
        sessions: dict[str, tuple[Callable[..., Session], int]] = {
            "jt808": (Jt808Session, settings.jt808_port),
            "gt06": (Gt06Session, settings.gt06_port),
            "h02": (H02Session, settings.h02_port),
        }
        return {
            name: GpsServer(
                name,
                partial(cls, reg, cfg, watches=book),
                self,
                metrics,
                port=port,
                **common,
            )
            for name, (cls, port) in sessions.items()
        }

    def add_checks(self, health: HealthServer) -> None:
        health.add_check("kafka", self.producer.ready)
        health.add_check("registry", self.registry.ready)

    @property
    def ports(self) -> dict[str, int]:
        ports = {name: s.port for name, s in self.servers.items()}
        ports["jt809"] = self.jt809.port
        if self._command_server is not None and self._command_server.sockets:
            ports["command"] = int(self._command_server.sockets[0].getsockname()[1])
        return ports

    async def start(self) -> None:
        await self.producer.start()
        await self.registry.start()
        for server in self.servers.values():
            await server.start()
        try:
            self.platforms.replace(await load_platforms(self.settings.database_url))
        except Exception as exc:  # the refresher retries; until then every platform login is refused
            log.warning("jt809_platforms_load_failed", error=repr(exc))
        self._platform_refresh = asyncio.create_task(
            refresh_platforms(
                self.platforms,
                self.settings.database_url,
                interval_s=self.settings.platforms_refresh_s,
                on_refresh=self.jt809.enforce,
            )
        )
        await self.listener.start()
        await self.jt809.start()
        self._command_server = await asyncio.start_server(
            self._http, self.settings.command_host, self.settings.command_port, limit=16384
        )
        self.ownership.gateway_id, url = self.settings.advertised(self.ports["command"])
        await self.ownership.start(url, self._active_sessions)
        log.info(
            "ingest_gps_started",
            ports=self.ports,
            unregistered=self.settings.unregistered.value,
            gateway=self.ownership.gateway_id,
            command_url=url,
        )
        if self.settings.auth_secret.get_secret_value() == DEV_AUTH_SECRET:
            log.warning(
                "gps_auth_secret_is_the_public_default",
                hint="set ALARMHUB_GPS_AUTH_SECRET: with the default anyone can forge JT/T 808 auth codes",
            )
        if self.settings.command_token.get_secret_value() == DEV_COMMAND_TOKEN:
            log.warning(
                "gps_command_token_is_the_public_default",
                hint="set ALARMHUB_GPS_COMMAND_TOKEN (here and in dispatch): with the default anyone who "
                "reaches the command port can command vehicles",
            )

    async def _registry_changed(self, table: str | None) -> None:
        """``platforms`` or ``vehicles``/``vehicles:<id>`` changed, or ``None``: the LISTEN connection was
        lost and is back (reload it all)."""
        if await self.registry.on_notify(table) and table is not None:
            return
        if table is None or table == "platforms":
            self.platforms.replace(await load_platforms(self.settings.database_url))
            self.jt809.enforce(self.platforms)

    async def stop(self) -> None:
        if self._command_server is not None:
            self._command_server.close()
        for server in self.servers.values():
            await server.stop_accepting()
        if self._platform_refresh is not None:
            self._platform_refresh.cancel()
        await self.listener.stop()
        await self.jt809.stop()
        await asyncio.gather(*(s.drain() for s in self.servers.values()))
        await self.ownership.stop()  # after the drain: the closed sessions' keys are released
        await self.producer.stop()
        await self.registry.stop()

    # ------------------------------------------------------------------ Sink

    async def deliver(self, session: Session, out: Output) -> None:
        for w in out.registry:
            await self.registry.write(w)
        if out.publish:
            await self.producer.send_raw_many([_serialized(topic, ev) for topic, ev in out.publish])
            counts: dict[str, int] = {}
            for topic, _ in out.publish:
                counts[topic] = counts.get(topic, 0) + 1
            for topic, n in counts.items():
                self.metrics.events.labels(session.protocol.value, topic).inc(n)
        for raw, error in out.dlq:
            await self.producer.dead_letter(
                stage="decode",
                source_id=session.device_id or session.peer or "unknown",
                error=error,
                raw=raw,
                protocol=session.protocol.value,
                peer=session.peer,
            )

    async def deliver_many(self, batch: list[tuple[Session, Output]]) -> None:
        """The events of one event-loop iteration's reads, from many connections, in one producer call."""
        items: list[tuple[str, bytes, str | None]] = []
        counts: dict[tuple[str, str], int] = {}
        for session, out in batch:
            proto = session.protocol_name
            for topic, ev in out.publish:
                items.append(
                    (topic, ev.value, ev.device_id) if type(ev) is RawFix else _serialized(topic, ev)
                )
                key = (proto, topic)
                counts[key] = counts.get(key, 0) + 1
        await self.producer.send_raw_many(items)
        children = self._event_counters
        for labels, n in counts.items():
            child = children.get(labels)
            if child is None:
                child = children[labels] = self.metrics.events.labels(*labels)
            child.inc(n)

    async def _publish_809(self, items: Any) -> None:
        await self.producer.send_raw_many(raw_items(items))  # fixes serialized without pydantic
        self.jt809_commands.published(items)

    async def _dead_letter_809(self, raw: bytes, error: str, peer: str | None) -> None:
        await self.producer.dead_letter(
            stage="decode", source_id=peer or "jt809", error=error, raw=raw, protocol="jt809", peer=peer
        )

    def session_opened(self, device_id: str) -> None:
        self.ownership.claim(device_id)

    def session_closed(self, device_id: str) -> None:
        self.ownership.release(device_id)

    async def _link_status(self, user_id: int, status: str) -> None:
        """A JT/T 809 main link came up (this process now holds it) or went down."""
        if status == "up":
            self.ownership.claim(f"jt809:{user_id}")
        elif status == "down":
            self.ownership.release(f"jt809:{user_id}")
        await self._write_link_status(user_id, status)

    def _active_sessions(self, since: float) -> Iterator[str]:
        """Sessions held here that had traffic since ``since``: their ownership is refreshed."""
        for server in self.servers.values():
            for device_id, conn in list(server.devices.items()):
                if conn.last_activity >= since:
                    yield device_id
        for user_id in list(self.jt809.links):  # a handful of links, each beating: refresh them all
            yield f"jt809:{user_id}"

    def command_result(self, result: CommandResult) -> None:
        fut = self._waiters.pop((result.device_id, result.serial), None)
        if fut is not None and not fut.done():
            fut.set_result(result)

    # ------------------------------------------------------------------ operator commands

    async def command(
        self,
        device_id: str,
        command: str,
        params: dict[str, Any],
        timeout_s: float = 10.0,
        protocol: str | None = None,
        platform: str | None = None,
    ) -> dict[str, Any]:
        """Send a command to a connected JT/T 808 terminal (GT06, H02: cut-off and restore), or a request
        down the JT/T 809 link of the platform forwarding the vehicle, and wait for the correlated reply."""
        conn = self._connection(device_id)
        if protocol == "jt809" or (protocol is None and conn is None and platform):
            return await self.jt809_commands.command(device_id, command, params, timeout_s, platform)
        if command in CUTOFF_COMMANDS:
            refused = self._cutoff_refusal(device_id, conn, params)
            if refused is not None:
                self.metrics.commands.labels(command, refused["status"]).inc()
                return refused
        if conn is None or conn.session is None:
            self.metrics.commands.labels(command, "not_connected").inc()
            return {"status": "not_connected", "device_id": device_id}
        if not isinstance(conn.session, Jt808Session) and command not in conn.session.COMMANDS:
            self.metrics.commands.labels(command, "unsupported").inc()
            why = f"a {conn.session.protocol.value} terminal takes {', '.join(conn.session.COMMANDS)} only"
            return {"status": "unsupported", "device_id": device_id, "reason": why}
        if isinstance(conn.session, H02Session):
            params["now"] = utcnow()  # the S20's stamp, which the V4 echoes
        serial, frame = conn.session.command(command, **params)
        fut: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
        self._waiters[(device_id, serial)] = fut
        conn.write(frame)
        try:
            result = await asyncio.wait_for(fut, timeout_s)
        except TimeoutError:
            self._waiters.pop((device_id, serial), None)
            self.metrics.commands.labels(command, "timeout").inc()
            return {"status": "timeout", "device_id": device_id, "serial": serial}
        self.metrics.commands.labels(command, "ok" if result.result == 0 else "failed").inc()
        reply: dict[str, Any] = {
            "status": "ok" if result.result == 0 else "failed",
            "device_id": device_id,
            "serial": serial,
            "command": result.command if isinstance(result.command, str) else f"0x{result.command:04x}",
            "result": result.result,
        }
        if result.text is not None:
            reply["answer"] = result.text
        if result.position is not None:
            p = result.position
            reply["position"] = {
                "lat": p.lat,
                "lon": p.lon,
                "valid": p.valid,
                "speed_kmh": p.speed_kmh,
                "heading_deg": p.heading_deg,
                "occurred_at": p.time.isoformat() if p.time else None,
            }
        return reply

    def _connection(self, device_id: str) -> Any:
        """The connection holding the device's session here, whichever tracker protocol it speaks."""
        for name in ("jt808", "gt06", "h02"):
            server = self.servers.get(name)
            conn = server.devices.get(device_id) if server is not None else None
            if conn is not None:
                return conn
        return None

    def _cutoff_refusal(self, device_id: str, conn: Any, params: dict[str, Any]) -> dict[str, Any] | None:
        """None when the cut-off may go to the terminal (``params["spec"]`` set); else the refusal.

        The model comes from dispatch (the vehicles registry); only a model of :data:`commands_cutoff.MODELS`
        on the protocol of the terminal's session is cut off (a terminal not connected here: the model's
        own protocol, and the answer is ``not_connected``)."""
        model = params.pop("model", None)
        known = commands_cutoff.MODELS.get(str(model or "").strip().upper())
        session = conn.session if conn is not None else None
        protocol = session.protocol.value if session is not None else (known.protocol if known else "jt808")
        spec = commands_cutoff.lookup(str(model) if model else None, protocol)
        if spec is None:
            why = (
                f"model {model!r} is a {known.protocol} terminal's, this one speaks {protocol}"
                if known is not None
                else f"model {model!r} has no known cut-off"
            )
            return {"status": "unsupported", "device_id": device_id, "reason": why}
        params["spec"] = spec
        return None

    def _from_dispatch(self, authorization: str) -> bool:
        """The caller presented dispatch's command token (``Authorization: Bearer <token>``)."""
        scheme, _, token = authorization.strip().partition(" ")
        expected = self.settings.command_token.get_secret_value().encode()
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected)

    async def _http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        status, body = "400 Bad Request", {"error": "bad request"}
        try:
            line = await asyncio.wait_for(reader.readline(), 5.0)
            length, authorization = 0, ""
            for _ in range(100):  # headers, bounded
                h = await asyncio.wait_for(reader.readline(), 5.0)
                if h in (b"\r\n", b"\n", b""):
                    break
                name, _, value = h.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = min(int(value.strip()), 65536)
                elif name.strip().lower() == "authorization":
                    authorization = value
            parts = line.decode("latin-1").split()
            route = (parts[0], parts[1].split("?", 1)[0]) if len(parts) >= 2 else None
            if not self._from_dispatch(authorization):
                # before the route and the body: only dispatch may learn anything here (docs/security.md)
                log.warning("command_caller_refused", peer=str(writer.get_extra_info("peername")))
                status, body = "401 Unauthorized", {"error": "dispatch's command token required"}
            elif route in COMMAND_ROUTES:
                req = json.loads(await asyncio.wait_for(reader.readexactly(length), 5.0))
                result = await self.command(
                    str(req["device_id"]),
                    str(req["command"]),
                    dict(req.get("params") or {}),
                    float(req.get("timeout_s", 10.0)),
                    req.get("protocol"),
                    req.get("platform"),
                )
                status = {
                    "ok": "200 OK",
                    "failed": "200 OK",
                    "timeout": "504 Gateway Timeout",
                    "not_connected": "404 Not Found",
                    "unsupported": "409 Conflict",
                }[result["status"]]
                body = result
            else:
                status, body = "404 Not Found", {"error": "POST /commands only"}
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            status, body = "400 Bad Request", {"error": str(exc)}
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            writer.close()
            return
        data = json.dumps(body).encode()
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            f"Connection: close\r\n\r\n".encode()
            + data
        )
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()
