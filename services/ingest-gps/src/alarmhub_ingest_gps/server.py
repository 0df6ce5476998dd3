"""Thin asyncio TCP servers: read, feed the session, publish, await the broker, reply.

Built on ``asyncio.Protocol`` rather than streams: a stream connection costs a task and two
buffers even while idle, a protocol object costs its session and a transport, which is what lets
one process hold tens of thousands of parked vehicles. While a connection's events are being
written to Kafka a read that arrives is held and reading paused, so a terminal's frames stay in order,
replies follow the broker's confirmation, and a fast peer cannot buffer more than one read ahead of the
broker — a slow or hostile peer only ever slows itself. Reading is paused only then, not for every write:
a terminal that waits for its answer never has its reading stopped and started (an ``epoll_ctl`` each).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, cast

from alarmhub_events import utcnow
from alarmhub_kafka import PublishError
from alarmhub_runtime import FileGuard, get_logger, guard_accept, worker_index

from .metrics import GpsMetrics
from .sessions import CommandResult, Gt06Session, H02Session, Jt808Session, Output

__all__ = ["Connection", "ConnectionBudget", "GpsServer", "Sink"]

log = get_logger("alarmhub.ingest_gps.server")

Session = Jt808Session | Gt06Session | H02Session


class Sink:
    """Where a connection's output goes; the app implements it over the producer and the registry."""

    async def deliver(self, session: Session, out: Output) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    async def deliver_many(self, batch: list[tuple[Session, Output]]) -> None:
        """Publish the events of several connections' reads, returning once all are confirmed.

        Only outputs with events to publish and nothing else (no registry writes, no DLQ records) are
        passed here. The default delivers them one by one; the app writes them in one producer call.
        """
        for session, out in batch:
            await self.deliver(session, out)

    def command_result(self, result: CommandResult) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def session_opened(self, device_id: str) -> None:
        """A terminal authenticated on this connection (it now holds the device's session)."""

    def session_closed(self, device_id: str) -> None:
        """The connection holding the device's session closed."""


