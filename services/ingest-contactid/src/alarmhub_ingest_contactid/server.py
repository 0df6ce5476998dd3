"""Thin asyncio shells around :class:`~.session.Dc09Session`: TCP (persistent or per-message) and UDP.

Read, frame, decide, publish, await the broker, reply. No business rule lives here: the session
decides, :class:`Dc09Receiver` only enforces the order "durable write first, ACK second".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Protocol, cast

from alarmhub_events import ALARMS_RAW, utcnow
from alarmhub_kafka import PublishError
from alarmhub_runtime import FileGuard, get_logger, guard_accept, worker_index

from .fastalarm import alarm_json
from .metrics import ContactIdMetrics
from .protocols.dc09 import Framer
from .session import Account, Dc09Session, Outcome
from .shared import SharedState

__all__ = ["Dc09Receiver", "Dc09Server"]

log = get_logger("alarmhub.ingest_contactid.server")


def _debug_enabled() -> bool:
    """Whether debug lines are emitted (the level is set once at startup)."""
    return logging.getLogger().isEnabledFor(logging.DEBUG)


class _Publisher(Protocol):
    """What the receiver needs of ``alarmhub_kafka.DurableProducer``."""

    async def send_raw_many(self, items: Sequence[tuple[str, bytes, str | None]]) -> None: ...


_Waiting = tuple[list[Outcome], Callable[[PublishError | None], None]]


class Dc09Receiver:
    """Turns frames into replies: publishes each frame's events and returns the reply only once the
    broker confirmed them. Shared by the TCP and UDP shells."""

    def __init__(
        self,
        session: Dc09Session,
        producer: _Publisher,
        metrics: ContactIdMetrics,
        *,
        clock: Callable[[], datetime] = utcnow,
        on_message: Callable[[Outcome, datetime], None] | None = None,
        resolve: Callable[[str, str], Awaitable[Account | None]] | None = None,
        log_every: int = 1000,
        recently_missed: Callable[[str, str], bool] | None = None,
        shared: SharedState | None = None,
    ) -> None:
        self.session = session
        self.producer = producer
        self.metrics = metrics
        self.clock = clock
        self.on_message = on_message
        self.resolve = resolve
        #: whether ``resolve`` would answer "not found" from its memory of misses, without a query
        self.recently_missed = recently_missed
        #: the retransmission memory the receivers share (Redis); None: this process's memory only
        self.shared = shared
        # labelled children cached: .labels() costs more than the increment on the per-message path
        self._children: dict[tuple[Any, ...], Any] = {}
        self._event_children: dict[tuple[Any, Any], Any] = {}
        # the events of every connection handled in one event-loop iteration, written with one call
        self._tick: list[_Waiting] = []
        self._writes: set[asyncio.Task[None]] = set()
        #: one "frame_handled" line at info per this many messages (all of them at debug)
        self.log_every = log_every
        self._handled = 0

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    async def process(self, frames: list[bytes], *, peer: str, transport: str) -> list[bytes]:
        """Handle frames that arrived together; return the replies to write, in order.

        The batch's events join those of every other connection handled in the same event-loop
        iteration and go to the broker in one ``send_raw_many`` (see :meth:`_enqueue`); if it fails,
        replies for frames that carried events are withheld (the transmitters retry), the others
        still go out. :meth:`submit` is the same without a coroutine, for the TCP hot path.
        """
        t0 = time.perf_counter()
        now = self.clock()
        outcomes: list[Outcome] = []
        for frame in frames:
            outcome = self._decide(frame, now=now, peer=peer, transport=transport)
            if outcome is None:
                continue
            if outcome.lookup is not None and self.resolve is not None:
                # an account registered since the last registry load: look it up once, then decide again
                found = await self.resolve(*outcome.lookup)
                if found is not None:
                    self.session.add_account(found)
                    outcome = self._decide(frame, now=now, peer=peer, transport=transport)
                    if outcome is None:
                        continue
            outcomes.append(outcome)
        writes = [o for o in outcomes if o.events]
        error: PublishError | None = None
        if writes:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

            def confirmed(err: PublishError | None) -> None:
                if fut.done():
                    return
                if err is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(err)

            self._enqueue(writes, confirmed)
            try:
                await fut
            except PublishError as exc:
                error = exc
        return self._finish(outcomes, error, now=now, t0=t0, peer=peer, transport=transport)

    def submit(
        self, frames: list[bytes], *, peer: str, transport: str, done: Callable[[list[bytes]], None]
    ) -> bool:
        """Handle frames now and call ``done(replies)`` once their events are confirmed by the broker
        (at once when they carry none; with the replies of event-carrying frames withheld when the
        write failed). Returns ``False``, having done nothing, when a frame needs an account lookup
        in the database: the caller then uses :meth:`process`.

        No task, coroutine or future per message: this is the TCP hot path.
        """
        t0 = time.perf_counter()
        now = self.clock()
        outcomes: list[Outcome] = []
        missed = self.recently_missed
        for frame in frames:
            outcome = self._decide(frame, now=now, peer=peer, transport=transport)
            if outcome is None:
                continue
            if (
                outcome.lookup is not None
                and self.resolve is not None
                and (missed is None or not missed(*outcome.lookup))
            ):
                return False
            outcomes.append(outcome)
        writes = [o for o in outcomes if o.events]
        if not writes:
            done(self._finish(outcomes, None, now=now, t0=t0, peer=peer, transport=transport))
            return True

        def confirmed(error: PublishError | None) -> None:
            done(self._finish(outcomes, error, now=now, t0=t0, peer=peer, transport=transport))

        self._enqueue(writes, confirmed)
        return True

    def _decide(self, frame: bytes, *, now: datetime, peer: str, transport: str) -> Outcome | None:
        try:
            return self.session.handle(frame, now=now, peer=peer, transport=transport)
        except Exception:  # a bug on our side: say so loudly, but never take the listener down
            log.exception("frame_handling_failed", peer=peer, frame=frame[:200].hex())
            self.metrics.decode_errors.labels("internal").inc()
            return None

    @staticmethod
    def _items(outcomes: list[Outcome]) -> list[tuple[str, bytes, str | None]]:
        return [(ALARMS_RAW, alarm_json(ev), ev.source.device_id) for o in outcomes for ev in o.events]

    def _finish(
        self,
        outcomes: list[Outcome],
        error: PublishError | None,
        *,
        now: datetime,
        t0: float,
        peer: str,
        transport: str,
    ) -> list[bytes]:
        """Count, remember what was published, and return the replies that may go out."""
        published = error is None
        if not published:
            self.metrics.publish_failures.inc(sum(1 for o in outcomes if o.events))
            log.warning(
                "publish_failed_ack_withheld",
                peer=peer,
                error=str(error),
                events=sum(len(o.events) for o in outcomes),
            )
        replies: list[bytes] = []
        for o in outcomes:
            self._account(o, published)
            if (o.events and not published) or o.held:
                continue
            if o.events:
                self.session.published(o, now)
            if o.reply is not None:
                replies.append(o.reply)
            if self.on_message is not None and o.message is not None and o.result == "ack":
                self.on_message(o, now)
        if replies:
            self._child(self.metrics.ack_seconds, transport).observe(time.perf_counter() - t0)
        return replies

    def _enqueue(self, outcomes: list[Outcome], callback: Callable[[PublishError | None], None]) -> None:
        """Queue the events of ``outcomes`` for this loop iteration's broker write; ``callback(None)`` runs once the
        broker confirmed the whole write (acks=all), ``callback(error)`` if it did not.

        Every connection whose frames were handled in the same iteration joins one producer call:
        ``call_soon`` runs the flush after the callbacks already queued, i.e. after those
        connections' reads. No callback runs before the broker confirmed every record of its write.
        """
        if not self._tick:
            asyncio.get_running_loop().call_soon(self._flush)
        self._tick.append((outcomes, callback))

    def _flush(self) -> None:
        batch, self._tick = self._tick, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._write(batch))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    async def _write(self, batch: list[_Waiting]) -> None:
        claimed: list[str] = []
        error: PublishError | None = None
        try:
            if self.shared is not None:
                claimed = await self.shared.claim_outcomes([o for outcomes, _ in batch for o in outcomes])
            values = self._items([o for outcomes, _ in batch for o in outcomes])
            if values:
                await self.producer.send_raw_many(values)
        except PublishError as exc:
            error = exc
        except BaseException as exc:  # cancelled at shutdown, or a bug: never ACK, never leave a waiter
            self._notify(batch, PublishError(f"write not confirmed: {exc!r}"))
            raise
        if self.shared is not None:
            if error is None:
                self.shared.confirm(claimed)
            else:
                await self.shared.release(claimed)
        self._notify(batch, error)

    @staticmethod
    def _notify(batch: list[_Waiting], error: PublishError | None) -> None:
        for _, callback in batch:
            try:
                callback(error)
            except Exception:  # one connection's failure must not keep the others' replies
                log.exception("reply_callback_failed")

    def _account(self, o: Outcome, published: bool) -> None:
        m = self.metrics
        result = "withheld" if o.held or (o.events and not published) else o.result
        self._child(m.messages, o.token, result).inc()
        if o.result in ("dropped", "duh", "nak") and o.reason:
            self._child(m.decode_errors, o.reason).inc()
        if o.duplicate:
            m.retransmissions.inc()
            if o.reason == "replay":
                self._child(m.decode_errors, "replay").inc()
                log.warning(
                    "replay_ignored", token=o.token, device_id=o.message.device_id() if o.message else None
                )
        msg = o.message
        if msg is not None and o.account is None and msg.account:
            m.unknown_accounts.inc()
        if published:
            events = self._event_children
            for ev in o.events:
                key = (ev.source.protocol, ev.kind)
                child = events.get(key)
                if child is None:
                    child = events[key] = m.events.labels(key[0].value, key[1].value)
                child.inc()
        # One structured line per message at debug; at info only every ``log_every``-th message and
        # every one that was not ACKed (formatting a line per alarm was a tenth of the CPU per message;
        # every ACKed alarm is on alarms.raw with its frame, and the counters above count them all).
        self._handled += 1
        if result != "ack" or self._handled % self.log_every == 0:
            emit = log.info
        elif _debug_enabled():
            emit = log.debug
        else:
            return
        emit(
            "frame_handled",
            result=result,
            token=o.token,
            reason=o.reason,
            device_id=msg.device_id() if msg else None,
            seq=msg.seq if msg else None,
            event_id=str(o.events[0].event_id) if o.events and published else None,
            events=len(o.events) if published else 0,
            handled=self._handled,
        )


class Dc09Server:
    """TCP + UDP listeners on one port. ``port`` is the bound port after :meth:`start` (0 → ephemeral)."""

    def __init__(
        self,
        receiver: Dc09Receiver,
        metrics: ContactIdMetrics,
        *,
        host: str,
        port: int,
        max_frame: int,
        idle_timeout_s: float,
        max_connections: int,
        max_connections_per_peer: int,
    ) -> None:
        self.receiver = receiver
        self.metrics = metrics
        self.host = host
        self.port = port
        self.max_frame = max_frame
        self.idle_timeout_s = idle_timeout_s
        self.max_connections = max_connections
        self.max_connections_per_peer = max_connections_per_peer
        self._tcp: asyncio.Server | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._conns: set[_TcpConnection] = set()
        self._per_peer: Tally[str] = Tally()
        self._udp_tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._files = FileGuard()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # backlog: panels that connect per message arrive in bursts (a power cut, a busy host); asyncio's
        # default of 100 drops their SYNs and each retries after 1 s, 3 s, 7 s … (the kernel caps it at somaxconn)
        # a worker of several (alarmhub_runtime.WorkerSupervisor) shares the port with its siblings
        shared = worker_index() is not None
        self._tcp = await loop.create_server(
            lambda: _TcpConnection(self), self.host, self.port, backlog=4096, reuse_port=shared
        )
        self.port = self._tcp.sockets[0].getsockname()[1]
        guard_accept(self._tcp, self.metrics.connections_rejected.labels("accept_failed").inc, "dc09")
        self._udp, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self), local_addr=(self.host, self.port), reuse_port=shared
        )
        self._sweeper = asyncio.create_task(self._sweep_idle(), name="dc09-idle-sweeper")
        log.info("dc09_listening", host=self.host, port=self.port)

    async def _sweep_idle(self) -> None:
        """Close TCP connections that sent nothing for ``idle_timeout_s`` (one timer for all)."""
        period = max(0.05, min(self.idle_timeout_s / 4, 5.0))
        while True:
            await asyncio.sleep(period)
            horizon = time.monotonic() - self.idle_timeout_s
            for conn in list(self._conns):
                if conn.last_read < horizon and not conn.busy:
                    log.info("connection_idle_closed", peer=conn.peer)
                    conn.close()

    async def stop_accepting(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._tcp is not None:
            self._tcp.close()
        if self._udp is not None:
            self._udp.close()

    async def drain(self, timeout: float = 5.0) -> None:
        """Let in-flight frames finish (their ACKs depend on the broker), then close connections."""
        deadline = time.monotonic() + timeout
        await asyncio.sleep(0)  # a flush queued by call_soon starts its write
        while True:
            pending = (
                set(self._udp_tasks)
                | set(self.receiver._writes)
                | {c.task for c in self._conns if c.task is not None}
            )
            left = deadline - time.monotonic()
            if not pending or left <= 0:
                break
            await asyncio.wait(pending, timeout=left)
            await asyncio.sleep(0)
        for conn in list(self._conns):
            conn.close()
        if self._tcp is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._tcp.wait_closed(), timeout)

    def _admit(self, conn: _TcpConnection) -> bool:
        if len(self._conns) >= self.max_connections:
            self.metrics.connections_rejected.labels("total").inc()
            return False
        if self._files.exhausted(conn.transport):  # descriptors near the file limit, whatever the limit above
            self.metrics.connections_rejected.labels("files").inc()
            return False
        if self._per_peer[conn.peer_ip] >= self.max_connections_per_peer:
            self.metrics.connections_rejected.labels("per_peer").inc()
            log.warning("connection_rejected", peer=conn.peer, reason="per_peer_limit")
            return False
        self._conns.add(conn)
        self._per_peer[conn.peer_ip] += 1
        self.metrics.connections.inc()
        return True

    def _release(self, conn: _TcpConnection) -> None:
        if conn not in self._conns:
            return
        self._conns.discard(conn)
        self._per_peer[conn.peer_ip] -= 1
        if self._per_peer[conn.peer_ip] <= 0:
            del self._per_peer[conn.peer_ip]
        self.metrics.connections.dec()

    async def _handle_frames(self, frames: list[bytes], addr: tuple[str, int]) -> None:
        """A datagram's frames on the async path (an account lookup in the database first)."""
        replies = await self.receiver.process(frames, peer=f"{addr[0]}:{addr[1]}", transport="udp")
        if self._udp is not None and not self._udp.is_closing():
            for reply in replies:
                self._udp.sendto(reply, addr)


