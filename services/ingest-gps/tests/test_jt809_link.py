"""The JT/T 809 server over real loopback TCP with the durable Kafka write in the path.

A lower platform (the simulator) logs in, forwards positions, back-fill and an alarm; they appear on the
prefixed topics. Refused logins get the standard's result codes; the slave link logs in and requests
go down it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest_asyncio
from alarmhub_events import Event
from alarmhub_ingest_gps.jt809 import (
    Jt809Server,
    PlatformDirectory,
    PlatformRecord,
    link_status_writer,
    load_platforms,
    raw_items,
)
from alarmhub_ingest_gps.protocols import jt809 as p
from alarmhub_kafka import DurableProducer, KafkaMetrics
from alarmhub_sim import jt809 as sim
from prometheus_client import CollectorRegistry

PLATFORM = PlatformRecord(
    user_id=70001,
    password="pw70001",
    gnss_center_id=70001,
    name="sim-operator",
    cipher=p.Cipher(30000000, 20000000, 20000000),
)


@pytest_asyncio.fixture
async def server(stack: Any, topic_prefix: str) -> AsyncIterator[Jt809Server]:
    producer = DurableProducer(
        stack.kafka_bootstrap,
        metrics=KafkaMetrics(CollectorRegistry()),
        client_id="jt809-test",
        topic_prefix=topic_prefix,
        service="ingest-gps",
    )
    await producer.start()

    async def publish(items: list[tuple[str, Event]]) -> None:
        await producer.send_many([(t, e, None) for t, e in items])

    async def dead_letter(raw: bytes, error: str, peer: str | None) -> None:
        await producer.dead_letter(
            stage="decode", source_id=peer or "jt809", error=error, raw=raw, protocol="jt809", peer=peer
        )

    answers: list[tuple[int, dict[str, Any]]] = []
    srv = Jt809Server(
        host="127.0.0.1",
        port=0,
        directory=PlatformDirectory([PLATFORM]),
        publish=publish,
        dead_letter=dead_letter,
        on_answer=lambda uid, a: answers.append((uid, a)),
        registry=CollectorRegistry(),
        slave_heartbeat_s=0.5,
    )
    srv.answers = answers  # type: ignore[attr-defined]
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()
        await producer.stop()


async def test_platform_forwards_positions_and_alarm(
    server: Jt809Server, topic_prefix: str, consume_topic: Any
) -> None:
    counts = await asyncio.wait_for(
        sim.run(
            "127.0.0.1",
            server.port,
            user_id=70001,
            password="pw70001",
            gnss_center_id=70001,
            rate=200,
            count=40,
            duration_s=20,
            vehicles=5,
            seed=1,
            alarms=1,
            backfill=1,
            cipher=PLATFORM.cipher,
        ),
        60,
    )
    assert counts["login_result"] == 0 and counts["positions"] == 40 and counts["alarms"] == 1
    assert counts["heartbeats_answered"] >= 1 and counts.get("logged_out") == 1
    assert counts.get("slave_logins", 0) >= 1

    fixes = await consume_topic(topic_prefix, "telemetry.gps", 43, timeout=30)
    live = [f for f in fixes if not f["attributes"].get("backfill")]
    back = [f for f in fixes if f["attributes"].get("backfill")]
    assert len(live) == 40 and len(back) == 3
    assert all(
        f["protocol"] == "jt809" and f["device_id"].startswith("粤B") and f["device_id"].endswith(":2")
        for f in fixes
    )
    assert all(f["attributes"]["live"] is False for f in back)
    assert all(22.3 < f["lat"] < 22.8 and 113.8 < f["lon"] < 114.3 for f in live)

    [alarm] = await consume_topic(topic_prefix, "alarms.raw", 1, timeout=30)
    assert alarm["kind"] == "vehicle_theft" and alarm["source"]["protocol"] == "jt809"
    assert alarm["source"]["platform"] == "sim-operator" and alarm["location"]["crs"] == "WGS84"
    statuses = await consume_topic(topic_prefix, "devices.status", 2, timeout=30)
    assert [s["status"] for s in statuses] == ["online", "offline"]
    assert server.stats["logins_ok"] == 1


async def test_refused_logins_and_slave_requests(server: Jt809Server, topic_prefix: str) -> None:
    bad = await sim.run(
        "127.0.0.1",
        server.port,
        user_id=70001,
        password="wrong",
        gnss_center_id=70001,
        rate=10,
        count=1,
        duration_s=5,
        vehicles=1,
        seed=2,
    )
    assert bad["login_result"] == p.LOGIN_OTHER  # one refusal code (docs/security.md)
    unknown = await sim.run(
        "127.0.0.1",
        server.port,
        user_id=99,
        password="x",
        gnss_center_id=99,
        rate=10,
        count=1,
        duration_s=5,
        vehicles=1,
        seed=2,
    )
    assert unknown["login_result"] == p.LOGIN_OTHER
    assert server.stats["logins_refused"] == 2

    # a live link: requests go down the slave link once it is up
    task = asyncio.create_task(
        sim.run(
            "127.0.0.1",
            server.port,
            user_id=70001,
            password="pw70001",
            gnss_center_id=70001,
            rate=20,
            count=None,
            duration_s=3,
            vehicles=2,
            seed=3,
        )
    )
    for _ in range(100):
        link = server.links.get(70001)
        if link is not None and link.slave_up:
            break
        await asyncio.sleep(0.05)
    assert await server.request_tracking(70001, "粤B00001", 2, start=True)
    sup = p.Supervision(1, 0x0009, datetime.now(UTC), 42, None, 1, "duty", "110", "duty@example.org")
    assert await server.supervise(70001, "粤B00001", 2, sup)
    counts = await asyncio.wait_for(task, 30)
    assert counts["down_requests"] == 2 and counts["slave_heartbeats"] >= 1


async def test_platform_registry_loads_from_postgres(stack: Any) -> None:
    import json

    import asyncpg

    conn = await asyncpg.connect(stack.database_url)
    try:
        await conn.execute(
            "INSERT INTO platforms (user_id, password, gnss_center_id, name, encrypt, allowed) "
            "VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb) ON CONFLICT (user_id) DO NOTHING",
            80001,
            "pw",
            80002,
            "db-op",
            json.dumps({"m1": 1, "ia1": 2, "ic1": 3}),
            json.dumps({"plates": ["粤B1"]}),
        )
    finally:
        await conn.close()
    recs = {r.user_id: r for r in await load_platforms(stack.database_url)}
    rec = recs[80001]
    assert rec.gnss_center_id == 80002 and rec.cipher == p.Cipher(1, 2, 3)
    assert rec.allowed_plates == frozenset({"粤B1"}) and rec.label == "db-op"
    await link_status_writer(stack.database_url)(80001, "up+slave")
    conn = await asyncpg.connect(stack.database_url)
    try:
        assert await conn.fetchval("SELECT link_status FROM platforms WHERE user_id = 80001") == "up+slave"
    finally:
        await conn.close()


# SmallChi/JT809 JT809_0x1001PackageTest.cs Test2: login of user 20180920, password "20180920", unencrypted
REAL_LOGIN = bytes.fromhex(
    "5B000000480000008510010133EFB8010000000000270F0133EFB832303138303932303132372E302E302E31"
    "000000000000000000000000000000000000000000000003296A915D"
)
# SmallChi/JT809 JT809_0x1200_0x1202Test.cs Test2 (lon 133.123456, lat 24.123456), alarm word cleared
REAL_1202 = bytes.fromhex("00130707DC0F0F0F07EF4D80017018400032003300000096002D002D0000000300000000")
PLAIN = PlatformRecord(user_id=20180920, password="20180920", gnss_center_id=20180920, name="op-plain")


async def test_hot_path_fixes_reach_kafka_as_valid_fixes(
    stack: Any, topic_prefix: str, consume_topic: Any
) -> None:
    """Unencrypted 2011 positions take the direct path (JSON written by the session) through the group
    commit to the broker; what lands on the topic is a valid ``GpsFix`` with the frame's values."""
    from alarmhub_events import GpsFix

    producer = DurableProducer(
        stack.kafka_bootstrap,
        metrics=KafkaMetrics(CollectorRegistry()),
        client_id="jt809-direct-test",
        topic_prefix=topic_prefix,
        service="ingest-gps",
    )
    await producer.start()

    async def publish(items: list[tuple[str, Any]]) -> None:
        await producer.send_raw_many(raw_items(items))

    srv = Jt809Server(
        host="127.0.0.1", port=0, directory=PlatformDirectory([PLAIN]), publish=publish, slave_enabled=False
    )
    await srv.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(REAL_LOGIN)
        await writer.drain()
        await asyncio.wait_for(reader.read(4096), 10)
        plates = [f"粤B{i:05d}" for i in range(5)]
        writer.write(
            b"".join(
                p.encode(
                    p.UP_EXG_MSG,
                    p.encode_vehicle(plate, 2, p.UP_EXG_MSG_REAL_LOCATION, REAL_1202),
                    serial=i + 1,
                    gnss_center_id=20180920,
                )
                for i, plate in enumerate(plates)
            )
        )
        writer.write(p.encode(p.UP_LINKTEST_REQ, b"", serial=9, gnss_center_id=20180920))
        await writer.drain()
        await asyncio.wait_for(reader.read(4096), 10)  # 0x1006 only after the positions were written
        assert srv.stats["positions"] == 5
        writer.close()
    finally:
        await srv.stop()
        await producer.stop()
    fixes = [
        GpsFix.model_validate(f) for f in await consume_topic(topic_prefix, "telemetry.gps", 5, timeout=30)
    ]
    assert sorted(f.device_id for f in fixes) == [f"{plate}:2" for plate in plates]
    assert all(
        (f.lat, f.lon, f.speed_kmh, f.heading_deg, f.valid) == (24.123456, 133.123456, 50.0, 45.0, True)
        for f in fixes
    )
    assert all(f.attributes["platform"] == "op-plain" and f.attributes["vec2_kmh"] == 51 for f in fixes)
    assert len({f.event_id for f in fixes}) == 5


