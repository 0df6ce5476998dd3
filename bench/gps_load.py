"""Open-loop JT/T 808 position load for ``bench/e2e.py``: a fixed rate of 0x0200 frames, whatever the replies.

Why not ``alarmhub-sim gps``: the simulator is closed-loop per vehicle (a vehicle waits for the gateway's
answer before its next report and each report is encoded when sent), so on the shared 2-core box it reached
only ~1,300-1,600 of 5,000 fixes/s and the background load depended on how slow the gateway was. Here:

- a few hundred terminals authenticate once (0x0102 with the code the gateway derives from the shared
  secret) and keep their connections;
- every frame is encoded before the clock starts — real-format 0x0200 location reports (2013 header, BCD
  phone, serial, escaping, checksum), one per planned send slot, its terminal time the slot's wall-clock
  time in the terminal's zone (UTC+8, the gateway's JT/T 808 default) — so sending is a ``write`` per frame;
- frames go out by the clock: global frame ``g`` is due at ``g / rate`` seconds after the start and goes to
  terminal ``g % connections``, so each terminal reports at ``rate / connections`` per second. Replies
  (0x8001) are counted, never waited for; a connection whose unsent buffer exceeds 64 KiB skips its slot
  (counted as ``skipped``) so a slow gateway cannot make this process grow without bound. A terminal the
  gateway closed (it does when the broker does not confirm a write) logs in again, its slots skipped meanwhile.

Bounded: ``--duration`` seconds and ``rate × duration`` frames at most; loopback only. Prints one JSON line
``{"event": "ready", ...}`` when every terminal is authenticated (the caller starts measuring then) and
one with the counts at the end.

    .venv/bin/python bench/gps_load.py --port 5015 --rate 5000 --connections 300 --duration 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import datetime, timedelta, timezone
from typing import Any

MAX_FRAMES = 1_000_000
HIGH_WATER = 64 * 1024


class Terminal(asyncio.Protocol):
    """One authenticated connection; counts the gateway's replies (each frame is delimited by two 0x7e)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.delimiters = 0
        self.authenticated: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        self.delimiters += data.count(b"\x7e")
        if self.delimiters >= 2 and not self.authenticated.done():
            self.authenticated.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.authenticated.done():
            self.authenticated.set_exception(ConnectionError("closed before the authentication reply"))


def phone(i: int) -> str:
    return f"0166{i:08d}"