class _TcpConnection(asyncio.Protocol):
    """One TCP connection: frames are handled strictly in arrival order, one batch at a time; while a
    batch waits on the broker, further frames queue and reading pauses once too many are queued (the
    transmitter is slowed down instead of buffering without bound).

    A batch is handled synchronously in the read callback and answered from the broker write's
    completion (:meth:`Dc09Receiver.submit`); only a batch that needs an account lookup in the
    database runs as a task.
    """

    MAX_QUEUED = 256

    def __init__(self, server: Dc09Server) -> None:
        self.server = server
        self.framer = Framer(max_frame=server.max_frame)
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.peer_ip = "?"
        self.last_read = time.monotonic()
        self.queued: list[bytes] = []
        self.task: asyncio.Task[None] | None = None
        self.waiting = False  # a batch is in the receiver (decided, its write not yet confirmed)
        self.paused = False
        self.admitted = False

    @property
    def busy(self) -> bool:
        return self.waiting

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio subclasses
        peername = transport.get_extra_info("peername") or ("?", 0)
        self.peer_ip = str(peername[0])
        self.peer = f"{peername[0]}:{peername[1]}"
        self.admitted = self.server._admit(self)
        if not self.admitted:
            transport.close()

    def data_received(self, data: bytes) -> None:
        if not self.admitted:
            return
        self.last_read = time.monotonic()
        garbage = self.framer.garbage
        frames = self.framer.feed(data)
        if self.framer.garbage != garbage:
            self.server.metrics.garbage_bytes.inc(self.framer.garbage - garbage)
        if not frames:
            return
        if self.waiting:
            self.queued += frames
            if len(self.queued) > self.MAX_QUEUED and not self.paused and self.transport is not None:
                self.paused = True
                self.transport.pause_reading()
            return
        self._submit(frames)

    def _submit(self, frames: list[bytes]) -> None:
        self.waiting = True
        try:
            fast = self.server.receiver.submit(frames, peer=self.peer, transport="tcp", done=self._done)
        except Exception:  # the receiver guards itself; this is a last line so one peer cannot kill others
            log.exception("connection_failed", peer=self.peer)
            self.waiting = False
            self.close()
            return
        if not fast:
            self.task = asyncio.get_running_loop().create_task(self._slow(frames))

    async def _slow(self, frames: list[bytes]) -> None:
        try:
            replies = await self.server.receiver.process(frames, peer=self.peer, transport="tcp")
        except Exception:
            log.exception("connection_failed", peer=self.peer)
            self.waiting = False
            self.close()
            return
        finally:
            self.task = None
        self._done(replies)

    def _done(self, replies: list[bytes]) -> None:
        """This connection's batch is decided and, where it carried events, confirmed: answer, go on."""
        transport = self.transport
        if replies and transport is not None and not transport.is_closing():
            transport.write(b"".join(replies) if len(replies) > 1 else replies[0])
        self.waiting = False
        if self.queued and transport is not None and not transport.is_closing():
            batch, self.queued = self.queued, []
            if self.paused:
                self.paused = False
                transport.resume_reading()
            self._submit(batch)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._release(self)
        self.queued.clear()