async def test_group_write_joins_reads_and_settles_each(
    stack: Any, topic_prefix: str, consume_topic: Any
) -> None:
    """Reads submitted while a producer call runs share the next call; each read's future is settled by
    its call (written, or failed with the call's error)."""
    from alarmhub_events import TELEMETRY_GPS
    from alarmhub_ingest_gps.jt809 import fast_fix
    from alarmhub_ingest_gps.jt809.server import _GroupWrite
    from alarmhub_kafka import PublishError

    producer = DurableProducer(
        stack.kafka_bootstrap,
        metrics=KafkaMetrics(CollectorRegistry()),
        client_id="jt809-group-test",
        topic_prefix=topic_prefix,
        service="ingest-gps",
    )
    await producer.start()
    calls: list[int] = []

    async def publish(items: list[tuple[str, Any]]) -> None:
        calls.append(len(items))
        await producer.send_raw_many(raw_items(items))

    now = datetime.now(UTC)

    def read(i: int) -> list[tuple[str, Any]]:
        return [
            (
                TELEMETRY_GPS,
                fast_fix(
                    device_id=f"粤B{i:05d}:2",
                    lat=22.5,
                    lon=114.0,
                    speed_kmh=1.0,
                    heading_deg=None,
                    altitude_m=None,
                    valid=True,
                    occurred_at=now,
                    received_at=now,
                    attributes={},
                ),
            )
        ]

    group = _GroupWrite(publish, calls=1, max_items=3)
    try:
        first = [group.submit(read(i)) for i in range(2)]  # the same loop iteration: one call
        await asyncio.sleep(0)  # that call starts
        assert group.calls_made == 1
        later = [group.submit(read(i)) for i in range(2, 5)]  # while it runs: they wait, together
        room = asyncio.ensure_future(group.room())
        await asyncio.sleep(0)
        assert not room.done()  # 3 records waiting = max_items: links stop reading
        await asyncio.wait_for(asyncio.gather(*first, *later, room), 30)
        assert calls == [2, 3] and group.calls_made == 2
    finally:
        await producer.stop()
    failed = group.submit(read(9))
    try:
        await asyncio.wait_for(failed, 30)
        raise AssertionError("a write to a stopped producer succeeded")
    except PublishError:
        pass
    fixes = await consume_topic(topic_prefix, "telemetry.gps", 5, timeout=30)
    assert sorted(f["device_id"] for f in fixes) == [f"粤B{i:05d}:2" for i in range(5)]
