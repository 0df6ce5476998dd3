"""Vehicle fleets for the simulator: JT/T 808, GT06 and H02 terminals moving over the demo city.

Each vehicle is one TCP connection speaking its protocol as a real unit does: a JT/T 808 terminal
registers (0x0100), authenticates with the code it was given (0x0102) and waits for 0x8001 after
each report; a GT06 unit logs in with its IMEI and waits for the login and alarm replies; an H02
unit just streams ``*HQ`` frames. Vehicles drive around their district anchor, park, and now and
then live through a theft scenario:

- ``ignition``: ignition without the key (JT/T 808 alarm bit 27; GT06/H02: ACC on while parked and
  armed — the gateway raises it when the owner armed the vehicle),
- ``displacement``: moved while parked (JT/T 808 bit 28, GT06 alarm 0x09),
- ``power_cut``: main power cut (JT/T 808 bit 8, GT06 alarm 0x02, H02 status bit 19),
- ``sos``: the driver's emergency button (JT/T 808 bit 0, GT06 alarm 0x01, H02 status bit 1).

A level alarm is held for one report and cleared on the next, as terminals do once the condition
ends, so the platform sees a ``new`` and a ``restore``. The frames come from the gateway's protocol
encoders; every run is bounded by a count and/or a duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from alarmhub_ingest_gps.protocols import FrameError, gt06, h02, jt808

from .sites import DISTRICT_ANCHORS

__all__ = ["SCENARIOS", "Vehicle", "fleet", "run"]

#: (scenario, weight) — what a report carries; most reports are plain positions.
SCENARIOS: tuple[tuple[str, float], ...] = (
    ("position", 0.97),
    ("ignition", 0.008),
    ("displacement", 0.008),
    ("power_cut", 0.008),
    ("sos", 0.006),
)
JT808_BITS = {"sos": 1 << 0, "power_cut": 1 << 8, "ignition": 1 << 27, "displacement": 1 << 28}
GT06_ALARMS = {"sos": 0x01, "power_cut": 0x02, "displacement": 0x09, "ignition": 0x09}
H02_CLEAR_BITS = {"sos": 1 << 1, "power_cut": 1 << 19, "displacement": 1 << 0, "ignition": 1 << 0}
PROTOCOL_MIX = (("jt808", 0.5), ("gt06", 0.3), ("h02", 0.2))


@dataclass
class Vehicle:
    protocol: str
    device_id: str
    lat: float
    lon: float
    heading: float
    speed_kmh: float = 0.0
    acc: bool = False
    serial: int = 0
    alarm_pending: str | None = None
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def next_serial(self) -> int:
        self.serial = (self.serial + 1) & 0xFFFF
        return self.serial

    def step(self, rng: random.Random, dt_s: float) -> None:
        """Drive: accelerate, turn, sometimes park; keep within ~8 km of where the vehicle started."""
        if rng.random() < 0.05:
            self.acc = not self.acc
        self.speed_kmh = max(0.0, min(90.0, self.speed_kmh + rng.uniform(-10, 12))) if self.acc else 0.0
        self.heading = (self.heading + rng.uniform(-30, 30)) % 360
        dist_km = self.speed_kmh * dt_s / 3600
        self.lat += dist_km / 111.0 * math.cos(math.radians(self.heading))
        self.lon += (
            dist_km / (111.0 * math.cos(math.radians(self.lat))) * math.sin(math.radians(self.heading))
        )


def fleet(vehicles: int, *, seed: int = 1) -> list[Vehicle]:
    """Deterministic vehicles spread over the districts, with ids per their protocol's format."""
    rng = random.Random(seed)
    out = []
    for i in range(vehicles):
        r = rng.random()
        acc = 0.0
        protocol = "jt808"
        for name, w in PROTOCOL_MIX:
            acc += w
            if r <= acc:
                protocol = name
                break
        _, _, lat, lon = DISTRICT_ANCHORS[i % len(DISTRICT_ANCHORS)]
        if protocol == "jt808":
            device = f"0138{seed % 100:02d}{i:06d}"
        elif protocol == "gt06":
            device = f"8697{seed % 100:02d}{i:09d}"
        else:
            device = f"41{seed % 100:02d}{i:06d}"
        out.append(
            Vehicle(
                protocol,
                device,
                lat + rng.uniform(-0.02, 0.02),
                lon + rng.uniform(-0.02, 0.02),
                rng.uniform(0, 360),
                acc=rng.random() < 0.5,
            )
        )
    return out