def encode_all(connections: int, rate: float, duration: float, start_wall: float) -> list[list[bytes]]:
    """Every frame of the run, per terminal in send order (frame ``k`` of terminal ``c`` is global ``k·N + c``)."""
    from alarmhub_ingest_gps.protocols import jt808

    total = min(MAX_FRAMES, int(rate * duration))
    tz = timezone(timedelta(hours=8))
    frames: list[list[bytes]] = [[] for _ in range(connections)]
    for g in range(total):
        c, k = g % connections, g // connections
        local = datetime.fromtimestamp(start_wall + g / rate, tz).replace(tzinfo=None)
        body = jt808.encode_location_body(
            lat=22.50 + (c % 100) * 1e-3 + k * 1e-5,
            lon=114.00 + (c // 100) * 1e-3,
            status_bits=0x03,
            speed_kmh=30 + c % 40,
            heading_deg=(c * 7) % 360,
            local_time=local,
        )
        frames[c].append(jt808.encode(0x0200, phone(c), (k + 2) & 0xFFFF, body))
    return frames


async def run(
    host: str, port: int, secret: str, rate: float, connections: int, duration: float, lead_s: float
) -> dict[str, Any]:
    from alarmhub_ingest_gps.protocols import jt808
    from alarmhub_ingest_gps.sessions import derive_auth_code

    loop = asyncio.get_running_loop()
    sem = asyncio.Semaphore(20)

    async def connect(i: int) -> Terminal:
        async with sem:
            tr, t = await asyncio.wait_for(loop.create_connection(Terminal, host, port), 10)
            t.transport = tr  # uvloop may call connection_made after create_connection has returned
            tr.write(jt808.encode(0x0102, phone(i), 1, derive_auth_code(secret.encode(), phone(i)).encode()))
            await asyncio.wait_for(t.authenticated, 30)
            return t

    res = await asyncio.gather(*(connect(i) for i in range(connections)), return_exceptions=True)
    failed = [r for r in res if isinstance(r, BaseException)]
    terms = [r for r in res if isinstance(r, Terminal)]
    if not terms:
        raise ConnectionError(f"no terminal authenticated: {failed[0]!r}")
    connections = len(terms)  # the rate is spread over those that did log in
    t_enc = time.monotonic()
    start_wall = time.time() + lead_s  # the planned start: the terminal times follow it
    frames = encode_all(connections, rate, duration, start_wall)
    encode_s = time.monotonic() - t_enc
    print(
        json.dumps(
            {
                "event": "ready",
                "connections": len(terms),
                "login_failed": len(failed),
                "frames": sum(map(len, frames)),
                "encode_s": round(encode_s, 2),
            }
        ),
        flush=True,
    )
    delay = start_wall - time.time()
    if delay > 0:
        await asyncio.sleep(delay)
    t0 = time.monotonic()
    total = sum(map(len, frames))
    sent = skipped = reconnects = 0
    g = 0
    relogin: dict[int, asyncio.Task[Terminal]] = {}  # terminal → its log-in in progress

    def relogged(c: int) -> Terminal | None:
        """A terminal the gateway closed logs in again, as a real one does (its slots meanwhile are skipped)."""
        nonlocal reconnects
        task = relogin.get(c)
        if task is None:
            relogin[c] = asyncio.create_task(connect(c))
            reconnects += 1
        elif task.done():
            del relogin[c]
            if not task.cancelled() and task.exception() is None:
                terms[c] = task.result()
                return terms[c]
        return None

    while g < total:
        elapsed = time.monotonic() - t0
        if elapsed > duration + 5:
            break
        due = min(total, int(elapsed * rate) + 1)
        while g < due:
            c, k = g % connections, g // connections
            term: Terminal | None = terms[c]
            if term is not None and term.closed:
                term = relogged(c)
            tr = term.transport if term is not None else None
            if tr is None or tr.get_write_buffer_size() > HIGH_WATER:
                skipped += 1
            else:
                tr.write(frames[c][k])
                sent += 1
            g += 1
        await asyncio.sleep(0.005)
    wall = time.monotonic() - t0
    await asyncio.sleep(1.0)  # the last replies
    for task in relogin.values():
        task.cancel()
    replies = sum(t.delimiters for t in terms) // 2 - len(terms)
    for t in terms:
        if t.transport is not None:
            t.transport.close()
    return {
        "event": "done",
        "sent": sent,
        "skipped": skipped,
        "replies": replies,
        "wall_s": round(wall, 2),
        "sent_per_s": round(sent / wall, 1) if wall else None,
        "closed": sum(t.closed for t in terms),
        "relogins": reconnects,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--secret", default="bench-secret", help="the gateway's ALARMHUB_GPS_AUTH_SECRET")
    p.add_argument("--rate", type=float, default=5000.0)
    p.add_argument("--connections", type=int, default=300)
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument(
        "--lead",
        type=float,
        default=3.0,
        help="seconds from the log-ins to the first frame (the encoding happens in them)",
    )
    a = p.parse_args()
    if a.host not in ("127.0.0.1", "::1", "localhost"):
        p.error("loopback only")
    if a.rate <= 0 or a.duration <= 0 or a.rate * a.duration > MAX_FRAMES or not 1 <= a.connections <= 5000:
        p.error(f"rate and duration positive, rate × duration ≤ {MAX_FRAMES}, 1-5000 connections")
    import uvloop

    res = uvloop.run(run(a.host, a.port, a.secret, a.rate, a.connections, a.duration, a.lead))
    print(json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
