"""The receiver as a whole against the real broker: a frame over TCP and UDP, an ACK back, the event
on the prefixed ``alarms.raw``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest_asyncio
from alarmhub_events import ALARMS_RAW
from alarmhub_ingest_contactid.app import ContactIdApp
from alarmhub_ingest_contactid.config import ContactIdSettings
from alarmhub_ingest_contactid.protocols import dc09
from prometheus_client import CollectorRegistry

Consume = Callable[..., Awaitable[list[dict[str, Any]]]]


def settings_for(stack: Any, prefix: str, **extra: Any) -> ContactIdSettings:
    values: dict[str, Any] = {
        "KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
        "DATABASE_URL": stack.database_url,
        "REDIS_URL": stack.redis_url,
        "ALARMHUB_TOPIC_PREFIX": prefix,
        "ALARMHUB_DC09_HOST": "127.0.0.1",
        "ALARMHUB_DC09_PORT": 0,
        "ALARMHUB_HEALTH_PORT": 0,
        "ALARMHUB_SHUTDOWN_GRACE_S": 4,
    }
    values.update(extra)
    return ContactIdSettings(**values)


@pytest_asyncio.fixture
async def service(stack: Any, topic_prefix: str) -> AsyncIterator[ContactIdApp]:
    app = ContactIdApp(settings_for(stack, topic_prefix), CollectorRegistry())
    await asyncio.wait_for(app.start(), 30)
    try:
        yield app
    finally:
        await app.stop()


async def tcp_exchange(port: int, frame: bytes, timeout: float = 10.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(frame)
        await writer.drain()
        return await asyncio.wait_for(reader.readuntil(b"\r"), timeout)
    finally:
        writer.close()


async def udp_exchange(port: int, frame: bytes, timeout: float = 10.0) -> bytes:
    loop = asyncio.get_running_loop()
    got: asyncio.Future[bytes] = loop.create_future()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            if not got.done():
                got.set_result(data)

    transport, _ = await loop.create_datagram_endpoint(Client, remote_addr=("127.0.0.1", port))
    try:
        transport.sendto(frame)
        return await asyncio.wait_for(got, timeout)
    finally:
        transport.close()


async def test_tcp_and_udp_frames_are_acked_and_published(
    service: ContactIdApp,
    topic_prefix: str,
    consume_topic: Consume,
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    panic = dc09.encode("ADM-CID", 1, "1234", "#1234|1120 01 001", line="1", receiver="2", timestamp=now)
    reply = dc09.decode_reply(await tcp_exchange(service.port, panic))
    assert (reply.token, reply.seq, reply.account, reply.line, reply.receiver) == (
        "ACK",
        "0001",
        "1234",
        "1",
        "2",
    )

    fire = dc09.encode("SIA-DCS", 2, "1234", "#1234|Nri1/FA003", line="1", timestamp=now)
    reply = dc09.decode_reply(await udp_exchange(service.port, fire))
    assert (reply.token, reply.seq) == ("ACK", "0002")

    # a real PROSEC NULL capture (no timestamp window issue: the window applies, so send it fresh)
    null = dc09.encode("NULL", 0, "0809", "", line="000", timestamp=now)
    assert dc09.decode_reply(await tcp_exchange(service.port, null)).token == "ACK"

    events = await consume_topic(topic_prefix, ALARMS_RAW, 2, timeout=20)
    assert len(events) == 2
    by_code = {e["code"]: e for e in events}
    p = by_code["E120"]
    assert p["kind"] == "panic" and p["qualifier"] == "new" and p["zone"] == "001"
    assert p["source"]["protocol"] == "dc09-cid" and p["source"]["device_id"] == "L1#1234"
    assert (
        p["source"]["receiver"] == "R2" and p["source"]["line"] == "L1" and p["source"]["account"] == "1234"
    )
    assert p["source"]["path"] == "tcp" and p["source"]["peer"].startswith("127.0.0.1:")
    assert p["occurred_at"] == now.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert p["raw"] == panic.decode().strip()
    assert p["attributes"]["partition"] == "01"
    f = by_code["FA"]
    assert f["kind"] == "fire" and f["zone"] == "003" and f["source"]["protocol"] == "dc09-sia"
    assert f["source"]["path"] == "udp"


async def test_glued_and_split_frames_on_one_connection(service: ContactIdApp) -> None:
    now = datetime.now(UTC)
    frames = [
        dc09.encode("ADM-CID", i, "77AB", f"#77AB|1130 01 00{i}", line="3", timestamp=now)
        for i in range(1, 5)
    ]
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    try:
        stream = b"garbage\x00" + b"".join(frames)
        mid = len(stream) // 2 + 3
        writer.write(stream[:mid])
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(stream[mid:])
        await writer.drain()
        seqs = []
        for _ in frames:
            seqs.append(dc09.decode_reply(await asyncio.wait_for(reader.readuntil(b"\r"), 10)).seq)
        assert seqs == ["0001", "0002", "0003", "0004"]
    finally:
        writer.close()


async def test_bad_crc_gets_no_reply_and_connection_survives(service: ContactIdApp) -> None:
    now = datetime.now(UTC)
    good = dc09.encode("NULL", 0, "1234", "", line="1", timestamp=now)
    bad = good[:12] + (b"X" if good[12:13] != b"X" else b"Y") + good[13:]
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    try:
        writer.write(bad + good)
        await writer.drain()
        reply = dc09.decode_reply(await asyncio.wait_for(reader.readuntil(b"\r"), 10))
        assert reply.token == "ACK"  # only the good frame was answered
    finally:
        writer.close()


async def test_per_peer_limit_and_idle_timeout(stack: Any, topic_prefix: str) -> None:
    app = ContactIdApp(
        settings_for(
            stack,
            topic_prefix,
            ALARMHUB_DC09_MAX_CONNECTIONS_PER_PEER=2,
            ALARMHUB_DC09_IDLE_TIMEOUT_S=0.5,
            ALARMHUB_DC09_REGISTRY=False,
        ),
        CollectorRegistry(),
    )
    await asyncio.wait_for(app.start(), 30)
    try:
        conns = [await asyncio.open_connection("127.0.0.1", app.port) for _ in range(3)]
        # the third connection from the same address is closed at once
        assert await asyncio.wait_for(conns[2][0].read(10), 5) == b""
        # the first two are served ...
        null = dc09.encode("NULL", 0, "1234", "", line="1", timestamp=datetime.now(UTC))
        conns[0][1].write(null)
        assert dc09.decode_reply(await asyncio.wait_for(conns[0][0].readuntil(b"\r"), 5)).token == "ACK"
        # ... and closed by the receiver once idle
        assert await asyncio.wait_for(conns[1][0].read(10), 5) == b""
        assert await asyncio.wait_for(conns[0][0].read(10), 5) == b""
        for _, w in conns:
            w.close()
        assert app.metrics.connections_rejected.labels("per_peer")._value.get() == 1
    finally:
        await app.stop()


async def test_connections_of_one_loop_iteration_share_one_broker_write(service: ContactIdApp) -> None:
    """Frames of many transmitters arriving together go to the broker in one call (or a few), and each
    transmitter gets its own ACK only after that write was confirmed."""
    calls: list[int] = []
    real = service.producer.send_raw_many

    async def counting(items: Any) -> None:
        calls.append(len(items))
        await real(items)

    service.producer.send_raw_many = counting  # type: ignore[method-assign]
    now = datetime.now(UTC).replace(microsecond=0)
    conns = [await asyncio.open_connection("127.0.0.1", service.port) for _ in range(20)]
    try:
        for seq in (1, 2):  # the first round looks the unregistered accounts up in the registry, one by one
            calls.clear()
            for i, (_, writer) in enumerate(conns):
                writer.write(
                    dc09.encode(
                        "ADM-CID",
                        seq,
                        f"{0x700 + i:X}",
                        f"#{0x700 + i:X}|1130 01 001",
                        line="1",
                        timestamp=now,
                    )
                )
            replies = [await asyncio.wait_for(reader.readuntil(b"\r"), 10) for reader, _ in conns]
    finally:
        for _, writer in conns:
            writer.close()
    assert [dc09.decode_reply(r).token for r in replies] == ["ACK"] * 20
    assert sum(calls) == 20 and len(calls) <= 5, calls