def _local(now: datetime, tz_hours: float) -> datetime:
    return (now + timedelta(hours=tz_hours)).replace(tzinfo=None)


async def _read_jt808(reader: asyncio.StreamReader) -> jt808.Message:
    await asyncio.wait_for(reader.readuntil(b"\x7e"), 10)
    data = await asyncio.wait_for(reader.readuntil(b"\x7e"), 10)
    return jt808.decode(data[:-1])


async def _connect(v: Vehicle, host: str, port: int, stats: Counter[str]) -> None:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
    v.reader, v.writer = reader, writer
    if v.protocol == "jt808":
        body = (
            b"\x00\x2c\x01\x2f"
            + b"SIMUL"
            + b"AH-808".ljust(20, b"\x00")
            + v.device_id[-7:].encode()
            + b"\x02"
            + f"粤B{v.device_id[-5:]}".encode("gbk")
        )
        writer.write(jt808.encode(0x0100, v.device_id, v.next_serial(), body))
        reg = await _read_jt808(reader)
        if reg.header.msg_id != 0x8100 or reg.body[2] != 0:
            raise ConnectionError(f"registration refused ({reg.body[2:3].hex()})")
        writer.write(jt808.encode(0x0102, v.device_id, v.next_serial(), reg.body[3:]))
        auth = await _read_jt808(reader)
        if auth.body[4:5] != b"\x00":
            raise ConnectionError("authentication refused")
    elif v.protocol == "gt06":
        writer.write(gt06.encode(0x01, bytes.fromhex("0" + v.device_id), v.next_serial()))
        await asyncio.wait_for(reader.readexactly(10), 10)
    stats[f"{v.protocol}_connected"] += 1


def _close(v: Vehicle) -> None:
    if v.writer is not None:
        v.writer.close()
    v.reader = v.writer = None


async def _report(
    v: Vehicle, host: str, ports: dict[str, int], scenario: str, rng: random.Random, stats: Counter[str]
) -> None:
    """Send one report (connecting first if needed); count it sent and, where the protocol answers, acked."""
    async with v.lock:
        try:
            if v.writer is None:
                await _connect(v, host, ports[v.protocol], stats)
            assert v.reader is not None and v.writer is not None
            now = datetime.now(UTC)
            v.step(rng, 10.0)
            alarm = None
            if scenario != "position":
                alarm = scenario
                stats[f"scenario_{scenario}"] += 1
                if scenario in ("displacement", "ignition"):
                    v.speed_kmh = max(v.speed_kmh, 15.0)
                v.acc = v.acc or scenario == "ignition"
            if v.protocol == "jt808":
                bits = JT808_BITS.get(alarm, 0) if alarm else 0
                body = jt808.encode_location_body(
                    lat=v.lat,
                    lon=v.lon,
                    alarm_bits=bits,
                    status_bits=0x02 | int(v.acc),
                    speed_kmh=v.speed_kmh,
                    heading_deg=int(v.heading),
                    local_time=_local(now, 8),
                    altitude_m=20,
                )
                v.writer.write(jt808.encode(0x0200, v.device_id, v.next_serial(), body))
                stats["sent"] += 1
                ack = await _read_jt808(v.reader)
                if ack.header.msg_id == 0x8001 and ack.body[4] == 0:
                    stats["acked"] += 1
            elif v.protocol == "gt06":
                t = _local(now, 0)
                stamp = (t.year % 100, t.month, t.day, t.hour, t.minute, t.second)
                block = gt06.encode_gps_content(
                    local_time=stamp, lat=v.lat, lon=v.lon, speed_kmh=int(v.speed_kmh), heading=int(v.heading)
                )
                if alarm:
                    # alarm packets carry the cell block with its own length byte (which counts itself)
                    content = (
                        block[:18]
                        + b"\x09"
                        + block[18:26]
                        + bytes([0x40 | (0x02 if v.acc else 0), 0x04, 0x04, GT06_ALARMS[alarm], 0x02])
                    )
                    v.writer.write(gt06.encode(0x16, content, v.next_serial()))
                    stats["sent"] += 1
                    await asyncio.wait_for(v.reader.readexactly(10), 10)
                    stats["acked"] += 1
                else:
                    v.writer.write(
                        gt06.encode(0x22, block + bytes([1 if v.acc else 0, 0, 0]), v.next_serial())
                    )
                    stats["sent"] += 1
            else:
                status = 0xFFFFFFFF & ~(1 << 10 if v.acc else 0)
                if alarm:
                    status &= ~H02_CLEAR_BITS[alarm]
                t = _local(now, 0)
                v.writer.write(
                    h02.encode_v1(
                        v.device_id,
                        hms=t.strftime("%H%M%S"),
                        dmy=t.strftime("%d%m%y"),
                        lat=v.lat,
                        lon=v.lon,
                        knots=v.speed_kmh / 1.852,
                        course=int(v.heading),
                        status=status,
                    )
                )
                stats["sent"] += 1
            await v.writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ConnectionError, FrameError) as exc:
            stats["errors"] += 1
            stats[f"error_{type(exc).__name__}"] += 1
            _close(v)


