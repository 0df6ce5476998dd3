"""Simulated alarm panels speaking SIA DC-09 (Contact ID) over TCP, with polls and retries.

Each panel keeps a TCP connection to the receiver, sends its alarms and NULL link tests, and
retransmits a message (same sequence number) when no ACK arrives in time, as real transmitters do.
Frames come from the receiver's own DC-09 encoder module, which the receiver's tests check against
real frames from the specification and independent implementations.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from alarmhub_ingest_contactid.protocols import dc09 as dc09_protocol

from .sites import Site

__all__ = ["SCENARIOS", "Panel", "run", "send_one"]

#: Contact ID events a panel sends, with their relative frequency: (qualifier, code, zone, weight)
SCENARIOS: tuple[tuple[str, str, str, int], ...] = (
    ("1", "130", "001", 30),  # burglary, front door
    ("3", "130", "001", 20),  # burglary restore
    ("1", "130", "002", 10),  # burglary, hall PIR (second zone: cross-zone confirmation)
    ("1", "401", "001", 15),  # opening by user (disarm)
    ("3", "401", "001", 10),  # closing (arm)
    ("1", "120", "000", 3),  # panic
    ("1", "121", "001", 1),  # duress
    ("1", "110", "003", 2),  # fire
    ("1", "602", "000", 5),  # periodic test report
    ("1", "301", "000", 4),  # AC loss (trouble)
)


def _cid(site: Site, q: str, code: str, zone: str, partition: str = "01") -> str:
    return f"#{site.account}|{q}{code} {partition} {zone}"


@dataclass
class Panel:
    site: Site
    host: str
    port: int
    ack_timeout_s: float = 2.0
    retries: int = 3
    seq: int = 0
    local_host: str | None = (
        None  # the panel's own source address (a receiver limits connections per address)
    )
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None

    def _next_seq(self) -> int:
        self.seq = self.seq % 9999 + 1
        return self.seq

    async def connect(self) -> None:
        """Open the connection now (``send`` opens it when there is none); a bench times the two apart."""
        local = (self.local_host, 0) if self.local_host else None
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port, local_addr=local)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
            self.writer = None

    async def send(self, token: str, data: str, stats: Counter[str]) -> str:
        """Send one message; retransmit on silence; return the reply token or ``timeout``."""
        key = bytes.fromhex(self.site.key_hex) if self.site.key_hex else None
        seq = self._next_seq()
        for attempt in range(self.retries + 1):
            # a retransmission carries the same sequence number and a fresh timestamp
            frame = dc09_protocol.encode(
                token,
                seq,
                self.site.account,
                data,
                line=self.site.line,
                receiver=None,
                timestamp=datetime.now(UTC) if key else None,
                key=key,
            )
            try:
                if self.writer is None:
                    await self.connect()
                assert self.writer is not None and self.reader is not None
                self.writer.write(frame)
                await self.writer.drain()
                stats["sent" if attempt == 0 else "retransmitted"] += 1
                raw = await asyncio.wait_for(self.reader.readuntil(b"\r"), self.ack_timeout_s)
                reply = dc09_protocol.decode_reply(raw, key=key)
                stats[reply.token.lower()] += 1
                return str(reply.token)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                stats["no_reply"] += 1
                await self.close()
        stats["gave_up"] += 1
        return "timeout"


async def send_one(host: str, port: int, site: Site, qualifier: str, code: str, zone: str) -> str:
    """Send a single Contact ID event and return the receiver's reply token."""
    stats: Counter[str] = Counter()
    panel = Panel(site, host, port)
    try:
        return await panel.send("ADM-CID", _cid(site, qualifier, code, zone), stats)
    finally:
        await panel.close()


async def run(
    host: str,
    port: int,
    sites: list[Site],
    *,
    rate: float,
    count: int | None = None,
    duration_s: float | None = None,
    poll_interval_s: float = 60.0,
    seed: int = 1,
) -> dict[str, int]:
    """Drive ``sites`` at ``rate`` alarms/s in total (plus NULL polls), bounded by count and/or duration."""
    if count is None and duration_s is None:
        raise ValueError("bound the run: give count or duration_s")
    rng = random.Random(seed)
    stats: Counter[str] = Counter()
    panels = [Panel(s, host, port) for s in sites]
    weights = [w for *_, w in SCENARIOS]
    locks = [asyncio.Lock() for _ in panels]
    t_end = time.monotonic() + duration_s if duration_s else float("inf")
    next_poll = [time.monotonic() + rng.uniform(0, poll_interval_s) for _ in panels]
    sent = 0
    tasks: set[asyncio.Task[str]] = set()
    interval = 1.0 / rate if rate > 0 else float("inf")
    t_next = time.monotonic()

    async def one(i: int, token: str, data: str) -> str:
        async with locks[i]:  # one outstanding message per panel, as a transmitter does
            return await panels[i].send(token, data, stats)

    try:
        while time.monotonic() < t_end and (count is None or sent < count):
            now = time.monotonic()
            for i, due in enumerate(next_poll):
                if now >= due:
                    next_poll[i] = now + poll_interval_s
                    tasks.add(asyncio.create_task(one(i, "NULL", "")))
            if now >= t_next:
                i = rng.randrange(len(panels))
                q, code, zone, _ = rng.choices(SCENARIOS, weights)[0]
                tasks.add(asyncio.create_task(one(i, "ADM-CID", _cid(panels[i].site, q, code, zone))))
                sent += 1
                t_next += interval
            tasks = {t for t in tasks if not t.done()}
            await asyncio.sleep(min(0.05, max(0.0, t_next - time.monotonic())))
        if tasks:
            await asyncio.wait(tasks, timeout=15)
    finally:
        for p in panels:
            await p.close()
    stats["alarms_generated"] = sent
    return dict(stats)
