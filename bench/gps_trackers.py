"""The realistic tracker shape for ``bench/gps.py trackers``: many authenticated terminals, ONE frame in flight each.

A load process holds ``count`` JT/T 808 terminals, each on its own TCP connection from one of many
loopback source addresses (127.0.<process+1>.<1..250>, so no address runs out of ports), authenticated
with 0x0102. After every process has logged its terminals in, each terminal sends a 0x0200 location
report (encoded when sent, its device time the wall clock) at its own interval from a random phase, and
sends the next only after the gateway's 0x8001 for this one arrived — as a real tracker does. A reply
later than ``timeout`` counts as a timeout (its late reply is discarded); a slot that passed while the
terminal still waited is skipped (``missed_slots``), never sent in a burst afterwards.

Each process reports sent, answered, timeouts, missed slots, a 1-ms histogram of reply latency and its
own CPU seconds during the measured window. Bounded: ``duration`` ≤ 600 s; loopback only.
"""

from __future__ import annotations

import asyncio
import random
import resource
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

TZ8 = timezone(timedelta(hours=8))


def phone(proc: int, i: int) -> str:
    return f"0177{proc:02d}{i:06d}"


class Terminal(asyncio.Protocol):
    """One connection; a reply is complete when two more 0x7e delimiters have arrived."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.delims = 0
        self.stale = 0  # replies still owed to frames that already timed out
        self.waiter: asyncio.Future[None] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        self.delims += data.count(b"\x7e")
        while self.delims >= 2:
            self.delims -= 2
            if self.stale:
                self.stale -= 1
            elif self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("closed by the gateway"))


def _expire(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError())


async def _login(host: str, port: int, proc: int, i: int, secret: str, timeout: float) -> Terminal:
    from alarmhub_ingest_gps.protocols import jt808
    from alarmhub_ingest_gps.sessions import derive_auth_code

    loop = asyncio.get_running_loop()
    local = f"127.0.{proc + 1}.{i % 250 + 1}"
    tr, t = await asyncio.wait_for(
        loop.create_connection(Terminal, host, port, local_addr=(local, 0)), timeout
    )
    t.transport = tr  # uvloop may call connection_made after create_connection has returned
    fut: asyncio.Future[None] = loop.create_future()
    t.waiter = fut
    p = phone(proc, i)
    tr.write(jt808.encode(0x0102, p, 1, derive_auth_code(secret.encode(), p).encode()))
    await asyncio.wait_for(fut, timeout)
    return t


async def _report(
    t: Terminal,
    proc: int,
    i: int,
    interval: float,
    start: float,
    end: float,
    timeout: float,
    st: dict[str, Any],
) -> None:
    from alarmhub_ingest_gps.protocols import jt808

    loop = asyncio.get_running_loop()
    p, serial = phone(proc, i), 2
    due = start + random.random() * interval
    hist: Counter[int] = st["hist"]
    while not t.closed:
        now = loop.time()
        if due > now:
            await asyncio.sleep(due - now)
        if loop.time() >= end or t.transport is None:
            return
        if t.closed or t.transport.is_closing():  # closed by the target, connection_lost not yet run
            st["closed"] += 1
            return
        body = jt808.encode_location_body(
            lat=22.5 + (i % 500) * 1e-3,
            lon=114.0 + proc * 1e-2,
            status_bits=0x03,
            speed_kmh=30,
            local_time=datetime.now(TZ8).replace(tzinfo=None),
        )
        fut: asyncio.Future[None] = loop.create_future()
        t.waiter = fut
        t0 = loop.time()
        t.transport.write(jt808.encode(0x0200, p, serial, body))
        serial = (serial + 1) & 0xFFFF
        st["sent"] += 1
        handle = loop.call_later(timeout, _expire, fut)
        try:
            await fut
            hist[int((loop.time() - t0) * 1000)] += 1
            st["answered"] += 1
        except TimeoutError:
            st["timeouts"] += 1
            t.stale += 1
        except ConnectionError:
            st["closed"] += 1
            return
        finally:
            handle.cancel()
        due += interval
        now = loop.time()
        if due < now:
            missed = int((now - due) / interval) + 1
            st["missed_slots"] += missed
            due += missed * interval
    st["closed"] += 1  # the target closed this terminal between two frames


def load_process(
    host: str,
    port: int,
    proc: int,
    count: int,
    interval: float,
    duration: float,
    timeout: float,
    secret: str,
    ready: Any,
    go: Any,
    out: Any,
) -> None:
    """Entry point of one load process (multiprocessing, spawn): log in, report ready, wait for ``go``, load."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = count + 200
    if soft < want:
        resource.setrlimit(
            resource.RLIMIT_NOFILE, (want if hard == resource.RLIM_INFINITY else min(want, hard), hard)
        )

    async def main() -> None:
        sem = asyncio.Semaphore(200)

        async def one(i: int) -> Terminal:
            async with sem:
                return await _login(host, port, proc, i, secret, 30.0)

        res = await asyncio.gather(*(one(i) for i in range(count)), return_exceptions=True)
        terms = [(i, r) for i, r in enumerate(res) if isinstance(r, Terminal)]
        errors = [r for r in res if isinstance(r, BaseException)]
        ready.put(
            {
                "proc": proc,
                "connected": len(terms),
                "login_errors": len(errors),
                "first_error": repr(errors[0]) if errors else None,
            }
        )
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, go.wait, 900.0):
            return
        st: dict[str, Any] = {
            "sent": 0,
            "answered": 0,
            "timeouts": 0,
            "missed_slots": 0,
            "closed": 0,
            "hist": Counter(),
        }
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        w0 = time.monotonic()
        start = loop.time()
        await asyncio.gather(
            *(_report(t, proc, i, interval, start, start + duration, timeout, st) for i, t in terms)
        )
        wall = time.monotonic() - w0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        st["cpu_s"] = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        st["wall_s"] = wall
        st["proc"] = proc
        st["hist"] = dict(st["hist"])
        out.put(st)
        for _, t in terms:
            if t.transport is not None:
                t.transport.close()

    import uvloop

    uvloop.run(main())


def percentile(hist: dict[int, int], q: float) -> float | None:
    """The ``q`` quantile (0–1) of a 1-ms histogram, in ms."""
    total = sum(hist.values())
    if not total:
        return None
    rank, seen = q * (total - 1), 0
    for ms in sorted(hist):
        seen += hist[ms]
        if seen > rank:
            return float(ms)
    return float(max(hist))