def _idle(vehicles: int, start: int, busy: set[int]) -> int | None:
    """The first vehicle from ``start`` (round robin) with no report in flight, or None when all are busy.

    A busy vehicle's turn goes to the next idle one instead of being dropped: dropping it (as the simulator
    once did) made a count-bounded run send fewer than its count whenever answers took longer than a
    vehicle's turn (30 vehicles at 60/s: 0.5 s), e.g. 189 of 240 on a loaded 2-core box."""
    for k in range(vehicles):
        i = (start + k) % vehicles
        if i not in busy:
            return i
    return None


async def run(
    host: str,
    ports: dict[str, int],
    *,
    rate: float,
    count: int | None,
    duration_s: float | None,
    vehicles: int,
    seed: int,
) -> dict[str, int]:
    """Drive ``vehicles`` at ``rate`` reports/s in total, bounded by ``count`` and/or ``duration_s``; a
    vehicle has one report in flight at most (a unit waits for its answer), a report never dropped."""
    if count is None and duration_s is None:
        raise ValueError("bound the run: give count or duration_s")
    rng = random.Random(seed)
    fl = fleet(vehicles, seed=seed)
    stats: Counter[str] = Counter()
    names = [s for s, _ in SCENARIOS]
    weights = [w for _, w in SCENARIOS]
    interval = 1.0 / rate if rate > 0 else 1.0
    t_end = time.monotonic() + duration_s if duration_s else float("inf")
    in_flight: dict[asyncio.Task[None], int] = {}  # report → its vehicle, from the task's creation to its end
    n = 0
    next_at = time.monotonic()
    try:
        while (count is None or n < count) and time.monotonic() < t_end:
            i = _idle(len(fl), n, set(in_flight.values()))
            if i is None:  # every vehicle awaits an answer: wait for one rather than drop the report
                stats["waited_all_busy"] += 1
                left = t_end - time.monotonic()
                await asyncio.wait(
                    set(in_flight),
                    timeout=None if left == math.inf else max(0.0, left),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                continue
            scenario = rng.choices(names, weights)[0]
            task = asyncio.create_task(_report(fl[i], host, ports, scenario, rng, stats))
            in_flight[task] = i
            task.add_done_callback(in_flight.pop)
            n += 1
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(min(delay, max(0.0, t_end - time.monotonic())))
        if in_flight:
            await asyncio.wait(list(in_flight), timeout=15)
    finally:
        for v in fl:
            if v.writer is not None:
                with contextlib.suppress(Exception):
                    _close(v)
    return dict(stats)
