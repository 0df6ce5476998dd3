"""State the DC-09 receivers share through Redis, so that N receivers behind one address (or on the two
paths of a dual-path communicator, or ``SO_REUSEPORT`` workers on one host) answer as one.

Keys (``<prefix>`` is ``ALARMHUB_DC09_REDIS_PREFIX``, default ``<topic prefix>dc09:``). Every key of one
account carries the account in a hash tag, so they sit in one Redis Cluster slot and no command spans
slots (each command below names a single key; pipelines are not transactions):

=============================================  ==========================================================
``<prefix>{L<line>#<acct>}:m:<digest>``          a message's retransmission memory: ``pending:<node>``
                                                 while one receiver publishes it (``pending_s``), then
                                                 ``done`` for the replay horizon
``<prefix>{L<line>#<acct>}:last``                when the account was last heard (epoch seconds, max of
                                                 every receiver's; refreshed for a day)
``<prefix>{L<line>#<acct>}:missed``              the account's supervision miss was published: when, by whom
=============================================  ==========================================================

The order of a message: *claim* (``SET NX GET``: nobody had it → publish; ``done`` → a retransmission,
ACK without publishing; ``pending`` → another receiver is writing it now: no reply, the transmitter
retries and then finds ``done``), publish and await the broker, *confirm* (``done``) in the background
while the ACK goes out. The remaining window, stated: a receiver that dies between the broker's
confirmation and the ``done`` write leaves ``pending`` to expire, and a retransmission after that is
published again (triage's dedup absorbs it).

One write per event-loop iteration: the claims of every connection, the confirms and the accounts'
``last`` heard are queued and go to Redis together, as one write of packed commands on one of
redis-py's pooled connections (so Sentinel, TLS and AUTH stay redis-py's), the replies read in order and
handed back per request. A claim (and the ``last`` heard, every ``flush_delay_s``) is sent at the end
of the iteration it was asked in; a confirm waits for the next claim but at most ``confirm_delay_s``
(a retransmission to another receiver within that window is held, not answered: the transmitter
retries; the window above grows by it). Each small loopback write costs the kernel more than the
Python around it: per lone alarm this is one Redis write (its claim, carrying the previous alarm's
confirm) instead of two.

Redis unreachable: every call answers from this receiver's own memory (claim → publish; supervision as
a single receiver), ``alarmhub_ingest_contactid_shared_state_up`` drops to 0, each failed call counts in
``…_shared_state_errors_total{op}`` and one ``shared_state_unavailable`` line is logged per outage.
Alarms are never refused because the shared state is down. After a failure Redis is not tried again for
``retry_s``, so a hung Redis costs at most one timeout per ``retry_s``, not one per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from alarmhub_runtime import get_logger
from redis.exceptions import ConnectionError as RedisConnectionError

from .metrics import ContactIdMetrics
from .session import Outcome

__all__ = ["Claim", "SharedState"]

log = get_logger("alarmhub.ingest_contactid.shared")

Claim = Literal["new", "done", "pending"]

# a single key each (Cluster-safe): keep the larger timestamp, refresh the expiry
_MAX_SET = """
local v = redis.call('GET', KEYS[1])
if v == false or tonumber(v) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
else
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 1
"""
# release a claim only if it is still ours (a slow receiver must not delete another's claim)
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_LAST_TTL_S = 86_400
_MAX_SET_B = _MAX_SET.encode()


class SharedState:
    """The shared memory of one receiver process. ``redis`` is a ``redis.asyncio`` client (Sentinel or not)."""

    def __init__(
        self,
        redis: Any,
        prefix: str,
        *,
        node: str,
        metrics: ContactIdMetrics,
        horizon_s: float,
        pending_s: float = 30.0,
        retry_s: float = 1.0,
        flush_delay_s: float = 0.05,
        confirm_delay_s: float = 0.01,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.node = node
        self.metrics = metrics
        self.horizon_ms = int(horizon_s * 1000)
        self.pending_ms = int(pending_s * 1000)
        self.retry_s = retry_s
        self.flush_delay_s = flush_delay_s
        self.confirm_delay_s = confirm_delay_s
        self._queued: list[_Request] = []  # the next write to Redis
        self._kick: asyncio.Handle | None = None  # when it goes (call_soon or call_later)
        self._kick_due = 0.0
        self._down_until = 0.0
        self._up = True
        self._heard: dict[str, float] = {}
        self._flush: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._probe: asyncio.Task[None] | None = None  # while down: PING every retry_s until Redis answers
        self._mine = f"pending:{node}".encode()
        metrics.shared_up.set(1)

    # ------------------------------------------------------------------------------ keys

    def _key(self, device_id: str, what: str) -> str:
        return f"{self.prefix}{{{device_id}}}:{what}"

    def message_key(self, device_id: str, digest: bytes) -> str:
        return self._key(device_id, "m:" + digest.hex())

    # ---------------------------------------------------------------------------- health

    @property
    def available(self) -> bool:
        """Whether Redis is to be tried now (not within ``retry_s`` of a failure)."""
        return time.monotonic() >= self._down_until

    def _errors(self, *ops: str) -> None:
        """Count a failed (or not tried) call of each of ``ops``."""
        for op in ops:
            self.metrics.shared_errors.labels(op).inc()

    def _failed(self, op: str, exc: BaseException, *more: str) -> None:
        self._errors(op, *more)
        self._down_until = time.monotonic() + self.retry_s
        if self._up:
            self._up = False
            self.metrics.shared_up.set(0)
            log.warning("shared_state_unavailable", op=op, error=repr(exc), fallback="local_memory")
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().create_task(
                self._probe_until_up(), name="dc09-shared-probe"
            )

    async def _probe_until_up(self) -> None:
        """While Redis is marked down, try it (PING) once per ``retry_s``, so ``shared_state_up`` and the
        next message's path come back when Redis does, not when the next new alarm happens to arrive (a
        receiver hearing only retransmissions, answered from local memory, or nothing, never tried again).
        Ends once Redis answers; cancelled by :meth:`close`."""
        while not self._up:
            await asyncio.sleep(max(0.0, self._down_until - time.monotonic()))
            if not self._up and self.available:  # (another call may have found Redis back meanwhile)
                await self._send("probe", [_command(b"PING")])

    def _ok(self) -> None:
        if not self._up:
            self._up = True
            self.metrics.shared_up.set(1)
            log.info("shared_state_restored")

    async def _send(self, op: str, commands: list[bytes], *more: str) -> list[Any] | None:
        """Run commands packed by :func:`_command` on one of the client's connections: one write, then
        the replies in order; ``None`` on failure, as :meth:`_run`. The per-message calls (claim, confirm,
        heard) go this way: through redis-py's pipeline, which packs and bookkeeps each command in Python,
        they were ~43 % of the receiver's CPU per message (docs/capacity.md, DC-09 receiver). Any failure
        (an error reply too) drops that connection, so no reply is left unread on it; a connection found
        broken is replaced and the commands sent once more, as redis-py's retry does (a claim sent twice
        finds its own ``pending`` and is held: the transmitter retries, nothing is published twice).
        ``more``: the ops of the other requests in the write, each counted on failure as ``op`` is."""
        if not self.available:
            self._errors(op, *more)
            return None
        pool = self.redis.connection_pool
        packed = b"".join(commands)
        for attempt in (1, 2):
            try:
                conn = await pool.get_connection()
            except Exception as exc:  # no connection to be had: as any other failure
                self._failed(op, exc, *more)
                return None
            try:
                await conn.send_packed_command(packed, check_health=False)
                # one deadline for the write's replies (the client's socket timeout), not one timer per reply
                async with asyncio.timeout(conn.socket_timeout):
                    out = [await conn.read_response(timeout=math.inf) for _ in commands]
            except BaseException as exc:  # an error reply, a broken or hung connection, a cancellation
                with contextlib.suppress(Exception):
                    await conn.disconnect()
                if not isinstance(exc, Exception):
                    raise
                if attempt == 1 and isinstance(exc, RedisConnectionError):
                    continue
                self._failed(op, exc, *more)
                return None
            finally:
                await pool.release(conn)
            self._ok()
            return out
        return None  # not reached

    async def _run(self, op: str, pipe: Any) -> list[Any] | None:
        if not self.available:
            self._errors(op)
            return None
        try:
            out = await pipe.execute()
        except Exception as exc:  # ConnectionError, TimeoutError, a failover in progress (READONLY)
            self._failed(op, exc)
            return None
        self._ok()
        return list(out)

    # ------------------------------------------------------------------ retransmission memory

    async def claim(self, keys: Sequence[str]) -> list[Claim]:
        """Claim each message for publishing; Redis down: every one is ``new`` (local memory decides)."""
        if not keys:
            return []
        mine, px = self._mine, b"%d" % self.pending_ms
        fut = asyncio.get_running_loop().create_future()
        self._queue(
            _Request(
                "claim", [_command(b"SET", k.encode(), mine, b"NX", b"GET", b"PX", px) for k in keys], fut
            ),
            0.0,
        )
        out = await fut
        if out is None:
            return ["new"] * len(keys)
        verdicts: list[Claim] = []
        for old in out:
            if old is None:
                verdicts.append("new")
            elif old in (b"done", "done"):
                verdicts.append("done")
            else:
                verdicts.append("pending")
        return verdicts

    async def claim_outcomes(self, outcomes: Sequence[Outcome]) -> list[str]:
        """Claim the messages of ``outcomes`` (the session's decisions, before the broker write): one
        another receiver published already becomes a retransmission (ACK only, nothing published), one
        it is publishing now is held (no reply). Returns the keys this receiver claimed."""
        keyed = [
            (o, self.message_key(o.message.device_id(), o.dedup_key))
            for o in outcomes
            if o.dedup_key is not None and o.message is not None
        ]
        verdicts = await self.claim([k for _, k in keyed])
        claimed: list[str] = []
        for (o, key), verdict in zip(keyed, verdicts, strict=True):
            if verdict == "new":
                claimed.append(key)
                continue
            o.events = []
            if verdict == "done":
                o.duplicate, o.reason, o.dedup_key = True, "retransmission", None
            else:
                o.held, o.reason = True, "held_elsewhere"
        return claimed

    def confirm(self, keys: Sequence[str]) -> None:
        """The broker confirmed these messages: mark them ``done`` (in the background, with the next
        claim or within ``confirm_delay_s``; see the module doc)."""
        if keys:
            px = b"%d" % self.horizon_ms
            commands = [_command(b"SET", k.encode(), b"done", b"PX", px) for k in keys]
            self._queue(_Request("confirm", commands), self.confirm_delay_s)

    # ------------------------------------------------------------------ one write per iteration

    def _queue(self, request: _Request, delay: float) -> None:
        """Add ``request`` to the next write and have that go within ``delay`` (0: this iteration)."""
        self._queued.append(request)
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        if self._kick is not None:
            if self._kick_due <= due:
                return
            self._kick.cancel()
        self._kick_due = due
        self._kick = loop.call_soon(self._start) if delay <= 0 else loop.call_later(delay, self._start)

    def _start(self) -> None:
        self._kick = None
        batch, self._queued = self._queued, []
        if batch:
            self._spawn(self._write(batch))

    async def _write(self, batch: list[_Request]) -> None:
        """One write for the requests of ``batch``; each gets its replies (``None``: failed)."""
        first, *others = (r.op for r in batch)
        try:
            out = await self._send(first, [c for r in batch for c in r.commands], *others)
        except BaseException:  # cancelled (shutdown): the waiting claims are cancelled too
            for r in batch:
                if r.waiter is not None and not r.waiter.done():
                    r.waiter.cancel()
            raise
        at = 0
        for r in batch:
            n = len(r.commands)
            part = None if out is None else out[at : at + n]
            at += n
            if r.waiter is not None and not r.waiter.done():
                r.waiter.set_result(part)
            if part is None and r.heard:
                self._reheard(r.heard)

    def _send_now(self) -> None:
        if self._kick is not None:
            self._kick.cancel()
            self._start()

    async def release(self, keys: Sequence[str]) -> None:
        """The write failed: give the claims back so a retransmission (to any receiver) publishes."""
        if not keys:
            return
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.eval(_RELEASE, 1, key, f"pending:{self.node}")
        await self._run("release", pipe)

    # ----------------------------------------------------------------------------- supervision

    def heard(self, device_id: str, at: datetime) -> None:
        """Note that an account was heard; written to Redis within ``flush_delay_s`` (one call for all)."""
        ts = at.timestamp()
        if ts > self._heard.get(device_id, 0.0):
            self._heard[device_id] = ts
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(self.flush_delay_s, self._start_flush)

    def _start_flush(self) -> None:
        self._flush = None
        request = self._heard_request(None)
        if request is not None:  # now, with the confirms waiting (at most one write per flush_delay_s)
            self._queue(request, 0.0)

    async def flush_heard(self) -> None:
        """Write the accounts heard so far now, and wait for it."""
        request = self._heard_request(asyncio.get_running_loop().create_future())
        if request is not None and request.waiter is not None:
            self._queue(request, 0.0)
            await request.waiter

    def _heard_request(self, waiter: asyncio.Future[Any] | None) -> _Request | None:
        heard, self._heard = self._heard, {}
        if not heard:
            return None
        ttl = b"%d" % _LAST_TTL_S
        commands = [
            _command(b"EVAL", _MAX_SET_B, b"1", self._key(d, "last").encode(), repr(ts).encode(), ttl)
            for d, ts in heard.items()
        ]
        return _Request("heard", commands, waiter, heard)

    def _reheard(self, heard: dict[str, float]) -> None:
        """The write failed: keep them for the next flush (the newest wins)."""
        for device_id, ts in heard.items():
            if ts > self._heard.get(device_id, 0.0):
                self._heard[device_id] = ts

    async def snapshot(
        self, device_ids: Iterable[str]
    ) -> tuple[dict[str, datetime], dict[str, datetime]] | None:
        """When each account was last heard by any receiver, and which are marked missed; ``None``
        when Redis is down (supervise on this receiver's own knowledge)."""
        ids = list(device_ids)
        if not ids:
            return {}, {}
        pipe = self.redis.pipeline(transaction=False)
        for device_id in ids:
            pipe.get(self._key(device_id, "last"))
            pipe.get(self._key(device_id, "missed"))
        out = await self._run("snapshot", pipe)
        if out is None:
            return None
        last = {
            d: datetime.fromtimestamp(float(v), UTC)
            for d, v in zip(ids, out[0::2], strict=True)
            if v is not None
        }
        missed = {
            d: datetime.fromtimestamp(float(_text(v).split("|", 1)[0]), UTC)
            for d, v in zip(ids, out[1::2], strict=True)
            if v is not None
        }
        return last, missed

    async def transition(
        self, device_id: str, state: Literal["missed", "restored"], at: datetime
    ) -> bool | None:
        """Take the right to publish a supervision transition: ``True`` ours, ``False`` another receiver's
        (already published), ``None`` Redis down (publish on local knowledge)."""
        key = self._key(device_id, "missed")
        pipe = self.redis.pipeline(transaction=False)
        if state == "missed":
            pipe.set(key, self._mark(at), nx=True, ex=_LAST_TTL_S * 7)
        else:
            pipe.delete(key)
        out = await self._run("supervision", pipe)
        if out is None:
            return None
        return bool(out[0])

    def _mark(self, at: datetime) -> str:
        return f"{at.timestamp()!r}|{self.node}"

    async def undo(self, device_id: str, state: Literal["missed", "restored"], at: datetime) -> None:
        """The transition's publish failed: put the shared state back so it is tried again."""
        key = self._key(device_id, "missed")
        pipe = self.redis.pipeline(transaction=False)
        if state == "missed":
            pipe.eval(_RELEASE, 1, key, self._mark(at))
        else:
            pipe.set(key, self._mark(at), ex=_LAST_TTL_S * 7)
        await self._run("supervision", pipe)

    # -------------------------------------------------------------------------------- lifecycle

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Write what is pending (bounded by the client's timeout), then close the client."""
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        self._send_now()  # the queued confirms
        await self.flush_heard()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2.0)
        await self.redis.aclose()


class _Request:
    """Commands of one call for the next write; ``waiter`` gets their replies (``None``: failed)."""

    __slots__ = ("commands", "heard", "op", "waiter")

    def __init__(
        self,
        op: str,
        commands: list[bytes],
        waiter: asyncio.Future[Any] | None = None,
        heard: dict[str, float] | None = None,
    ) -> None:
        self.op = op
        self.commands = commands
        self.waiter = waiter
        self.heard = heard  # the accounts' last heard these commands write (kept again if they fail)


def _command(*args: bytes) -> bytes:
    """One command in the Redis protocol (RESP), as redis-py's ``pack_command`` writes it."""
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
