"""Operator requests down a JT/T 809 platform link, and their correlated answers.

dispatch's vehicle commands reach ingest-gps's internal ``POST /commands``; for a vehicle forwarded by
a lower-level platform (``device_id`` ``plate:colour``) the command becomes a request on that
platform's link (the slave link, or the main link while the slave link is down):

- ``track``      → 0x9200/0x9205 start forwarding the vehicle's positions; answered by 0x1200/0x1205.
  The answer also carries the first live position of the vehicle received after the request, when one
  arrives within ``position_wait_s`` of the acknowledgement (many platforms skip the 0x1205 and just
  start forwarding: a position alone also counts as the answer, with ``ack`` null).
- ``track_stop`` → 0x9200/0x9206 stop forwarding; answered by 0x1200/0x1206.
- ``supervise``  → 0x9400/0x9401 alarm supervision (督办) with a fresh supervision id; answered by
  0x1400/0x1401 carrying the same id and the platform's result (0 processing, 1 handled, 2 no action,
  3 later).

Correlation keys: (platform user id, ``plate:colour``, answer sub-type) for the tracking acks, (user id,
supervision id) for 0x1401. A tracking ack arriving after the caller stopped waiting is logged and
counted (``late``), nothing else: the dispatcher sees ``timeout`` on the incident.

A supervision stays open until its deadline (1 h by default) and platforms commonly answer "processing"
first and "handled" later, so every sent 0x9401 is remembered (user id, supervision id) → vehicle until
its deadline (bounded: oldest evicted beyond ``max_supervisions``). A 0x1401 that no caller takes (late,
or a further answer for the same id) is published durably on ``devices.status`` as a ``DeviceStatus``
(``status=other``, ``attributes.jt809_supervision_answer``) for the vehicle, which dispatch appends to
the vehicle's open incident. A 0x1401 for an id never sent here (or past its deadline) is only logged.

Several gateway processes, or a restart: the platform's link can come back on another process (or on
this one, its memory gone) while a supervision is still open. With a :class:`SharedSupervisions`
(wired by the app on the gateway's Redis) every sent 0x9401 is also written to Redis until its
deadline, and an answer this process does not know is looked up there before it is given up.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from alarmhub_events import (
    DEVICES_STATUS,
    SUPERVISION_ANSWER,
    TELEMETRY_GPS,
    DeviceStatus,
    DeviceStatusKind,
    Event,
    GpsFix,
    Protocol,
    utcnow,
)
from alarmhub_runtime import get_logger

from ..fastfix import RawFix
from ..protocols import jt809 as p
from .server import Jt809Server

__all__ = [
    "COMMANDS_809",
    "SUPERVISION_RESULTS",
    "Jt809Commands",
    "SharedSupervisions",
    "split_device_id",
    "warn_type_code",
]

log = get_logger("alarmhub.ingest_gps.jt809")

COMMANDS_809 = ("track", "track_stop", "supervise")
#: 0x1401 RESULT (JT/T 809-2011 §4.5.4.2.1)
SUPERVISION_RESULTS = {0: "processing", 1: "handled", 2: "no_action", 3: "later"}
_WARN_CODES = {name: code for code, name in p.WARN_TYPES.items()}

Publish = Callable[[list[tuple[str, Event]]], Awaitable[None]]


@dataclass(slots=True, frozen=True)
class _Sent:
    """A 0x9401 this process sent: whose vehicle, on which platform, answerable until ``expires`` (monotonic)."""

    device_id: str
    platform: str
    expires: float


class SharedSupervisions:
    """Sent 0x9401s in Redis: ``<prefix>jt809:sup:<user id>:<supervision id>`` → ``[vehicle, platform]``,
    expiring at the supervision's deadline.

    Why: a 0x1401 "handled" can come an hour after the request, on whichever process holds the platform's
    link by then. Best effort: with Redis down a supervision is still sent and answered on this process;
    only the fallback for another process is lost (counted as ``answer_unshared``). Supervision ids start
    at a random 30-bit number per process, so two processes' ids for one platform collide only by chance
    (then the later request's vehicle wins the shared key; the answers still name the supervision id).
    """

    def __init__(self, redis: Any, prefix: str, *, timeout_s: float = 1.0) -> None:
        self.redis = redis
        self.prefix = prefix
        self.timeout_s = timeout_s

    def _key(self, user_id: int, supervision_id: int) -> str:
        return f"{self.prefix}jt809:sup:{user_id}:{supervision_id}"

    async def put(
        self, user_id: int, supervision_id: int, device_id: str, platform: str, ttl_s: float
    ) -> None:
        await asyncio.wait_for(
            self.redis.set(
                self._key(user_id, supervision_id),
                json.dumps([device_id, platform]),
                ex=max(1, int(ttl_s + 0.999)),
            ),
            self.timeout_s,
        )

    async def get(self, user_id: int, supervision_id: int) -> tuple[str, str] | None:
        raw = await asyncio.wait_for(self.redis.get(self._key(user_id, supervision_id)), self.timeout_s)
        if raw is None:
            return None
        device_id, platform = json.loads(raw)
        return str(device_id), str(platform)


def split_device_id(device_id: str) -> tuple[str, int]:
    """``粤B12345:2`` → (``粤B12345``, 2); ValueError when it is not a JT/T 809 vehicle id."""
    plate, sep, colour = device_id.rpartition(":")
    if not sep or not plate or not colour.isdigit() or int(colour) > 255:
        raise ValueError(f"{device_id!r} is not 'plate:colour'")
    return plate, int(colour)


def warn_type_code(value: Any) -> int:
    """A 0x1402 WARN_TYPE from a number or from the names alarmhub gives them (``theft``); else 0x00FF other."""
    if isinstance(value, int) and 0 <= value <= 0xFFFF:
        return value
    text = str(value or "").strip()
    if text.lower().startswith("0x"):
        return int(text, 16) & 0xFFFF
    if text.isdigit():
        return int(text) & 0xFFFF
    return _WARN_CODES.get(text.lower(), 0x00FF)


def _time(value: Any, default: datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        t = datetime.fromisoformat(value)
        return t if t.tzinfo else default
    return default


def _position(fix: GpsFix) -> dict[str, Any]:
    return {
        "lat": fix.lat,
        "lon": fix.lon,
        "valid": fix.valid,
        "speed_kmh": fix.speed_kmh,
        "heading_deg": fix.heading_deg,
        "occurred_at": fix.occurred_at.isoformat(),
    }


class Jt809Commands:
    """Sends the requests and resolves the waiting callers from ``on_answer`` and the published fixes."""

    def __init__(
        self,
        server: Jt809Server | None = None,
        *,
        position_wait_s: float = 3.0,
        metrics: Any = None,
        publish: Publish | None = None,
        max_supervisions: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        shared: SharedSupervisions | None = None,
    ) -> None:
        self.server = server
        self.position_wait_s = position_wait_s
        self.metrics = metrics  # GpsMetrics (its ``commands`` counter) or None
        self.publish = publish  # the durable write (acks=all); None: unanswered supervisions are only logged
        self.max_supervisions = max_supervisions
        self.shared = shared  # the other processes' sent supervisions (Redis), or None: this process's only
        self._clock = clock
        self.late = 0
        self.answers_published = 0
        # (user id, supervision id) → the vehicle, until the 0x9401's deadline; insertion order = expiry order
        # for equal deadlines, and the oldest goes first when full
        self._sent: OrderedDict[tuple[int, int], _Sent] = OrderedDict()
        self._acks: dict[tuple[int, str, int], asyncio.Future[dict[str, Any]]] = {}
        self._supervisions: dict[tuple[int, int], asyncio.Future[dict[str, Any]]] = {}
        self._positions: dict[str, list[asyncio.Future[GpsFix]]] = {}
        self._next_supervision = secrets.randbelow(1 << 30) + 1

    # ------------------------------------------------------------------ answers in

    async def on_answer(self, user_id: int, answer: dict[str, Any]) -> None:
        """The link server's ``on_answer``: a 0x1205/0x1206 acknowledgement or a 0x1401 supervision answer."""
        sub = answer.get("sub_type")
        if sub in (p.UP_EXG_MSG_RETURN_STARTUP_ACK, p.UP_EXG_MSG_RETURN_END_ACK):
            fut = self._acks.pop((user_id, str(answer.get("device_id")), int(sub)), None)
        elif sub == p.UP_WARN_MSG_URGE_TODO_ACK:
            fut = self._supervisions.pop((user_id, int(answer.get("supervision_id", -1))), None)
            if (fut is None or fut.done()) and await self._publish_answer(user_id, answer):
                return
        else:
            return
        if fut is None or fut.done():
            self.late += 1
            log.info(
                "jt809_answer_uncorrelated",
                user_id=user_id,
                sub_type=f"0x{int(sub):04x}",
                device_id=answer.get("device_id"),
            )
            return
        fut.set_result(answer)

    def _remember(
        self, user_id: int, supervision_id: int, device_id: str, platform: str, deadline_s: float
    ) -> None:
        now = self._clock()
        while self._sent:  # drop the expired from the front (a shorter deadline behind a longer one waits)
            key, sent = next(iter(self._sent.items()))
            if sent.expires > now and len(self._sent) < self.max_supervisions:
                break
            del self._sent[key]
        self._sent[(user_id, supervision_id)] = _Sent(device_id, platform, now + max(deadline_s, 0.0))

    async def _share(
        self, user_id: int, supervision_id: int, device_id: str, platform: str, deadline_s: float
    ) -> None:
        if self.shared is None:
            return
        try:
            await self.shared.put(user_id, supervision_id, device_id, platform, deadline_s)
        except Exception as exc:  # Redis down: the supervision goes out anyway, answerable on this process
            self._count("supervise", "answer_unshared")
            log.warning(
                "jt809_supervision_not_shared",
                user_id=user_id,
                supervision_id=supervision_id,
                error=repr(exc),
            )

    async def _recall(self, user_id: int, supervision_id: int) -> _Sent | None:
        """A supervision another process (or this one before a restart) sent, from Redis; None: unknown."""
        if self.shared is None:
            return None
        try:
            found = await self.shared.get(user_id, supervision_id)
        except Exception as exc:
            log.warning(
                "jt809_supervision_lookup_failed",
                user_id=user_id,
                supervision_id=supervision_id,
                error=repr(exc),
            )
            return None
        if found is None:
            return None
        return _Sent(found[0], found[1], self._clock() + 1.0)  # its deadline is the Redis key's

    async def _publish_answer(self, user_id: int, answer: dict[str, Any]) -> bool:
        """A 0x1401 no caller waits for: onto ``devices.status`` for the vehicle's incident. False: unknown id."""
        sid = int(answer.get("supervision_id", -1))
        if self.publish is None:
            return False
        sent = self._sent.get((user_id, sid))
        if sent is None or sent.expires <= self._clock():
            sent = await self._recall(user_id, sid)
            if sent is None:
                return False
        result = int(answer.get("result", -1))
        now = utcnow()
        status = DeviceStatus(
            device_id=sent.device_id,
            protocol=Protocol.JT809,
            status=DeviceStatusKind.OTHER,
            occurred_at=now,
            received_at=now,
            attributes={
                SUPERVISION_ANSWER: {
                    "supervision_id": sid,
                    "result": result,
                    "result_text": SUPERVISION_RESULTS.get(result, "other"),
                    "platform": sent.platform,
                }
            },
        )
        try:
            await self.publish([(DEVICES_STATUS, status)])
        except Exception as exc:  # the link keeps running; the platform does not resend a 0x1401
            self._count("supervise", "answer_lost")
            log.warning(
                "jt809_supervision_answer_not_published",
                user_id=user_id,
                supervision_id=sid,
                device_id=sent.device_id,
                error=repr(exc),
            )
            return True
        self.answers_published += 1
        self._count("supervise", "answer_published")
        log.info(
            "jt809_supervision_answer_published",
            user_id=user_id,
            supervision_id=sid,
            result=result,
            device_id=sent.device_id,
            event_id=str(status.event_id),
        )
        return True

    def published(self, items: Iterable[tuple[str, Event | RawFix]]) -> None:
        """Called once fixes are durably written: the first live fix of a vehicle being asked to track.

        A ``RawFix`` (the hot path's live fix, already JSON) is parsed into its model only here, for a
        vehicle someone is waiting for."""
        if not self._positions:
            return
        for topic, ev in items:
            if topic != TELEMETRY_GPS:
                continue
            if type(ev) is RawFix:
                if ev.device_id not in self._positions:
                    continue
                ev = ev.model()
            if not isinstance(ev, GpsFix):
                continue
            waiters = self._positions.get(ev.device_id)
            if waiters and ev.attributes.get("live", True) is not False:
                for fut in self._positions.pop(ev.device_id):
                    if not fut.done():
                        fut.set_result(ev)

    # ------------------------------------------------------------------ requests out

    def _count(self, command: str, result: str) -> None:
        if self.metrics is not None:
            self.metrics.commands.labels(f"jt809_{command}", result).inc()

    async def command(
        self,
        device_id: str,
        command: str,
        params: dict[str, Any],
        timeout_s: float = 10.0,
        platform: str | None = None,
    ) -> dict[str, Any]:
        if command not in COMMANDS_809:
            raise ValueError(f"a JT/T 809 platform takes {', '.join(COMMANDS_809)}, not {command!r}")
        plate, colour = split_device_id(device_id)
        server = self.server
        link = server.link_for(device_id, platform) if server is not None else None
        if server is None or link is None or link.session.platform is None:
            self._count(command, "not_connected")
            return {"status": "not_connected", "device_id": device_id, "protocol": "jt809"}
        user_id = link.session.platform.user_id
        base: dict[str, Any] = {
            "device_id": device_id,
            "protocol": "jt809",
            "platform": link.session.platform.label,
            "via": "slave" if link.slave_up else "main",
        }
        loop = asyncio.get_running_loop()
        if command == "supervise":
            return await self._supervise(
                user_id, plate, colour, device_id, params, timeout_s, base, link.session.platform.label
            )
        start = command == "track"
        sub = p.UP_EXG_MSG_RETURN_STARTUP_ACK if start else p.UP_EXG_MSG_RETURN_END_ACK
        key = (user_id, device_id, sub)
        ack: asyncio.Future[dict[str, Any]] = loop.create_future()
        pos: asyncio.Future[GpsFix] = loop.create_future()
        self._acks[key] = ack
        if start:
            self._positions.setdefault(device_id, []).append(pos)
        try:
            sent = await server.request_tracking(
                user_id, plate, colour, start=start, reason=int(params.get("reason", 2))
            )
            if not sent:
                self._count(command, "not_connected")
                return {**base, "status": "not_connected"}
            base["request"] = "0x9205" if start else "0x9206"
            deadline = loop.time() + timeout_s
            waits: set[asyncio.Future[Any]] = {ack, pos} if start else {ack}
            await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
            if start and ack.done() and not pos.done():
                left = min(deadline - loop.time(), self.position_wait_s)
                if left > 0:
                    await asyncio.wait({pos}, timeout=left)
            if not ack.done() and not pos.done():
                self._count(command, "timeout")
                return {**base, "status": "timeout"}
            reply = {**base, "status": "ok", "ack": f"0x{sub:04x}" if ack.done() else None}
            if start:
                reply["position"] = _position(pos.result()) if pos.done() else None
            self._count(command, "ok")
            return reply
        finally:
            if self._acks.get(key) is ack:
                del self._acks[key]
            waiters = self._positions.get(device_id)
            if waiters is not None and pos in waiters:
                waiters.remove(pos)
                if not waiters:
                    del self._positions[device_id]

    async def _supervise(
        self,
        user_id: int,
        plate: str,
        colour: int,
        device_id: str,
        params: dict[str, Any],
        timeout_s: float,
        base: dict[str, Any],
        platform: str,
    ) -> dict[str, Any]:
        assert self.server is not None
        now = utcnow()
        sid = self._next_supervision
        self._next_supervision = self._next_supervision % 0xFFFFFFFF + 1
        deadline_s = float(params.get("deadline_s", 3600))
        sup = p.Supervision(
            warn_src=int(params.get("warn_src", 1)) & 0xFF,
            warn_type=warn_type_code(params.get("warn_type")),
            warn_time=_time(params.get("warn_time"), now),
            supervision_id=sid,
            end_time=now + timedelta(seconds=deadline_s),
            level=0 if params.get("urgent", True) else 1,
            supervisor=_gbk_safe(params.get("supervisor", ""), 16),
            tel=_gbk_safe(params.get("tel", ""), 20),
            email=_gbk_safe(params.get("email", ""), 32),
        )
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._supervisions[(user_id, sid)] = fut
        self._remember(
            user_id, sid, device_id, platform, deadline_s
        )  # before sending: the answer may beat us
        await self._share(user_id, sid, device_id, platform, deadline_s)
        try:
            if not await self.server.supervise(user_id, plate, colour, sup):
                self._sent.pop((user_id, sid), None)
                self._count("supervise", "not_connected")
                return {**base, "status": "not_connected"}
            base.update(request="0x9401", supervision_id=sid, warn_type=f"0x{sup.warn_type:04x}")
            try:
                answer = await asyncio.wait_for(fut, timeout_s)
            except TimeoutError:
                self._count("supervise", "timeout")
                return {**base, "status": "timeout"}
        finally:
            self._supervisions.pop((user_id, sid), None)
        result = int(answer["result"])
        self._count("supervise", "ok")
        return {
            **base,
            "status": "ok",
            "ack": "0x1401",
            "result": result,
            "result_name": SUPERVISION_RESULTS.get(result, "other"),
        }


def _gbk_safe(value: Any, n: int) -> str:
    """Text that encodes in GBK within ``n`` bytes (characters GBK lacks become ``?``)."""
    raw = str(value or "").encode("gbk", errors="replace")[:n]
    return raw.decode("gbk", errors="ignore")
