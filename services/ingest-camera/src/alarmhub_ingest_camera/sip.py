"""The GB/T 28181 SIP shell: UDP and TCP on one port, feeding the sans-IO registrar.

UDP datagrams go through a bounded queue to a fixed pool of workers (a full queue drops datagrams:
SIP over UDP retransmits, so shedding load is safe, while buffering without bound is not). TCP
connections are framed by Content-Length and handled in order per connection.

For each request: parse → registrar → publish what it produced → send the reply it prepared. A reply
that confirms an alarm (200 to a MESSAGE) is sent only once the broker has the event; if the write
fails the device gets 500 and retransmits.

Requests to devices (the Catalog query, catalog.py) leave from the same sockets: over UDP from the SIP
port to the device's address, over TCP on the device's open connection. Responses from devices and their
Catalog pages are handed to ``on_response`` / ``on_catalog``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from datetime import timedelta, timezone

from alarmhub_events import DeviceStatus, Protocol
from alarmhub_kafka import PublishError
from alarmhub_runtime import get_logger

from .config import CameraSettings
from .events import Observation, from_gb28181
from .ingest import CameraIngest
from .protocols import gb28181
from .protocols.gb28181 import Gb28181Registrar, SipError, SipEvent, SipEventType, SipMessage

__all__ = ["SipServer"]

log = get_logger("alarmhub.ingest_camera.sip")

#: refusals of unauthenticated senders: counted and logged, never dead-lettered (the DLQ is no place an
#: anonymous sender may fill)
_UNAUTHENTICATED = ("bad credentials", "not registered", "foreign source")
_CN_TZ = timezone(timedelta(hours=8))  # GB/T 28181 device clocks are Beijing time unless they say otherwise


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: SipServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self.server.queue.put_nowait((data, addr))
        except asyncio.QueueFull:
            self.server.ingest.metrics.sip_dropped.inc()


class SipServer:
    def __init__(self, settings: CameraSettings, ingest: CameraIngest, registrar: Gb28181Registrar) -> None:
        self.settings = settings
        self.ingest = ingest
        self.registrar = registrar
        self.queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue(maxsize=settings.sip_queue)
        self._udp: _Udp | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._conns: set[asyncio.Task[None]] = set()
        self._tcp_peers: dict[tuple[str, int], asyncio.StreamWriter] = {}
        self.port = settings.sip_port
        self.on_response: Callable[[SipMessage], None] | None = None
        self.on_catalog: Callable[[SipEvent], None] | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # Port 0: bind UDP first, then TCP on the number UDP got (retry if TCP's is taken).
        for _ in range(20):
            transport, proto = await loop.create_datagram_endpoint(
                lambda: _Udp(self), local_addr=(self.settings.sip_host, self.settings.sip_port)
            )
            port = transport.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(
                    self._on_tcp, self.settings.sip_host, port, limit=65536
                )
            except OSError:
                transport.close()
                if self.settings.sip_port != 0:
                    raise
                continue
            self._udp, self.port = proto, port
            break
        else:
            raise OSError("could not bind SIP UDP and TCP on one port")
        self._tasks = [
            asyncio.create_task(self._worker(), name=f"sip-worker-{i}")
            for i in range(self.settings.sip_workers)
        ]
        self._tasks.append(asyncio.create_task(self._expiry_loop(), name="sip-expiry"))
        log.info("sip_listening", port=self.port)

    async def stop(self) -> None:
        if self._tcp is not None:
            self._tcp.close()
        if self._udp is not None and self._udp.transport is not None:
            self._udp.transport.close()
        for t in list(self._conns):
            t.cancel()
        # drain what was accepted before stopping the workers
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.join(), 5.0)
        for t in self._tasks:
            t.cancel()
        for t in self._tasks + list(self._conns):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._tcp is not None:
            with contextlib.suppress(Exception):
                await self._tcp.wait_closed()

    async def _worker(self) -> None:
        while True:
            data, addr = await self.queue.get()
            try:
                await self.handle(
                    data,
                    addr,
                    self._send_udp(addr),
                    transport="UDP",
                    local=self._udp.transport.get_extra_info("sockname")
                    if self._udp is not None and self._udp.transport is not None
                    else None,
                )
            except Exception:
                log.exception("sip_handler_failed", peer=f"{addr[0]}:{addr[1]}")
            finally:
                self.queue.task_done()

    def sender(self, peer: tuple[str, int]) -> tuple[Callable[[bytes], None], str, tuple[str, int]] | None:
        """How to send a request to a device at ``peer``: its TCP connection if it has one open, else UDP."""
        writer = self._tcp_peers.get(peer)
        if writer is not None:
            if writer.is_closing():
                return None
            sock = writer.get_extra_info("sockname")
            return writer.write, "TCP", (str(sock[0]), int(sock[1]))
        if self._udp is None or self._udp.transport is None:
            return None
        sock = self._udp.transport.get_extra_info("sockname")
        host = str(sock[0]) if sock[0] not in ("0.0.0.0", "::") else self.settings.sip_host
        return self._send_udp(peer), "UDP", (host, int(sock[1]))

    def _send_udp(self, addr: tuple[str, int]) -> Callable[[bytes], None]:
        def send(reply: bytes) -> None:
            if self._udp is not None and self._udp.transport is not None:
                self._udp.transport.sendto(reply, addr)

        return send

    async def _on_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._conns.add(task)
        peername = writer.get_extra_info("peername") or ("?", 0)
        addr = (str(peername[0]), int(peername[1]))
        self._tcp_peers[addr] = writer
        framer = gb28181.Framer()
        try:
            while True:
                data = await asyncio.wait_for(
                    reader.read(65536), timeout=self.settings.sip_keepalive_timeout_s * 2
                )
                if not data:
                    break
                try:
                    frames = framer.feed(data)
                except SipError as exc:
                    await self._dead_letter(data, addr, str(exc))
                    break
                local = writer.get_extra_info("sockname")
                for frame in frames:
                    await self.handle(frame, addr, writer.write, transport="TCP", local=local)
                    await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            self._tcp_peers.pop(addr, None)
            writer.close()
            if task is not None:
                self._conns.discard(task)

    async def _dead_letter(self, raw: bytes, addr: tuple[str, int], error: str) -> None:
        peer = f"{addr[0]}:{addr[1]}"
        try:
            await self.ingest.producer.dead_letter(
                stage="decode", source_id=peer, error=error, raw=raw, protocol="gb28181", peer=peer
            )
        except PublishError as exc:
            log.error("dlq_write_failed", error=repr(exc))

    async def handle(
        self,
        data: bytes,
        addr: tuple[str, int],
        send: Callable[[bytes], None],
        *,
        transport: str = "UDP",
        local: tuple[str, int] | None = None,
    ) -> None:
        """One SIP message: registrar decides, events are written, then the reply goes out."""
        metrics = self.ingest.metrics
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        if not data.strip():
            return  # CRLF keep-alive ping
        try:
            msg = gb28181.decode(data)
        except SipError as exc:
            metrics.requests.labels("gb28181", "malformed").inc()
            await self._dead_letter(data, addr, str(exc))
            return
        if not msg.is_request:
            if self.on_response is not None:
                self.on_response(msg)  # a device's answer to a request of ours (the Catalog query)
            metrics.requests.labels("gb28181", "response").inc()
            return
        result = self.registrar.handle(msg, addr, self.ingest.now(), data)
        if result.retransmission:
            metrics.requests.labels("gb28181", "retransmission").inc()
            if result.reply:
                send(result.reply)
            return
        observations, statuses = await self._sort_events(result.events, addr)
        metrics.sip_registered.set(self.registrar.registered_count)
        if result.needs_publish and (observations or statuses):
            try:
                await self.ingest.publish(
                    observations, camera=None, peer=f"{addr[0]}:{addr[1]}", statuses=statuses
                )
            except PublishError as exc:
                log.error("publish_failed", protocol="gb28181", error=repr(exc))
                metrics.requests.labels("gb28181", "unavailable").inc()
                if result.failure_reply:
                    send(result.failure_reply)
                return
        if result.reply is not None:
            send(result.reply)
            self.registrar.remember_reply(msg, result.reply)
        self._answer_alarms(result.events, msg, addr, send, transport, local)
        for ev in result.events:
            if ev.type == SipEventType.CATALOG and self.on_catalog is not None:
                self.on_catalog(ev)
        metrics.requests.labels("gb28181", (msg.method or "response").lower()).inc()
        metrics.ack_seconds.labels("gb28181").observe(loop.time() - t0)

    async def _sort_events(
        self, events: list[SipEvent], addr: tuple[str, int]
    ) -> tuple[list[Observation], list[DeviceStatus]]:
        """The registrar's events as alarm observations and device statuses; refusals counted (and a bad
        body from an authenticated device dead-lettered)."""
        metrics = self.ingest.metrics
        observations: list[Observation] = []
        statuses: list[DeviceStatus] = []
        for ev in events:
            if ev.type == SipEventType.REJECTED:
                metrics.sip_rejected.labels(ev.reason if ev.reason in _UNAUTHENTICATED else "bad body").inc()
                if ev.reason not in _UNAUTHENTICATED:
                    await self._dead_letter(ev.raw, addr, ev.reason or "rejected")
                else:
                    log.warning("sip_rejected", device_id=ev.device_id, peer=ev.peer, reason=ev.reason)
            elif ev.type == SipEventType.REGISTERED:
                st = self.ingest.alive(
                    ev.device_id, Protocol.GB28181, self.settings.sip_keepalive_timeout_s, peer=ev.peer
                )
                if st is not None:
                    statuses.append(st)
            elif ev.type == SipEventType.UNREGISTERED:
                st = self.ingest.gone(ev.device_id, Protocol.GB28181, reason="unregistered")
                if st is not None:
                    statuses.append(st)
            elif ev.type == SipEventType.KEEPALIVE:
                st = self.ingest.alive(
                    ev.device_id, Protocol.GB28181, self.settings.sip_keepalive_timeout_s, peer=ev.peer
                )
                if st is not None:
                    statuses.append(st)
            elif ev.type == SipEventType.ALARM and ev.message is not None:
                observations.append(from_gb28181(ev.message, _CN_TZ))
        return observations, statuses

    def _answer_alarms(
        self,
        events: list[SipEvent],
        msg: SipMessage,
        addr: tuple[str, int],
        send: Callable[[bytes], None],
        transport: str,
        local: tuple[str, int] | None,
    ) -> None:
        metrics = self.ingest.metrics
        # Only once the alarm is durably on Kafka does the device hear that it was taken (A.2.6).
        for ev in events:
            if ev.type == SipEventType.ALARM and ev.message is not None:
                host, port = (local or (self.settings.sip_host, self.port))[:2]
                send(
                    gb28181.encode_alarm_response(
                        server_id=self.registrar.server_id,
                        realm=self.registrar.realm,
                        sip_device_id=msg.from_user,
                        alarm=ev.message,
                        peer=addr,
                        local=(str(host), int(port)),
                        transport=transport,
                        call_id=f"{uuid.uuid4().hex}@{host}",
                        branch=uuid.uuid4().hex[:16],
                        from_tag=uuid.uuid4().hex[:10],
                    )
                )
                metrics.requests.labels("gb28181", "alarm_response_sent").inc()

    async def _expiry_loop(self) -> None:
        while True:
            await asyncio.sleep(5.0)
            try:
                for device_id in self.registrar.expire(self.ingest.now()):
                    st = self.ingest.gone(device_id, Protocol.GB28181, reason="registration expired")
                    if st is not None:
                        await self.ingest.publish_statuses([st])
            except PublishError as exc:
                log.warning("status_publish_failed", error=repr(exc))
