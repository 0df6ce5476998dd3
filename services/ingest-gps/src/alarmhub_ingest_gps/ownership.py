"""Which gateway process holds which session, recorded in Redis so that dispatch can route commands.

The gateway scales out by process, so a vehicle command must reach the process holding the
terminal's TCP session (or the JT/T 809 platform's link). Each process records, under the shared
prefix (``ALARMHUB_GPS_REDIS_PREFIX``, default ``<topic prefix>gps:``):

- ``owner:<device_id>``     → gateway id, for an authenticated JT/T 808 / GT06 / H02 session;
- ``owner:jt809:<user_id>`` → gateway id, for a JT/T 809 platform's main link;
- ``gateway:<gateway_id>``  → the gateway's advertised command URL.

Cost, not a Redis write per position: a key is set when the session authenticates (the newest login
wins), refreshed at most once per ``refresh_s`` and only for sessions that had traffic since the
last refresh (one script call per 500 sessions), and deleted on close only while this gateway is
still the owner (atomic compare-and-delete, so a terminal that already moved to another process
keeps its new owner). A session key lives ``ttl_s`` (longer than the idle timeout: a session silent
that long is closed anyway), the gateway key three refresh intervals, so a crashed process's keys
vanish on their own. Every write is best effort: Redis being down never affects a session; dispatch
then falls back to its configured URL.

The calls from the servers (``claim``/``release``) only queue the key; one background task writes
the queue in order, so the read path never waits on Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Any

import redis.asyncio as aioredis
from alarmhub_runtime import get_logger

__all__ = ["SessionOwnership", "owner_key"]

log = get_logger("alarmhub.ingest_gps.ownership")

#: set each key to ARGV[1] (EX ARGV[2]) unless another gateway holds it; returns how many others held
_REFRESH = """
local n = 0
for _, k in ipairs(KEYS) do
  local v = redis.call('GET', k)
  if v == false or v == ARGV[1] then redis.call('SET', k, ARGV[1], 'EX', ARGV[2]) else n = n + 1 end
end
return n
"""
#: delete each key still holding ARGV[1]
_RELEASE = """
local n = 0
for _, k in ipairs(KEYS) do
  if redis.call('GET', k) == ARGV[1] then n = n + redis.call('DEL', k) end
end
return n
"""
_CHUNK = 500


def owner_key(session: str) -> str:
    """The owner key's suffix: a device id, or ``jt809:<user_id>`` for a platform link."""
    return f"owner:{session}"


class SessionOwnership:
    def __init__(
        self,
        redis: str | aioredis.Redis,
        *,
        prefix: str,
        gateway_id: str,
        ttl_s: float,
        refresh_s: float,
        errors: Any = None,
    ) -> None:
        self.prefix = prefix
        self.gateway_id = gateway_id
        self.url = ""  # the advertised command URL, known once the command endpoint is bound
        self.ttl_s = max(1, int(ttl_s + 0.999))
        self.refresh_s = refresh_s
        # a client from alarmhub_redis.connect_redis (Sentinel, TLS), or a plain URL (tests)
        self._redis = (
            aioredis.from_url(redis, socket_timeout=5, socket_connect_timeout=5)
            if isinstance(redis, str)
            else redis
        )
        self._refresh = self._redis.register_script(_REFRESH)
        self._release = self._redis.register_script(_RELEASE)
        self._queue: list[tuple[bool, str]] = []  # (claim?, session) in call order
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._errors = errors  # a Counter child, incremented per failed Redis call
        self.active: Callable[[float], Iterable[str]] = lambda _since: ()

    @property
    def redis(self) -> Any:
        """The gateway's Redis client (closed by :meth:`stop`), for the other shared records (jt809/commands.py)."""
        return self._redis

    # ------------------------------------------------------------------ called by the servers

    def claim(self, session: str) -> None:
        """A session authenticated here (queued: written by the background task)."""
        self._queue.append((True, session))
        self._wake.set()

    def release(self, session: str) -> None:
        """The session this gateway held is closed (deleted only if still ours)."""
        self._queue.append((False, session))
        self._wake.set()

    # ------------------------------------------------------------------ lifecycle

    async def start(self, url: str, active: Callable[[float], Iterable[str]]) -> None:
        """``active(since)`` yields the sessions held here with traffic since ``since`` (``time.monotonic()``)."""
        self.url, self.active = url, active
        self._writer = asyncio.create_task(self._write_loop(), name="ownership-writer")
        self._ticker = asyncio.create_task(self._tick_loop(), name="ownership-refresh")
        await self._announce()

    async def stop(self) -> None:
        for task in (self._ticker, self._writer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        with contextlib.suppress(Exception):  # bounded: a Redis outage must not hold the shutdown
            await asyncio.wait_for(self._flush(), 5)
            await asyncio.wait_for(
                self._release(keys=[self.prefix + f"gateway:{self.gateway_id}"], args=[self.url]), 2
            )
        with contextlib.suppress(Exception):
            await self._redis.aclose()

    # ------------------------------------------------------------------ internals

    def _key(self, session: str) -> str:
        return self.prefix + owner_key(session)

    def _failed(self, what: str, exc: Exception) -> None:
        if self._errors is not None:
            self._errors.inc()
        log.warning("ownership_write_failed", what=what, error=repr(exc))

    async def _announce(self) -> None:
        try:
            await self._redis.set(
                self.prefix + f"gateway:{self.gateway_id}", self.url, ex=int(self.refresh_s * 3 + 1)
            )
        except Exception as exc:
            self._failed("gateway", exc)

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        queue, self._queue = self._queue, []
        i = 0
        while i < len(queue):  # runs of claims / releases, in order, each in chunks
            kind = queue[i][0]
            j = i
            while j < len(queue) and queue[j][0] == kind and j - i < _CHUNK:
                j += 1
            keys = [self._key(s) for _, s in queue[i:j]]
            try:
                if kind:
                    pipe = self._redis.pipeline(transaction=False)
                    for k in keys:  # a login takes the session over from whichever gateway held it
                        pipe.set(k, self.gateway_id, ex=self.ttl_s)
                    await pipe.execute()
                else:
                    await self._release(keys=keys, args=[self.gateway_id])
            except Exception as exc:  # Redis down: drop the rest, the keys expire on their own
                self._failed("claim" if kind else "release", exc)
                return
            i = j

    async def _tick_loop(self) -> None:
        since = time.monotonic()
        while True:
            await asyncio.sleep(self.refresh_s)
            now = time.monotonic()
            await self._announce()
            sessions = list(self.active(since))
            since = now
            for n in range(0, len(sessions), _CHUNK):
                try:
                    await self._refresh(
                        keys=[self._key(s) for s in sessions[n : n + _CHUNK]],
                        args=[self.gateway_id, self.ttl_s],
                    )
                except Exception as exc:
                    self._failed("refresh", exc)
                    break