class Connection(asyncio.Protocol):
    __slots__ = (
        "_busy",
        "_closing",
        "_held",
        "connected_at",
        "last_activity",
        "peer",
        "server",
        "session",
        "transport",
    )

    def __init__(self, server: GpsServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.session: Session | None = None
        self.peer = ""
        self.last_activity = time.monotonic()
        self.connected_at = self.last_activity
        self._busy = False
        self._closing = False
        self._held: bytes | None = None

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio subclasses
        peer = self.transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else ""
        srv = self.server
        if not srv.budget.take():
            # at the process's connection budget (below its file limit): refuse this one cleanly, counted
            srv.metrics.closed.labels(srv.protocol, "capacity").inc()
            self.transport.abort()
            return
        if srv.files.exhausted(self.transport):  # descriptors near the file limit whatever the budget
            srv.budget.give()
            srv.metrics.closed.labels(srv.protocol, "files").inc()
            self.transport.abort()
            return
        self.session = srv.session_factory(self.peer)
        srv.connections.add(self)
        srv.metrics.connections.labels(srv.protocol).inc()

    def data_received(self, data: bytes) -> None:
        session, srv = self.session, self.server
        if session is None or self._closing:
            return
        if self._busy:
            # this connection's write is not confirmed yet: keep the read for after it, read no more
            self._held = data if self._held is None else self._held + data
            assert self.transport is not None
            self.transport.pause_reading()
            return
        self.last_activity = time.monotonic()
        t0 = time.perf_counter()
        out = session.feed(data, srv.received_at())
        if out.frames:
            srv.frames_ok += out.frames - len(out.dlq) - out.refused  # counted at the end of the tick
        if out.refused:
            srv.m_refused.inc(out.refused)
        if out.tolerated:
            srv.m_tolerated.inc(out.tolerated)
        if out.reregistrations:
            srv.metrics.reregistrations.inc(out.reregistrations)
            log.warning("jt808_reregistration_refused", device_id=session.device_id, peer=session.peer)
        if out.dlq:
            srv.m_error.inc(len(out.dlq))
        for result in out.commands:
            srv.sink.command_result(result)
        if session.authenticated and session.device_id and srv.devices.get(session.device_id) is not self:
            srv.devices[session.device_id] = self
            srv.sink.session_opened(session.device_id)
        if out.publish and not out.registry and not out.dlq:
            # The common case (positions): join this loop iteration's batch, one broker write for all.
            self._busy = True
            srv.enqueue(self, out, t0)
        elif out.publish or out.registry or out.dlq:
            self._busy = True
            task = asyncio.get_running_loop().create_task(self._complete(out, t0))
            srv.tasks.add(task)
            task.add_done_callback(srv.tasks.discard)
        else:
            self._finish(out, t0)

    def connection_lost(self, exc: Exception | None) -> None:
        srv = self.server
        if self.session is None:
            return
        srv.budget.give()
        srv.connections.discard(self)
        srv.metrics.connections.labels(srv.protocol).dec()
        if self.session.device_id and srv.devices.get(self.session.device_id) is self:
            del srv.devices[self.session.device_id]
            srv.sink.session_closed(self.session.device_id)
        reason = "closed" if self._closing else ("error" if exc else "peer_closed")
        srv.metrics.closed.labels(srv.protocol, reason).inc()
        out = self.session.connection_lost(
            utcnow(), "idle_timeout" if reason == "closed" and self._idle() else reason
        )
        if out.publish:
            task = asyncio.get_running_loop().create_task(srv.sink.deliver(self.session, out))
            srv.tasks.add(task)
            task.add_done_callback(srv.tasks.discard)

    # ------------------------------------------------------------------ internals

    def _idle(self) -> bool:
        return time.monotonic() - self.last_activity >= self.server.idle_timeout_s

    async def _complete(self, out: Output, t0: float) -> None:
        srv = self.server
        assert self.session is not None
        try:
            await srv.sink.deliver(self.session, out)
        except PublishError as exc:
            # Not written → not answered: the terminal keeps the data and retransmits on reconnect.
            srv.metrics.publish_errors.labels(srv.protocol).inc()
            log.warning(
                "publish_failed", protocol=srv.protocol, device_id=self.session.device_id, error=str(exc)
            )
            self.close(abort=True)
            return
        except Exception:
            log.exception("deliver_failed", protocol=srv.protocol, device_id=self.session.device_id)
            self.close(abort=True)
            return
        finally:
            self._busy = False
        self._finish(out, t0)
        self._read_on()

    def _published(self, out: Output, t0: float) -> None:
        """This connection's events of a tick batch are confirmed: answer, and read on."""
        self._busy = False
        self._finish(out, t0)
        if self._held is not None:
            self._read_on()

    def _read_on(self) -> None:
        """After a confirmed write: the read held meanwhile (if any) is fed now and reading resumes."""
        held, self._held = self._held, None
        if held is None or self.transport is None or self._closing:
            return
        with contextlib.suppress(RuntimeError):
            self.transport.resume_reading()
        self.data_received(held)

    def _publish_failed(self, exc: Exception) -> None:
        srv = self.server
        self._busy = False
        assert self.session is not None
        if isinstance(exc, PublishError):
            # Not written → not answered: the terminal keeps the data and retransmits on reconnect.
            srv.metrics.publish_errors.labels(srv.protocol).inc()
            log.warning(
                "publish_failed", protocol=srv.protocol, device_id=self.session.device_id, error=str(exc)
            )
        self.close(abort=True)

    def _finish(self, out: Output, t0: float) -> None:
        tr = self.transport
        if tr is None:
            return
        if out.reply and not tr.is_closing():  # the peer may have gone while its write was pending
            tr.write(bytes(out.reply))
            self.server.m_ack.observe(time.perf_counter() - t0)
        if out.close:
            self.close()

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self._closing:
            self.transport.write(data)

    def close(self, *, abort: bool = False) -> None:
        if self.transport is None or self._closing:
            return
        self._closing = True
        if abort:
            self.transport.abort()
        else:
            self.transport.close()


class ConnectionBudget:
    """How many connections the process may hold across all its ports; the next one is refused."""

    __slots__ = ("limit", "open")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0

    def take(self) -> bool:
        if self.open >= self.limit:
            return False
        self.open += 1
        return True

    def give(self) -> None:
        self.open = max(0, self.open - 1)


class GpsServer:
    """One listening socket for one protocol, with its connections and an idle sweeper."""

    def __init__(
        self,
        protocol: str,
        session_factory: Callable[[str], Session],
        sink: Sink,
        metrics: GpsMetrics,
        *,
        host: str,
        port: int,
        idle_timeout_s: float,
        login_timeout_s: float,
        max_connections: int | ConnectionBudget,
    ) -> None:
        self.protocol = protocol
        self.session_factory = session_factory
        self.sink = sink
        self.metrics = metrics
        self.host = host
        self.requested_port = port
        self.idle_timeout_s = idle_timeout_s
        self.login_timeout_s = login_timeout_s
        # one budget shared by every port of the process (the file limit is the process's)
        self.budget = (
            max_connections
            if isinstance(max_connections, ConnectionBudget)
            else ConnectionBudget(max_connections)
        )
        self.files = FileGuard()
        self.connections: set[Connection] = set()
        self.devices: dict[str, Connection] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self._batch: list[tuple[Connection, Output, float]] = []
        self._now: datetime | None = None
        self.frames_ok = 0
        """Frames read well in this event-loop iteration (``frames_total{result="ok"}`` at its end)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        # label lookups cost microseconds; resolve the per-read ones once
        self.m_ok = metrics.frames.labels(protocol, "ok")
        self.m_refused = metrics.frames.labels(protocol, "refused")
        self.m_error = metrics.frames.labels(protocol, "error")
        self.m_tolerated = metrics.tolerated.labels(protocol)
        self.m_ack = metrics.ack_seconds.labels(protocol)

    # ------------------------------------------------------------------ tick batching

    def received_at(self) -> datetime:
        """The receive time of this event-loop iteration's reads, read from the clock at its first read.

        The reads of one iteration were all waiting when the loop woke, so they share one instant (the
        clock read and its text once per iteration instead of per read). The first read also schedules
        the end of the tick (``_flush``, which ``call_soon`` runs after the iteration's reads).
        """
        now = self._now
        if now is None:
            now = self._now = utcnow()
            (self._loop or asyncio.get_running_loop()).call_soon(self._flush)
        return now

    def enqueue(self, conn: Connection, out: Output, t0: float) -> None:
        """Queue one read's events for the batch of this event-loop iteration.

        Every connection whose data arrived in the same iteration joins one batch, written with one
        producer call once the iteration's reads are done (``_flush``, scheduled by the iteration's
        first read). Each connection's reply waits for that write to be confirmed, so nothing is
        acknowledged before the durable write; the connection reads nothing more meanwhile, so its
        frames stay in order.
        """
        self._batch.append((conn, out, t0))

    def _flush(self) -> None:
        """The end of a tick: its frames counted, its batch written, the next read takes a new time."""
        self._now = None
        if self.frames_ok:
            self.m_ok.inc(self.frames_ok)
            self.frames_ok = 0
        batch, self._batch = self._batch, []
        if batch:
            task = (self._loop or asyncio.get_running_loop()).create_task(self._write_batch(batch))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _write_batch(self, batch: list[tuple[Connection, Output, float]]) -> None:
        try:
            await self.sink.deliver_many([(c.session, out) for c, out, _ in batch if c.session is not None])
        except Exception as exc:
            # One write for the whole batch: when it fails, no terminal in it is answered.
            if not isinstance(exc, PublishError):
                log.exception("deliver_failed", protocol=self.protocol, connections=len(batch))
            for conn, _, _ in batch:
                conn._publish_failed(exc)
            return
        for conn, out, t0 in batch:
            try:
                conn._published(out, t0)
            except Exception:  # one connection's failure must not leave the others unanswered, paused
                log.exception("reply_failed", protocol=self.protocol)
                conn.close(abort=True)

    @property
    def port(self) -> int:
        """The bound port (the requested one, or the kernel's choice when 0 was requested)."""
        if self._server is None or not self._server.sockets:
            return self.requested_port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Connection(self),
            self.host,
            self.requested_port,
            backlog=4096,
            reuse_address=True,
            reuse_port=worker_index() is not None,  # one of several gateway workers on the same ports
        )
        # accept() out of descriptors: counted, logged once a second, retried (alarmhub_runtime._limits)
        guard_accept(
            self._server, self.metrics.closed.labels(self.protocol, "accept_failed").inc, self.protocol
        )
        self._sweeper = asyncio.create_task(self._sweep(), name=f"{self.protocol}-idle-sweeper")
        log.info("gps_server_listening", protocol=self.protocol, host=self.host, port=self.port)

    async def stop_accepting(self) -> None:
        if self._server is not None:
            self._server.close()

    async def drain(self, timeout: float = 5.0) -> None:
        """Let in-flight publishes finish, then close every connection (terminals reconnect elsewhere)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=timeout)
        for conn in list(self.connections):
            conn.close()
        await asyncio.sleep(0)
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=timeout)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    async def _sweep(self) -> None:
        interval = max(0.2, min(10.0, self.idle_timeout_s / 4, self.login_timeout_s / 4))
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for conn in list(self.connections):
                if conn.session is None:
                    continue
                if now - conn.last_activity >= self.idle_timeout_s:
                    conn.close()
                elif not conn.session.authenticated and now - conn.connected_at >= self.login_timeout_s:
                    self.metrics.closed.labels(self.protocol, "login_timeout").inc()
                    conn.close()
