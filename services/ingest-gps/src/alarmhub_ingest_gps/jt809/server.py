"""The JT/T 809 I/O shell: main-link server plus slave-link clients.

Thin: read → :class:`~.session.Jt809LinkSession` → await the injected ``publish`` (the durable Kafka
write) → write the replies of that read. It connects back to the lower platform's down-link address
with 0x9001, keeps it alive with 0x9005, and sends requests down (0x9205/0x9206 tracking, 0x9401
supervision).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alarmhub_events import Event, utcnow
from alarmhub_runtime import get_logger, worker_index

from ..fastfix import RawFix
from ..protocols import jt809 as p
from ..protocols._common import FrameError
from .output import LinkOutput, SlaveTarget
from .passwords import PasswordPool
from .platforms import LinkStatusSink, PlatformDirectory
from .session import Jt809LinkSession

__all__ = ["AnswerSink", "DeadLetter", "Jt809Server", "Publish"]

log = get_logger("alarmhub.ingest_gps.jt809")

#: takes what ``LinkOutput.publish`` holds: events, and ``RawFix`` (a fix already written as JSON)
Publish = Callable[[list[tuple[str, Event | RawFix]]], Awaitable[None]]
DeadLetter = Callable[[bytes, str, str | None], Awaitable[None]]
AnswerSink = Callable[[int, dict[str, Any]], Awaitable[None] | None]


class _GroupWrite:
    """The reads of every link waiting for the broker, written as one producer call (group commit).

    aiokafka keeps one produce request in flight per broker and takes one batch per partition into
    each, so a call per read made ten links' small reads queue as many small batches, each waiting a
    round trip: ten links reached ~25,000 positions/s with the gateway's CPU 40 % idle, and allowing
    more calls only made the queue outlive the producer's timeout. Here at most ``calls`` producer
    calls run at once; reads arriving meanwhile join the next call, so a call grows with the load.
    Each read gets its own future, settled with the call's outcome (a failed write fails every read
    in it, and their links close; the lower platforms back-fill). ``room`` is the backpressure: once
    ``max_items`` records wait, links stop reading their sockets until the next call takes them.
    """

    def __init__(self, publish: Publish, *, calls: int, max_items: int) -> None:
        self._publish = publish
        self._calls = max(1, calls)
        self._max_items = max(1, max_items)
        self._items: list[tuple[str, Event | RawFix]] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._running = 0
        self._scheduled = False
        self._room = asyncio.Event()
        self._room.set()
        self._tasks: set[asyncio.Task[None]] = set()  # calls running (a reference keeps them alive)
        self.calls_made = 0  # how many producer calls the reads took (tests)

    def submit(self, items: list[tuple[str, Event | RawFix]]) -> asyncio.Future[None]:
        """Queue a read's records; the future is done when they are durably written (or failed)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        fut.add_done_callback(_retrieve)
        self._items.extend(items)
        self._waiters.append(fut)
        if len(self._items) >= self._max_items:
            self._room.clear()
        if not self._scheduled and self._running < self._calls:
            self._scheduled = True
            loop.call_soon(self._flush)  # after this iteration's other reads have joined
        return fut

    async def room(self) -> None:
        await self._room.wait()

    def _flush(self) -> None:
        self._scheduled = False
        if not self._items or self._running >= self._calls:
            return
        items, waiters = self._items, self._waiters
        self._items, self._waiters = [], []
        self._room.set()
        self._running += 1
        self.calls_made += 1
        task = asyncio.ensure_future(self._write(items, waiters))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(
        self, items: list[tuple[str, Event | RawFix]], waiters: list[asyncio.Future[None]]
    ) -> None:
        """One producer call; its reads are settled in the same step as the call returns (as when each
        read awaited its own call), so a link's answers of a read (``_apply``) still come before
        anything woken by ``publish`` itself (a command waiting for a position) runs."""
        ok = False
        exc: Exception | None = None
        try:
            await self._publish(items)
            ok = True
        except Exception as e:
            exc = e
        finally:  # cancellation (shutdown) included: then the reads are cancelled
            self._running -= 1
            for w in waiters:
                if not w.done():
                    if ok:
                        w.set_result(None)
                    elif exc is not None:
                        w.set_exception(exc)
                    else:
                        w.cancel()
            if self._items and not self._scheduled:
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._flush)


