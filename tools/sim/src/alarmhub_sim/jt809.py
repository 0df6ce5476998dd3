"""A lower-level JT/T 809 platform: logs in on the main link, forwards a fleet, serves its down-link.

It behaves as a GPS operator's platform does towards alarmhub: 0x1001 login (its down-link address in
the body), 0x1202 live positions for ``vehicles`` plates at ``rate`` positions/s, heartbeats 0x1005,
optional 0x1203 back-fill and 0x1402 alarm reports, and 0x1003 logout at the end. Its own down-link
server answers alarmhub's slave-link login 0x9001 (checking the verify code from 0x1002) and
keepalives 0x9005, and counts requests sent down (0x9200/0x9400 families). Requests are answered on the
main link as a platform does: 0x9205/0x9206 by 0x1205/0x1206 (a tracked plate outside the fleet joins
it until 0x9206), 0x9401 by 0x1401 with the supervision id and ``supervision_result``, after
``supervision_delay_s``, then (``supervision_then``) a second 0x1401 as a platform reporting "processing"
first and "handled" later does.

Bounded: stops at ``count`` positions or after ``duration_s`` seconds (10 s when neither is given).
Only the addresses given are used (the tests and benchmarks pass loopback).

    python -m alarmhub_sim.jt809 --port 5809 --user-id 1001 --password secret1 --center 1001 --rate 100 --count 1000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from alarmhub_geo import wgs84_to_gcj02
from alarmhub_ingest_gps.protocols import jt809 as p

__all__ = ["plates", "run"]

_PROVINCE = "粤"


def plates(vehicles: int, seed: int) -> list[str]:
    """Distinct, plausible Shenzhen plates (粤B + 5 characters), stable for a seed."""
    rnd = random.Random(seed)
    out: set[str] = set()
    while len(out) < vehicles:
        out.add(f"{_PROVINCE}B{rnd.randrange(100000):05d}")
    return sorted(out)


class _DownLink:
    """The lower platform's down-link server: answers 0x9001/0x9005, counts requests."""

    def __init__(self, center: int) -> None:
        self.center = center
        self.answer: Callable[[p.Frame], None] | None = None  # set once the main link is up
        self.verify_code: int | None = None
        self.counts: Counter[str] = Counter()
        self.requests: list[tuple[int, int]] = []
        self.slave_up = asyncio.Event()
        self._serial = 0
        self._server: asyncio.Server | None = None

    async def start(self, host: str) -> int:
        self._server = await asyncio.start_server(self._handle, host, 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def _frame(self, msg_id: int, body: bytes) -> bytes:
        self._serial += 1
        return p.encode(msg_id, body, serial=self._serial, gnss_center_id=self.center)

    def request(self, frame: p.Frame) -> None:
        """A 0x9200/0x9400 request, from the slave link or the main link: count it, answer it."""
        vm = p.read(frame)
        if not isinstance(vm, p.VehicleMessage):
            return
        self.requests.append((frame.msg_id, vm.sub_type))
        self.counts["down_requests"] += 1
        if self.answer is not None:
            self.answer(frame)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = p.Framer()
        try:
            while True:
                data = await asyncio.wait_for(reader.read(65536), 600)
                if not data:
                    break
                for payload in framer.feed(data):
                    try:
                        frame = p.decode(payload)
                    except p.FrameError:
                        self.counts["bad_frames"] += 1
                        continue
                    if frame.msg_id == p.DOWN_CONNECT_REQ:
                        ok = p.read(frame) == self.verify_code
                        writer.write(self._frame(p.DOWN_CONNECT_RSP, b"\x00" if ok else b"\x01"))
                        self.counts["slave_logins" if ok else "slave_logins_refused"] += 1
                        if ok:
                            self.slave_up.set()
                    elif frame.msg_id == p.DOWN_LINKTEST_REQ:
                        writer.write(self._frame(p.DOWN_LINKTEST_RSP, b""))
                        self.counts["slave_heartbeats"] += 1
                    elif frame.msg_id in (p.DOWN_EXG_MSG, p.DOWN_WARN_MSG):
                        self.request(frame)
                    await writer.drain()
        except (OSError, TimeoutError, p.FrameError):
            pass
        finally:
            writer.close()


async def run(
    host: str,
    port: int,
    *,
    user_id: int,
    password: str,
    gnss_center_id: int,
    rate: float,
    count: int | None,
    duration_s: float | None,
    vehicles: int,
    seed: int,
    alarms: int = 0,
    backfill: int = 0,
    offset_coordinates: bool = False,
    cipher: p.Cipher | None = None,
    down_host: str = "127.0.0.1",
    heartbeat_s: float = 30.0,
    slave_wait_s: float = 2.0,
    supervision_result: int | None = 0,
    answer_tracking: bool = True,
    supervision_delay_s: float = 0.0,
    supervision_then: int | None = None,
) -> dict[str, int]:
    """Log in, forward positions (and ``alarms`` 0x1402 theft reports, ``backfill`` 0x1203 batches), log out.

    Returns counters: ``login_result``, ``positions``, ``backfilled``, ``alarms``, ``heartbeats_answered``,
    ``slave_logins``, ``slave_heartbeats``, ``down_requests``.
    """
    if count is None and duration_s is None:
        duration_s = 10.0
    rnd = random.Random(seed)
    fleet = plates(vehicles, seed)
    pos = {
        pl: [22.54 + rnd.uniform(-0.08, 0.08), 114.05 + rnd.uniform(-0.15, 0.15), rnd.uniform(0, 2 * math.pi)]
        for pl in fleet
    }
    down = _DownLink(gnss_center_id)
    down_port = await down.start(down_host)
    result: Counter[str] = Counter()
    serial = 0

    def frame(msg_id: int, body: bytes) -> bytes:
        nonlocal serial
        serial += 1
        return p.encode(
            msg_id,
            body,
            serial=serial,
            gnss_center_id=gnss_center_id,
            cipher=cipher,
            key=rnd.randrange(1, 1 << 31) if cipher else 0,
        )

    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
    framer = p.Framer()
    replies: asyncio.Queue[p.Frame] = asyncio.Queue()

    async def read_replies() -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                for payload in framer.feed(data):
                    with contextlib.suppress(p.FrameError):
                        f = p.decode(payload)
                        if f.msg_id in (p.DOWN_EXG_MSG, p.DOWN_WARN_MSG):  # a request down the main link
                            down.request(f)
                        else:
                            replies.put_nowait(f)

    reading = asyncio.create_task(read_replies())
    added: set[str] = set()

    def answer(req: p.Frame) -> None:
        vm = p.read(req)
        if not isinstance(vm, p.VehicleMessage):
            return
        if vm.sub_type == p.DOWN_EXG_MSG_RETURN_STARTUP:
            if vm.plate not in pos:
                pos[vm.plate] = [22.54, 114.05, 0.0]
                fleet.append(vm.plate)
                added.add(vm.plate)
            if answer_tracking:
                writer.write(
                    frame(
                        p.UP_EXG_MSG,
                        p.encode_vehicle(vm.plate, vm.colour, p.UP_EXG_MSG_RETURN_STARTUP_ACK, b""),
                    )
                )
        elif vm.sub_type == p.DOWN_EXG_MSG_RETURN_END:
            if vm.plate in added:
                added.discard(vm.plate)
                fleet.remove(vm.plate)
            if answer_tracking:
                writer.write(
                    frame(
                        p.UP_EXG_MSG, p.encode_vehicle(vm.plate, vm.colour, p.UP_EXG_MSG_RETURN_END_ACK, b"")
                    )
                )
        elif vm.sub_type == p.DOWN_WARN_MSG_URGE_TODO_REQ and supervision_result is not None:
            sup = p.read(vm)
            if not isinstance(sup, p.Supervision):
                return
            results = [supervision_result] + ([supervision_then] if supervision_then is not None else [])

            def ack() -> None:
                if writer.is_closing():
                    return
                for r in results:
                    writer.write(
                        frame(
                            p.UP_WARN_MSG,
                            p.encode_vehicle(
                                vm.plate,
                                vm.colour,
                                p.UP_WARN_MSG_URGE_TODO_ACK,
                                p.encode_1401(sup.supervision_id, r),
                            ),
                        )
                    )

            if supervision_delay_s > 0:
                asyncio.get_running_loop().call_later(supervision_delay_s, ack)
            else:
                ack()
        result["answers_sent"] += 1

    down.answer = answer

    async def expect(msg_id: int, timeout: float) -> p.Frame | None:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                f = await asyncio.wait_for(replies.get(), left)
            except TimeoutError:
                return None
            if f.msg_id == msg_id:
                return f
            if f.msg_id == p.UP_LINKTEST_RSP:
                result["heartbeats_answered"] += 1
        return None

    try:
        writer.write(
            frame(p.UP_CONNECT_REQ, p.encode_login(p.Login(user_id, password, down_host, down_port)))
        )
        await writer.drain()
        rsp = await expect(p.UP_CONNECT_RSP, 10)
        if rsp is None:
            result["login_result"] = -1
            return dict(result)
        reply = p.read(rsp)
        if not isinstance(reply, p.LoginReply):
            raise p.FrameError("0x1002 without its body")
        code, verify = reply
        result["login_result"] = code
        if code != p.LOGIN_OK:
            return dict(result)
        down.verify_code = verify

        started = time.monotonic()
        last_beat = started
        sent = 0
        alarm_at = {
            int((i + 1) * (count or max(rate * (duration_s or 0), 1)) / (alarms + 1)) for i in range(alarms)
        }
        while True:
            now_m = time.monotonic()
            elapsed = now_m - started
            if duration_s is not None and elapsed >= duration_s:
                break
            if count is not None and sent >= count:
                break
            due = int(rate * elapsed) + 1 - sent
            if count is not None:
                due = min(due, count - sent)
            chunks: list[bytes] = []
            now = datetime.now(UTC)
            for _ in range(max(due, 0)):
                pl = fleet[sent % len(fleet)]
                st = pos[pl]
                st[2] += rnd.uniform(-0.3, 0.3)
                st[0] += 0.0002 * math.cos(st[2])
                st[1] += 0.0002 * math.sin(st[2])
                lon, lat = wgs84_to_gcj02(st[1], st[0]) if offset_coordinates else (st[1], st[0])
                body = p.encode_position_2011(
                    lat,
                    lon,
                    now,
                    speed=rnd.randrange(0, 80),
                    heading=int(math.degrees(st[2])) % 360,
                    offset=offset_coordinates,
                )
                chunks.append(frame(p.UP_EXG_MSG, p.encode_vehicle(pl, 2, p.UP_EXG_MSG_REAL_LOCATION, body)))
                sent += 1
                if sent in alarm_at:
                    info = f"alarmhub-sim theft {pl}"
                    chunks.append(
                        frame(
                            p.UP_WARN_MSG,
                            p.encode_vehicle(
                                pl, 2, p.UP_WARN_MSG_ADPT_INFO, p.encode_1402(0x0009, now, sent, info)
                            ),
                        )
                    )
                    result["alarms"] += 1
            if chunks:
                writer.write(b"".join(chunks))
                await writer.drain()
            if now_m - last_beat >= heartbeat_s:
                writer.write(frame(p.UP_LINKTEST_REQ, b""))
                last_beat = now_m
            await asyncio.sleep(0.02 if rate < 5000 else 0)
        result["positions"] = sent
        for b in range(backfill):
            pl = fleet[b % len(fleet)]
            now = datetime.now(UTC)
            fixes = b"".join(
                p.encode_position_2011(pos[pl][0], pos[pl][1], now.replace(microsecond=0)) for _ in range(3)
            )
            writer.write(
                frame(p.UP_EXG_MSG, p.encode_vehicle(pl, 2, p.UP_EXG_MSG_HISTORY_LOCATION, b"\x03" + fixes))
            )
            result["backfilled"] += 3
        writer.write(frame(p.UP_LINKTEST_REQ, b""))
        await writer.drain()
        if await expect(p.UP_LINKTEST_RSP, 30) is not None:
            result["heartbeats_answered"] += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(down.slave_up.wait(), slave_wait_s)
        writer.write(frame(p.UP_DISCONNECT_REQ, p.encode_logout(user_id, password)))
        await writer.drain()
        if await expect(p.UP_DISCONNECT_RSP, 10) is not None:
            result["logged_out"] = 1
        return dict(result + down.counts) | {"login_result": result["login_result"]}
    finally:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reading
        writer.close()
        await down.stop()


def main() -> None:
    ap = argparse.ArgumentParser(prog="alarmhub-sim-jt809", description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5809)
    ap.add_argument("--user-id", type=int, required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--center", type=int, required=True, help="GNSS centre id")
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--count", type=int)
    ap.add_argument("--duration", type=float)
    ap.add_argument("--vehicles", type=int, default=100)
    ap.add_argument("--alarms", type=int, default=0)
    ap.add_argument("--seed", type=int, default=809)
    a = ap.parse_args()
    print(
        json.dumps(
            asyncio.run(
                run(
                    a.host,
                    a.port,
                    user_id=a.user_id,
                    password=a.password,
                    gnss_center_id=a.center,
                    rate=a.rate,
                    count=a.count,
                    duration_s=a.duration,
                    vehicles=a.vehicles,
                    seed=a.seed,
                    alarms=a.alarms,
                )
            )
        )
    )


if __name__ == "__main__":
    main()