class _UdpProtocol(asyncio.DatagramProtocol):
    """UDP: each datagram is framed and decided in the receive callback and answered from the broker
    write's completion (:meth:`Dc09Receiver.submit`), as TCP is; only a datagram whose account needs a
    database lookup runs as a task."""

    #: Datagrams in flight at once; beyond this they are dropped (UDP transmitters retry).
    MAX_INFLIGHT = 4096

    def __init__(self, server: Dc09Server) -> None:
        self.server = server
        self.inflight = 0  # decided on the fast path, reply not yet sent

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        server = self.server
        tasks = server._udp_tasks
        if len(tasks) + self.inflight >= self.MAX_INFLIGHT:
            server.metrics.decode_errors.labels("udp_overload").inc()
            return
        framer = Framer(max_frame=server.max_frame)
        frames = framer.feed(data)
        if framer.garbage:
            server.metrics.garbage_bytes.inc(framer.garbage)
        if not frames:
            return
        if len(frames) > 1:
            # One message per datagram (DC-09 over UDP), so at most one reply per datagram: a spoofed
            # source cannot turn one datagram into many replies aimed at a third party.
            server.metrics.decode_errors.labels("udp_extra_frames").inc(len(frames) - 1)
            frames = frames[:1]
        self.inflight += 1

        def done(replies: list[bytes]) -> None:
            self.inflight -= 1
            udp = server._udp
            if udp is not None and not udp.is_closing():
                for reply in replies:
                    udp.sendto(reply, addr)

        try:
            fast = server.receiver.submit(frames, peer=f"{addr[0]}:{addr[1]}", transport="udp", done=done)
        except Exception:  # the receiver guards itself; never let one datagram take the listener down
            self.inflight -= 1
            log.exception("datagram_failed", peer=f"{addr[0]}:{addr[1]}")
            return
        if fast:
            return
        self.inflight -= 1
        task = asyncio.get_running_loop().create_task(server._handle_frames(frames, addr))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def error_received(self, exc: Exception) -> None:
        log.warning("udp_error", error=repr(exc))