def _retrieve(fut: asyncio.Future[None]) -> None:
    """A read whose link is gone is never awaited: mark its failure seen (no 'never retrieved' log)."""
    if not fut.cancelled():
        fut.exception()


@dataclass(slots=True)
class _Link:
    session: Jt809LinkSession
    writer: asyncio.StreamWriter
    slave_writer: asyncio.StreamWriter | None = None
    slave_task: asyncio.Task[None] | None = None
    slave_up: bool = False


class Jt809Server:
    """Main-link server plus slave-link clients. Thin: read → session → await publish → reply."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        directory: PlatformDirectory,
        publish: Publish,
        dead_letter: DeadLetter | None = None,
        on_answer: AnswerSink | None = None,
        vehicles: Any = None,
        registry: Any = None,
        idle_timeout_s: float = 180.0,
        slave_heartbeat_s: float = 60.0,
        slave_enabled: bool = True,
        max_frame: int = p.MAX_FRAME,
        read_size: int = 256 * 1024,
        inflight: int = 4,
        inflight_total: int = 2,
        max_pending: int = 10_000,
        group_commit: bool = True,
        on_link_status: LinkStatusSink | None = None,
        clock: Callable[[], datetime] = utcnow,
        direct: bool = True,
        hash_threads: int = 2,
    ) -> None:
        self.host = host
        self._port = port
        self.directory = directory
        self._publish = publish
        self._dead_letter = dead_letter
        self._on_answer = on_answer
        self._vehicles = vehicles
        self._idle = idle_timeout_s
        self._hb = slave_heartbeat_s
        self._slave_enabled = slave_enabled
        self._max_frame = max_frame
        self._read_size = read_size
        self._inflight = inflight
        # every link's reads go to Kafka through one group commit: at most ``inflight_total`` producer calls
        # at once, and beyond ``max_pending`` waiting records the links stop reading their sockets (TCP
        # backpressure) instead of queueing more than the broker confirms within the producer's timeout
        self._writes = _GroupWrite(publish, calls=inflight_total, max_items=max_pending)
        # ``group_commit=False``: each read its own producer call, ``inflight_total`` of them at once (the
        # write pattern before the group commit; kept for A/B runs of bench/jt809.py)
        self._group_commit = group_commit
        self._slots = asyncio.Semaphore(max(1, inflight_total))
        self._on_link = on_link_status
        self._clock = clock
        self._direct = direct  # sessions write live fixes' JSON on the hot path (``RawFix``); False: models
        self.passwords = PasswordPool(hash_threads)  # login hashes off the event loop (passwords.py)
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.links: dict[int, _Link] = {}
        self.stats = {
            "positions": 0,
            "backfilled": 0,
            "alarms": 0,
            "dlq": 0,
            "logins_ok": 0,
            "logins_refused": 0,
        }
        self._metrics = _Metrics(registry) if registry is not None else None

    @property
    def port(self) -> int:
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        return self._port

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle,
            self.host,
            self._port,
            limit=self._max_frame * 2,
            reuse_port=worker_index() is not None,  # one of several gateway workers on the same port
        )
        log.info("jt809_listening", host=self.host, port=self.port)

    async def stop(self) -> None:
        """Stop accepting, close every link (handlers then finish their in-flight writes), cancel stragglers."""
        if self._server is not None:
            self._server.close()
        for link in list(self.links.values()):
            if link.slave_task is not None:
                link.slave_task.cancel()
        for w in list(self._writers):
            w.close()
        if self._conns:
            _, late = await asyncio.wait(list(self._conns), timeout=10)
            for t in late:
                t.cancel()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
        self.passwords.close()

    # ---------------------------------------------------------------- main link

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read and decode while earlier reads are being written to Kafka (up to ``inflight`` of them).

        Outputs are finished strictly in order, each only after its own publish was acknowledged, so a
        reply never overtakes the durable write of anything received before it.
        """
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        self._writers.add(writer)
        addr = writer.get_extra_info("peername")
        peer = f"{addr[0]}:{addr[1]}" if addr else None
        session = Jt809LinkSession(
            self.directory,
            peer=peer,
            vehicles=self._vehicles,
            max_frame=self._max_frame,
            direct=self._direct,
            defer_password=True,
        )
        link = _Link(session, writer)
        pending: asyncio.Queue[tuple[asyncio.Future[None] | None, LinkOutput] | None] = asyncio.Queue(
            self._inflight
        )
        finisher = asyncio.create_task(self._finish(link, pending), name="jt809-finish")
        try:
            while not session.closed and not finisher.done():
                try:
                    data = await asyncio.wait_for(reader.read(self._read_size), self._idle)
                except TimeoutError:
                    log.info("jt809_idle_closed", peer=peer)
                    break
                if not data:
                    break
                out = session.feed(data, self._clock())
                while out.password_check is not None:  # hashed in the pool; the loop serves on meanwhile
                    check = out.password_check
                    await self._submit(out, pending)
                    out = session.finish_login(await self.passwords.verify(*check), self._clock())
                await self._submit(out, pending)
        except (ConnectionError, OSError) as exc:
            log.info("jt809_link_error", peer=peer, error=repr(exc))
        finally:
            if not finisher.done():
                with contextlib.suppress(asyncio.QueueFull):
                    pending.put_nowait(None)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(finisher), 30)
            finisher.cancel()
            while not pending.empty():  # left behind by a failed write: nothing will reply to them
                left = pending.get_nowait()
                if left is not None and left[0] is not None:
                    left[0].cancel()
            lost = session.connection_lost(self._clock())
            with contextlib.suppress(Exception):
                if lost.publish:
                    await self._publish(lost.publish)
            if session.platform is not None and self.links.get(session.platform.user_id) is link:
                del self.links[session.platform.user_id]
                await self._link_status(session.platform.user_id, "down")
            if link.slave_task is not None:
                link.slave_task.cancel()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._conns.discard(task)
            self._writers.discard(writer)

    async def _submit(
        self, out: LinkOutput, pending: asyncio.Queue[tuple[asyncio.Future[None] | None, LinkOutput] | None]
    ) -> None:
        fut = None
        if out.publish:
            if self._group_commit:
                await self._writes.room()
                fut = self._writes.submit(out.publish)
            else:
                await self._slots.acquire()
                fut = asyncio.ensure_future(self._publish(out.publish))
                fut.add_done_callback(lambda _f: self._slots.release())
        await pending.put((fut, out))

    async def _link_status(self, user_id: int, status: str) -> None:
        """Record the link state (``platforms.link_status``); best effort, never fails a link."""
        if self._on_link is None:
            return
        try:
            await asyncio.wait_for(self._on_link(user_id, status), 5)
        except Exception as exc:
            log.warning("jt809_link_status_failed", user_id=user_id, error=repr(exc))

    async def _finish(
        self, link: _Link, pending: asyncio.Queue[tuple[asyncio.Future[None] | None, LinkOutput] | None]
    ) -> None:
        while True:
            item = await pending.get()
            if item is None:
                return
            fut, out = item
            try:
                if fut is not None:
                    await fut  # durable before any reply of this read
                await self._apply(link, out)
            except Exception as exc:
                log.warning("jt809_publish_failed", peer=link.session.peer, error=repr(exc))
                link.session.closed = True
                link.writer.close()
                while not pending.empty():
                    nxt = pending.get_nowait()
                    if nxt is not None and nxt[0] is not None:
                        nxt[0].cancel()
                return

    async def _apply(self, link: _Link, out: LinkOutput) -> None:
        for raw, error in out.dlq:
            self.stats["dlq"] += 1
            if self._metrics:
                self._metrics.frames.labels("dlq").inc()
            if self._dead_letter is not None:
                await self._dead_letter(raw, error, link.session.peer)
        if out.replies:
            link.writer.write(b"".join(out.replies))
            await link.writer.drain()
        self.stats["positions"] += out.positions
        self.stats["backfilled"] += out.backfilled
        self.stats["alarms"] += out.alarms
        if self._metrics:
            if out.positions:
                self._metrics.positions.labels("live").inc(out.positions)
            if out.backfilled:
                self._metrics.positions.labels("backfill").inc(out.backfilled)
        if out.login_result is not None:
            ok = out.login_result == p.LOGIN_OK
            self.stats["logins_ok" if ok else "logins_refused"] += 1
            if self._metrics:
                self._metrics.logins.labels(_LOGIN_NAMES.get(out.login_result, "other")).inc()
            if ok and link.session.platform is not None:
                old = self.links.pop(link.session.platform.user_id, None)
                if old is not None and old.slave_task is not None:
                    old.slave_task.cancel()
                self.links[link.session.platform.user_id] = link
                await self._link_status(link.session.platform.user_id, "up")
        if out.slave is not None and self._slave_enabled:
            link.slave_task = asyncio.create_task(self._slave(link, out.slave), name="jt809-slave")
        if self._on_answer is not None and link.session.platform is not None:
            for ans in out.answers:
                res = self._on_answer(link.session.platform.user_id, ans)
                if asyncio.iscoroutine(res):
                    await res

    # ---------------------------------------------------------------- slave link

    async def _slave(self, link: _Link, target: SlaveTarget) -> None:
        """Connect back to the lower platform's down-link, log in with 0x9001, keep it alive with 0x9005."""
        backoff = 1.0
        session = link.session
        while not session.closed:
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(target.ip, target.port), 10)
            except (OSError, TimeoutError) as exc:
                log.info("jt809_slave_connect_failed", target=f"{target.ip}:{target.port}", error=repr(exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)
                continue
            framer = p.Framer(self._max_frame)
            try:
                writer.write(session.frame(p.DOWN_CONNECT_REQ, p.encode_slave_login(target.verify_code)))
                await writer.drain()
                ok = await self._await_msg(reader, framer, session, p.DOWN_CONNECT_RSP, 10.0)
                if ok is None or ok.body[:1] != b"\x00":
                    raise ConnectionError(f"slave login refused: {ok.body.hex() if ok else 'timeout'}")
                link.slave_writer, link.slave_up = writer, True
                if session.platform is not None:
                    await self._link_status(session.platform.user_id, "up+slave")
                backoff = 1.0
                log.info("jt809_slave_up", user_id=session.platform.user_id if session.platform else None)
                while not session.closed:
                    writer.write(session.frame(p.DOWN_LINKTEST_REQ, b""))
                    await writer.drain()
                    if await self._await_msg(reader, framer, session, p.DOWN_LINKTEST_RSP, self._hb) is None:
                        raise ConnectionError("slave keepalive unanswered")
                    await asyncio.sleep(self._hb)
            except (OSError, ConnectionError, TimeoutError, FrameError) as exc:
                log.info("jt809_slave_down", error=repr(exc))
            finally:
                link.slave_up, link.slave_writer = False, None
                writer.close()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 60.0)

    async def _await_msg(
        self,
        reader: asyncio.StreamReader,
        framer: p.Framer,
        session: Jt809LinkSession,
        msg_id: int,
        timeout: float,
    ) -> p.Frame | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                return None
            try:
                data = await asyncio.wait_for(reader.read(65536), left)
            except TimeoutError:
                return None
            if not data:
                raise ConnectionError("slave link closed")
            for payload in framer.feed(data):
                try:
                    frame = p.decode(
                        payload,
                        edition=session.edition or p.Edition.V2011,
                        cipher=session.platform.cipher if session.platform else None,
                    )
                except FrameError:
                    continue
                if frame.msg_id == msg_id:
                    return frame

    def enforce(self, directory: PlatformDirectory) -> int:
        """Close the links of platforms removed or disabled in the registry (after a refresh); how many."""
        closed = 0
        for user_id, link in list(self.links.items()):
            rec = directory.by_user.get(user_id)
            if rec is None or rec.disabled:
                log.warning("jt809_link_revoked", user_id=user_id, reason="disabled" if rec else "removed")
                link.session.closed = True
                link.writer.close()
                closed += 1
            elif (
                rec != link.session.platform
            ):  # name, allowed plates, keys: the live link follows the registry
                link.session.platform = rec
        return closed

    # ---------------------------------------------------------------- requests down

    def link_for(self, device_id: str, platform: str | None = None) -> _Link | None:
        """The live link of the platform forwarding ``device_id``.

        ``platform`` (the event's ``source.platform``: registry name or user id) picks the link when it
        is up; otherwise the link that has forwarded the vehicle, else the only link whose allowed plates
        list it. None when no live link fits.
        """
        live = [link for link in self.links.values() if link.session.logged_in]
        if platform:
            for link in live:
                rec = link.session.platform
                if rec is not None and platform in (rec.label, str(rec.user_id)):
                    return link
        for link in live:
            if link.session.knows(device_id):
                return link
        plate = device_id.rpartition(":")[0]
        listed = [
            link
            for link in live
            if link.session.platform is not None
            and link.session.platform.allowed_plates is not None
            and (
                device_id in link.session.platform.allowed_plates
                or plate in link.session.platform.allowed_plates
            )
        ]
        return listed[0] if len(listed) == 1 else None

    async def send_down(self, user_id: int, msg_id: int, body: bytes) -> bool:
        """Send a 0x9xxx request over the slave link (the main link when the slave is down)."""
        link = self.links.get(user_id)
        if link is None or link.session.closed:
            return False
        writer = link.slave_writer if link.slave_up and link.slave_writer is not None else link.writer
        writer.write(link.session.frame(msg_id, body))
        await writer.drain()
        return True

    async def request_tracking(
        self, user_id: int, plate: str, colour: int, *, start: bool = True, reason: int = 2
    ) -> bool:
        """0x9205/0x9206: start/stop forwarding a vehicle's live positions (reason 2 = emergency)."""
        sub = p.DOWN_EXG_MSG_RETURN_STARTUP if start else p.DOWN_EXG_MSG_RETURN_END
        data = p.encode_return_startup(reason) if start else p.encode_return_end(reason)
        return await self.send_down(user_id, p.DOWN_EXG_MSG, p.encode_vehicle(plate, colour, sub, data))

    async def supervise(self, user_id: int, plate: str, colour: int, supervision: p.Supervision) -> bool:
        """0x9401: alarm supervision; the answer comes back as 0x1401 through ``on_answer``."""
        return await self.send_down(
            user_id,
            p.DOWN_WARN_MSG,
            p.encode_vehicle(plate, colour, p.DOWN_WARN_MSG_URGE_TODO_REQ, p.encode_9401(supervision)),
        )


_LOGIN_NAMES = {
    p.LOGIN_OK: "ok",
    p.LOGIN_BAD_IP: "bad_ip",
    p.LOGIN_BAD_ACCESS_CODE: "bad_access_code",
    p.LOGIN_UNKNOWN_USER: "unknown_platform",
    p.LOGIN_BAD_PASSWORD: "bad_password",
    p.LOGIN_OTHER: "disabled",
}


class _Metrics:
    def __init__(self, registry: Any) -> None:
        from prometheus_client import Counter

        self.logins = Counter(
            "alarmhub_ingest_gps_jt809_logins_total",
            "JT/T 809 main-link logins by result",
            ["result"],
            registry=registry,
        )
        self.positions = Counter(
            "alarmhub_ingest_gps_jt809_positions_total",
            "JT/T 809 positions taken in",
            ["kind"],
            registry=registry,
        )
        self.frames = Counter(
            "alarmhub_ingest_gps_jt809_frames_total",
            "JT/T 809 frames by result",
            ["result"],
            registry=registry,
        )
