"""The realistic tracker shape for ``bench/gps.py trackers``: many authenticated terminals, ONE frame in flight each.

A load process holds ``count`` JT/T 808 terminals, each on its own TCP connection from one of many
loopback source addresses (127.0.<process+1>.<1..250>, so no address runs out of ports), authenticated
with 0x0102. After every process has logged its terminals in, each terminal sends a 0x0200 location
report (its device time the wall clock when sent) at its own interval from a random phase, and sends the
next only after the gateway's 0x8001 for this one arrived — as a real tracker does. A reply later than
``timeout`` counts as a timeout (a late reply is discarded); a slot that passed while the terminal still
waited is skipped (``missed_slots``), never sent in a burst afterwards.

What it costs per frame matters: on a 2-CPU box the load shares the cores with what it measures. So:

- one timer wheel per process, not a sleeping task per terminal: the interval is cut into ticks of
  ~5 ms, a terminal's random phase puts it in one tick's bucket for the whole run, and one callback per
  tick visits that bucket — sends a frame for each idle terminal, counts a missed slot for each one still
  waiting (or, once its frame is ``timeout`` old, a timeout, and sends);
- no future, timer or task per frame: the protocol's ``data_received`` takes the reply, records the
  latency in a 1-ms histogram (a list) and marks the terminal idle;
- each terminal's frame is encoded once by the project's encoder (:func:`Frames.build` checks the
  fast path against ``jt808.encode`` at start): per frame only the serial, the six BCD time digits
  (one per wall-clock second for the process) and the check code change, joined from escaped pieces.

Each process reports sent, answered, timeouts, missed slots, closed, a 1-ms histogram of reply latency
and its own CPU seconds (user + system) during the measured window. Bounded: ``duration`` ≤ 600 s;
loopback only.
"""

from __future__ import annotations

import asyncio
import random
import resource
import time
from datetime import datetime, timedelta, timezone
from typing import Any

TZ8 = timezone(timedelta(hours=8))
TICK_S = 0.005  # the wheel's tick: a terminal's send time is its phase rounded to this
MAX_BUCKETS = 100_000
SLOW_S = 0.5  # a reply this late counts in slow_by_s (a terminal sending every 0.67 s misses its next slot)


def phone(proc: int, i: int) -> str:
    return f"0177{proc:02d}{i:06d}"


def _escape(b: bytes) -> bytes:
    return b.replace(b"\x7d", b"\x7d\x01").replace(b"\x7e", b"\x7d\x02")


def _xor(b: bytes) -> int:
    x = 0
    for c in b:
        x ^= c
    return x


