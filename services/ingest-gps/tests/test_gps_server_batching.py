"""The server's per-tick batching: the events of every connection read in one event-loop iteration
go to the sink in one ``deliver_many`` call, and no terminal hears 0x8001 before that write is
confirmed; a failed write answers nobody and closes the batch's connections.

The sink here stands in for the app (which writes to Kafka, covered in test_gps_service); it holds
each write open until the test releases it, which is what makes "no reply before the write" visible.
The SOS frame is the captured one from test_gps_session (traccar HuabaoProtocolDecoderTest).
"""

from __future__ import annotations

import asyncio
import json

import pytest
from alarmhub_ingest_gps.metrics import GpsMetrics
from alarmhub_ingest_gps.protocols import jt808
from alarmhub_ingest_gps.server import GpsServer, Session, Sink
from alarmhub_ingest_gps.sessions import CommandResult, Jt808Session, Output, SessionConfig, derive_auth_code
from alarmhub_kafka import PublishError
from prometheus_client import CollectorRegistry

PHONE = "094027587492"
SOS_FRAME = bytes.fromhex(
    "7e0200002e094027587492000a000000010000000a03083db7001329f3000000140000130412164952010400000012360a0002341502cb0c20085c107e"
)
SECRET = b"batch-test"


class HeldSink(Sink):
    def __init__(self) -> None:
        self.calls: list[list[tuple[Session, Output]]] = []
        self.release: asyncio.Future[None] | None = None
        self.fail = False

    async def deliver(self, session: Session, out: Output) -> None:
        pass  # logins (online status): let them through

    async def deliver_many(self, batch: list[tuple[Session, Output]]) -> None:
        self.calls.append(batch)
        assert self.release is not None
        await self.release
        if self.fail:
            raise PublishError("broker did not confirm the write")

    def command_result(self, result: CommandResult) -> None:
        pass


def _server(sink: Sink, metrics: GpsMetrics) -> GpsServer:
    """A JT/T 808 server on a free loopback port, its terminals authenticated with ``SECRET``."""
    config = SessionConfig(auth_secret=SECRET)
    return GpsServer(
        "jt808",
        lambda peer: Jt808Session({}, config, peer),
        sink,
        metrics,
        host="127.0.0.1",
        port=0,
        idle_timeout_s=30,
        login_timeout_s=30,
        max_connections=100,
    )


async def _terminals(port: int, n: int) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    conns = []
    for _ in range(n):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(jt808.encode(0x0102, PHONE, 1, derive_auth_code(SECRET, PHONE).encode()))
        await asyncio.wait_for(reader.readuntil(b"\x7e"), 5)  # the 0x8001 to the authentication
        await asyncio.wait_for(reader.readuntil(b"\x7e"), 5)
        conns.append((reader, writer))
    return conns


@pytest.mark.parametrize("fail", [False, True])
async def test_one_write_per_tick_and_no_reply_before_it(fail: bool) -> None:
    sink = HeldSink()
    sink.release = asyncio.get_running_loop().create_future()
    sink.fail = fail
    registry = CollectorRegistry()
    server = _server(sink, GpsMetrics(registry))
    await server.start()
    try:
        conns = await _terminals(server.port, 3)
        # written without yielding: loopback delivers them at once, so the gateway (same loop) finds
        # all three sockets readable in one iteration
        for _, writer in conns:
            writer.write(SOS_FRAME * 2)
        for _ in range(100):  # wait until every connection's read is in a pending write
            if sum(len(batch) for batch in sink.calls) == 3:
                break
            await asyncio.sleep(0.02)
        assert [len(batch) for batch in sink.calls] == [3]  # one write for the three connections
        for batch in sink.calls:
            for _, out in batch:
                assert (
                    len(out.publish) >= 2 and out.reply
                )  # both fixes (and the SOS alarm) held with the reply
        # the reads of one iteration share its receive time (the clock is read at its first read), and
        # its frames are counted once it ends
        received = {
            json.loads(ev.to_bytes())["received_at"] for _, out in sink.calls[0] for _, ev in out.publish
        }
        assert len(received) == 1
        assert (
            registry.get_sample_value(
                "alarmhub_ingest_gps_frames_total", {"protocol": "jt808", "result": "ok"}
            )
            == 3 + 6
        )  # the logins, then 2 frames each
        # the write is pending: nothing answered yet
        for reader, _ in conns:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(reader.read(1), 0.2)
        sink.release.set_result(None)
        for reader, _ in conns:
            data = await asyncio.wait_for(reader.read(4096), 5)
            if fail:
                assert data == b""  # not written → not answered, and the connection is dropped
            else:
                replies = [jt808.decode(f) for f in data.split(b"\x7e") if f]
                assert [(r.header.msg_id, r.body[4]) for r in replies] == [(0x8001, 0), (0x8001, 0)]
        for _, writer in conns:
            writer.close()
    finally:
        await server.stop_accepting()
        await server.drain(1.0)


async def test_a_read_during_the_pending_write_waits_for_it() -> None:
    """Reading is not paused for every write: a read arriving while the connection's write is pending is
    held (and reading paused then), fed only once that write is confirmed — frames in order, each
    answered after its own write."""
    sink = HeldSink()
    sink.release = asyncio.get_running_loop().create_future()
    server = _server(sink, GpsMetrics(CollectorRegistry()))
    await server.start()
    try:
        [(reader, writer)] = await _terminals(server.port, 1)
        writer.write(SOS_FRAME)
        for _ in range(100):
            if sink.calls:
                break
            await asyncio.sleep(0.02)
        writer.write(SOS_FRAME)  # while the first frame's write is pending
        await asyncio.sleep(0.2)
        assert len(sink.calls) == 1  # the second read is held, not written
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(1), 0.1)
        sink.release.set_result(None)
        data = b""
        for _ in range(50):
            data += await asyncio.wait_for(reader.read(4096), 5)
            if data.count(b"\x7e") >= 4:
                break
        replies = [jt808.decode(f) for f in data.split(b"\x7e") if f]
        assert [r.header.msg_id for r in replies] == [0x8001, 0x8001]
        assert len(sink.calls) == 2 and all(len(batch) == 1 for batch in sink.calls)
        writer.close()
    finally:
        await server.stop_accepting()
        await server.drain(1.0)