class Frames:
    """The 0x0200 frames of one process's terminals, built from escaped constant pieces.

    A frame is ``head + SERIAL[serial] + mid + time + TAIL[check]``: ``head`` (0x7e, message id,
    properties, BCD phone) and ``mid`` (the body up to the time) are fixed per terminal, escaped once;
    the BCD time digits never need escaping (no 0x7d/0x7e nibbles); the serial and the check code come
    escaped from tables.
    """

    SERIAL: tuple[bytes, ...] = tuple(_escape(s.to_bytes(2, "big")) for s in range(0x10000))
    TAIL: tuple[bytes, ...] = tuple(_escape(bytes([c])) + b"\x7e" for c in range(256))

    def __init__(self) -> None:
        self.second = -1
        self.time = b""
        self.time_xor = 0

    @staticmethod
    def location_body(proc: int, i: int, when: datetime) -> bytes:
        from alarmhub_ingest_gps.protocols import jt808

        return jt808.encode_location_body(
            lat=22.5 + (i % 500) * 1e-3,
            lon=114.0 + proc * 1e-2,
            status_bits=0x03,
            speed_kmh=30,
            local_time=when,
        )

    @classmethod
    def pieces(cls, proc: int, i: int) -> tuple[bytes, bytes, int]:
        """``head``, ``mid`` and the XOR of both (unescaped), from the project's own encoder."""
        from alarmhub_ingest_gps.protocols import jt808

        body = cls.location_body(proc, i, datetime(2026, 1, 1))
        frame = jt808.encode(0x0200, phone(proc, i), 0, body)
        data = jt808.unescape(frame[1:-1])[:-1]  # header (12 bytes) + body, check code dropped
        head, mid = data[:10], data[12 : 12 + len(body) - 6]
        assert data[12 + len(body) - 6 :] == body[-6:]
        return b"\x7e" + _escape(head), _escape(mid), _xor(head) ^ _xor(mid)

    def clock(self, wall: float) -> None:
        """The BCD device time (UTC+8) of this wall-clock second."""
        sec = int(wall)
        if sec != self.second:
            self.second = sec
            t = bytes.fromhex(datetime.fromtimestamp(sec, TZ8).strftime("%y%m%d%H%M%S"))
            self.time, self.time_xor = t, _xor(t)

    def build(self, head: bytes, mid: bytes, x: int, serial: int) -> bytes:
        check = x ^ self.time_xor ^ (serial >> 8) ^ (serial & 0xFF)
        return b"".join((head, self.SERIAL[serial], mid, self.time, self.TAIL[check]))

    def self_check(self, proc: int, count: int) -> None:
        """The fast frames are byte for byte what ``jt808.encode`` makes (serials that need escaping too)."""
        from alarmhub_ingest_gps.protocols import jt808

        self.clock(time.time())
        when = datetime.fromtimestamp(self.second, TZ8).replace(tzinfo=None)
        for i in sorted({0, 1, count // 2, max(0, count - 1)}):
            head, mid, x = self.pieces(proc, i)
            body = self.location_body(proc, i, when)
            for serial in (0, 2, 0x7D, 0x7E, 0x7D7E, 0x7E7D, 0xFFFF, random.randrange(0x10000)):
                want = jt808.encode(0x0200, phone(proc, i), serial, body)
                got = self.build(head, mid, x, serial)
                if got != want:
                    raise AssertionError(f"fast 0x0200 frame differs: {got.hex()} != {want.hex()}")


class Stats:
    __slots__ = (
        "answered",
        "closed",
        "hist",
        "missed_slots",
        "running",
        "sent",
        "slow_by_s",
        "start",
        "timeout",
        "timeouts",
    )

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.running = False
        self.sent = self.answered = self.timeouts = self.missed_slots = self.closed = 0
        self.hist = [0] * (int(timeout * 1000) + 2)
        self.start = 0.0
        #: replies slower than SLOW_S, by the second of the run their frame was sent in: when the tail came
        self.slow_by_s: dict[int, int] = {}

    def result(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "answered": self.answered,
            "timeouts": self.timeouts,
            "missed_slots": self.missed_slots,
            "closed": self.closed,
            "hist": {ms: n for ms, n in enumerate(self.hist) if n},
            "slow_by_s": self.slow_by_s,
        }


class Terminal(asyncio.Protocol):
    """One connection; a reply is complete when two more 0x7e delimiters have arrived."""

    __slots__ = (
        "closed",
        "delims",
        "head",
        "login",
        "mid",
        "sent_at",
        "serial",
        "st",
        "stale",
        "transport",
        "waiting",
        "x",
    )

    def __init__(self, st: Stats) -> None:
        self.st = st
        self.transport: asyncio.Transport | None = None
        self.delims = 0
        self.stale = 0  # replies still owed to frames that already timed out
        self.waiting = False  # a 0x0200 is in flight
        self.sent_at = 0.0
        self.login: asyncio.Future[None] | None = None
        self.closed = False
        self.head = self.mid = b""
        self.x = 0
        self.serial = 2

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        n = self.delims + data.count(b"\x7e")
        if n < 2:
            self.delims = n
            return
        self.delims = n & 1
        k = n >> 1
        if self.stale:
            d = min(k, self.stale)
            self.stale -= d
            k -= d
        if not k:
            return
        if self.waiting:
            self.waiting = False
            st = self.st
            lat = time.monotonic() - self.sent_at
            if lat > st.timeout:  # late, and the wheel has not passed by yet: a timeout all the same
                st.timeouts += 1
            else:
                st.answered += 1
                st.hist[int(lat * 1000)] += 1
                if lat > SLOW_S:
                    second = int(self.sent_at - st.start)
                    st.slow_by_s[second] = st.slow_by_s.get(second, 0) + 1
        elif self.login is not None and not self.login.done():
            self.login.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.st.running:
            self.st.closed += 1  # closed by the target during the run
            self.waiting = False
        if self.login is not None and not self.login.done():
            self.login.set_exception(ConnectionError("closed by the gateway"))


async def _login(host: str, port: int, proc: int, i: int, secret: str, timeout: float, st: Stats) -> Terminal:
    from alarmhub_ingest_gps.protocols import jt808
    from alarmhub_ingest_gps.sessions import derive_auth_code

    loop = asyncio.get_running_loop()
    local = f"127.0.{proc + 1}.{i % 250 + 1}"
    tr, t = await asyncio.wait_for(
        loop.create_connection(lambda: Terminal(st), host, port, local_addr=(local, 0)), timeout
    )
    t.transport = tr  # uvloop may call connection_made after create_connection has returned
    t.login = fut = loop.create_future()
    p = phone(proc, i)
    tr.write(jt808.encode(0x0102, p, 1, derive_auth_code(secret.encode(), p).encode()))
    await asyncio.wait_for(fut, timeout)
    t.login = None
    t.head, t.mid, t.x = Frames.pieces(proc, i)
    return t


class Wheel:
    """One timer wheel: bucket ``b`` holds the terminals whose slots fall on ticks ≡ b (mod buckets)."""

    def __init__(self, terms: list[Terminal], interval: float, st: Stats, frames: Frames) -> None:
        self.n = max(1, min(MAX_BUCKETS, round(interval / TICK_S)))
        self.tick = interval / self.n
        self.buckets: list[list[Terminal]] = [[] for _ in range(self.n)]
        for t in terms:  # a random phase each, fixed for the run
            self.buckets[random.randrange(self.n)].append(t)
        self.st, self.frames = st, frames
        self.next = 0  # the next tick to visit
        self.start = self.end = 0.0
        self.done: asyncio.Future[None] | None = None
        self.loop = asyncio.get_running_loop()  # made in the load process's loop

    def run(self, duration: float) -> asyncio.Future[None]:
        self.done = done = self.loop.create_future()
        self.start = self.st.start = time.monotonic()
        self.end = self.start + duration
        self.st.running = True
        self._tick()
        return done

    def _tick(self) -> None:
        now = time.monotonic()
        if now >= self.end:
            if self.done is not None and not self.done.done():
                self.done.set_result(None)
            return
        st, n = self.st, self.n
        due = int((now - self.start) / self.tick)  # the last tick whose time has come
        behind = due - self.next + 1
        if behind > n:  # stalled over a whole interval: every live terminal missed a slot per round
            rounds = (behind - 1) // n
            st.missed_slots += rounds * sum(len(b) for b in self.buckets)
            self.next += rounds * n
        self.frames.clock(time.time())
        while self.next <= due:
            bucket = self.buckets[self.next % n]
            self.next += 1
            if bucket:
                self._visit(bucket, now)
        delay = self.start + self.next * self.tick - time.monotonic()
        self.loop.call_later(max(0.0, delay), self._tick)

    def _visit(self, bucket: list[Terminal], now: float) -> None:
        st, frames, timeout = self.st, self.frames, self.st.timeout
        gone = None
        for t in bucket:
            if t.waiting:
                if now - t.sent_at < timeout:
                    st.missed_slots += 1
                    continue
                st.timeouts += 1  # its reply, if it comes, is discarded
                t.stale += 1
                t.waiting = False
            tr = t.transport
            if t.closed or tr is None or tr.is_closing():
                gone = gone or []
                gone.append(t)
                continue
            serial = t.serial
            t.serial = (serial + 1) & 0xFFFF
            t.waiting = True
            t.sent_at = time.monotonic()
            tr.write(frames.build(t.head, t.mid, t.x, serial))
            st.sent += 1
        for t in gone or ():
            bucket.remove(t)
            if not t.closed:  # closing, connection_lost not yet run: counted here, not there
                t.closed = True
                st.closed += 1

    async def drain(self, terms: list[Terminal]) -> None:
        """After the end: wait (at most ``timeout``) for the frames still in flight."""
        st = self.st
        stop = time.monotonic() + st.timeout
        for _ in range(int(st.timeout * 100) + 1):  # bounded: 10-ms looks for at most ``timeout``
            if time.monotonic() >= stop or not any(t.waiting for t in terms):
                break
            await asyncio.sleep(0.01)
        st.running = False
        late = sum(t.waiting for t in terms)
        st.timeouts += late


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
        st = Stats(timeout)
        frames = Frames()
        frames.self_check(proc, count)
        sem = asyncio.Semaphore(200)

        async def one(i: int) -> Terminal:
            async with sem:
                return await _login(host, port, proc, i, secret, 30.0, st)

        res = await asyncio.gather(*(one(i) for i in range(count)), return_exceptions=True)
        terms = [r for r in res if isinstance(r, Terminal)]
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
        st.closed += sum(t.closed for t in terms)  # closed by the target between the log-in and the start
        wheel = Wheel([t for t in terms if not t.closed], interval, st, frames)
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        w0 = time.monotonic()
        await wheel.run(duration)
        await wheel.drain(terms)
        wall = time.monotonic() - w0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        res_ = st.result()
        res_["cpu_s"] = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        res_["cpu_user_s"] = r1.ru_utime - r0.ru_utime
        res_["wall_s"] = wall
        res_["proc"] = proc
        out.put(res_)
        for t in terms:
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
