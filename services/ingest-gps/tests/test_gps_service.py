"""The gateway end to end on the real broker and PostgreSQL: terminal in, events on the prefixed topics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import pytest
from alarmhub_ingest_gps.app import GpsApp
from alarmhub_ingest_gps.config import GpsSettings
from alarmhub_ingest_gps.protocols import commands_cutoff as co
from alarmhub_ingest_gps.protocols import gt06, jt808
from alarmhub_kafka import DurableProducer, KafkaMetrics
from prometheus_client import CollectorRegistry

PHONE = "094027587492"
# traccar HuabaoProtocolDecoderTest: 0x0200 from terminal 094027587492 with the SOS bit set
SOS_FRAME = bytes.fromhex(
    "7e0200002e094027587492000a000000010000000a03083db7001329f3000000140000130412164952010400000012360a0002341502cb0c20085c107e"
)


def _commands(gateway: GpsApp) -> httpx.AsyncClient:
    """A client of the gateway's command endpoint with dispatch's credential (the development default)."""
    token = gateway.settings.command_token.get_secret_value()
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{gateway.ports['command']}", headers={"Authorization": f"Bearer {token}"}
    )


@pytest.fixture
async def gateway(stack: Any, topic_prefix: str, request: pytest.FixtureRequest) -> AsyncIterator[GpsApp]:
    extra = getattr(request, "param", {})
    settings = GpsSettings(
        KAFKA_BOOTSTRAP=stack.kafka_bootstrap,
        DATABASE_URL=stack.database_url,
        ALARMHUB_TOPIC_PREFIX=topic_prefix,
        ALARMHUB_GPS_UNREGISTERED="accept",  # unregistered test terminals; the default rejects them
        ALARMHUB_GPS_HOST="127.0.0.1",
        ALARMHUB_JT808_PORT=0,
        ALARMHUB_GT06_PORT=0,
        ALARMHUB_H02_PORT=0,
        ALARMHUB_GPS_COMMAND_PORT=0,
        ALARMHUB_JT809_PORT=0,
        ALARMHUB_HEALTH_PORT=0,
        **extra,
    )
    registry = CollectorRegistry()
    producer = DurableProducer.from_settings(
        settings, metrics=KafkaMetrics(registry), client_id="ingest-gps-test"
    )
    app = GpsApp(settings, registry, producer=producer)
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


async def read_frame(reader: asyncio.StreamReader) -> jt808.Message:
    await reader.readuntil(b"\x7e")
    data = await asyncio.wait_for(reader.readuntil(b"\x7e"), 10)
    return jt808.decode(data[:-1])


async def test_jt808_sos_reaches_the_topics(
    gateway: GpsApp, topic_prefix: str, consume_topic: Any, stack: Any
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.ports["jt808"])
    try:
        writer.write(SOS_FRAME)  # before authentication: refused, nothing published
        refused = await read_frame(reader)
        assert refused.header.msg_id == 0x8001 and refused.body[4] == jt808.RESULT_FAILURE
        body = (
            bytes(4)
            + b"ACME\x00"
            + b"M1".ljust(20, b"\x00")
            + b"T000001"
            + b"\x02"
            + "粤B54321".encode("gbk")
        )
        writer.write(jt808.encode(0x0100, PHONE, 1, body))
        reg = await read_frame(reader)
        assert reg.header.msg_id == 0x8100 and reg.body[2] == 0
        writer.write(jt808.encode(0x0102, PHONE, 2, reg.body[3:]))
        auth = await read_frame(reader)
        assert auth.header.msg_id == 0x8001 and auth.body[4] == 0
        writer.write(SOS_FRAME)
        ack = await read_frame(reader)
        assert ack.header.msg_id == 0x8001 and ack.body == bytes.fromhex("000a020000")
    finally:
        writer.close()
    alarms = await consume_topic(topic_prefix, "alarms.raw", 1, timeout=20)
    assert alarms[0]["kind"] == "vehicle_sos" and alarms[0]["source"]["device_id"] == PHONE
    assert alarms[0]["attributes"]["alarm_bits"] == 1 and alarms[0]["source"]["protocol"] == "jt808"
    fixes = await consume_topic(topic_prefix, "telemetry.gps", 1, timeout=20)
    assert fixes[0]["device_id"] == PHONE and abs(fixes[0]["lat"] - 50.871735) < 1e-6
    statuses = await consume_topic(topic_prefix, "devices.status", 2, timeout=20)
    assert [s["status"] for s in statuses] == ["online", "offline"]
    conn = await asyncpg.connect(stack.database_url)
    try:
        row = await conn.fetchrow(
            "SELECT flagged, plate, auth_code FROM vehicles WHERE device_id = $1", PHONE
        )
    finally:
        await conn.close()
    assert row is not None and row["flagged"] and row["plate"] == "粤B54321" and row["auth_code"]


async def test_position_query_command(gateway: GpsApp) -> None:
    phone = "013900000001"
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.ports["jt808"])
    writer.write(jt808.encode(0x0100, phone, 1, bytes(37)))
    reg = await read_frame(reader)
    writer.write(jt808.encode(0x0102, phone, 2, reg.body[3:]))
    await read_frame(reader)

    async def terminal() -> None:
        query = await read_frame(reader)
        assert query.header.msg_id == 0x8201
        body = query.header.serial.to_bytes(2, "big") + jt808.encode_location_body(
            lat=22.54, lon=114.05, status_bits=0x03, local_time=datetime(2026, 11, 25, 18, 0, 0)
        )
        writer.write(jt808.encode(0x0201, phone, 3, body))
        await read_frame(reader)  # 0x8001 for the 0x0201

    task = asyncio.create_task(terminal())
    async with _commands(gateway) as client:
        r = await client.post(
            "/commands", json={"device_id": phone, "command": "query_position", "timeout_s": 10}
        )
        missing = await client.post(
            "/commands", json={"device_id": "000000000000", "command": "query_position"}
        )
    await task
    writer.close()
    assert r.status_code == 200 and r.json()["position"]["lat"] == pytest.approx(22.54)
    assert missing.status_code == 404


async def test_gt06_login_and_heartbeat_answered(
    gateway: GpsApp, topic_prefix: str, consume_topic: Any
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.ports["gt06"])
    # traccar Gt06ProtocolDecoderTest login and heartbeat captures
    writer.write(bytes.fromhex("78780D01086471700328358100093F040D0A"))
    assert await asyncio.wait_for(reader.readexactly(10), 10) == bytes.fromhex("78780501000955940d0a")
    writer.write(bytes.fromhex("78780a13c40604000201298f5b0d0a"))
    reply = gt06.decode(await asyncio.wait_for(reader.readexactly(10), 10))
    assert reply.protocol == 0x13 and reply.serial == 0x0129
    writer.close()
    statuses = await consume_topic(topic_prefix, "devices.status", 1, timeout=20)
    assert statuses[0]["device_id"] == "864717003283581" and statuses[0]["protocol"] == "gt06"


async def test_simulator_fleets(gateway: GpsApp, topic_prefix: str, consume_topic: Any) -> None:
    from alarmhub_sim import gps as sim

    ports = {k: gateway.ports[k] for k in ("jt808", "gt06", "h02")}
    stats = await sim.run("127.0.0.1", ports, rate=60, count=240, duration_s=20, vehicles=30, seed=3)
    assert stats.get("errors", 0) == 0, stats
    assert stats["sent"] >= 200 and stats["acked"] >= stats["jt808_connected"]
    assert {"jt808_connected", "gt06_connected"} <= set(stats)
    fixes = await consume_topic(topic_prefix, "telemetry.gps", 150, timeout=30)
    assert {f["protocol"] for f in fixes} == {"jt808", "gt06", "h02"}
    assert all(22.3 < f["lat"] < 22.95 and 113.7 < f["lon"] < 114.5 for f in fixes)


async def test_bad_frame_goes_to_the_dlq(gateway: GpsApp, topic_prefix: str, consume_topic: Any) -> None:
    phone = "013900000002"
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.ports["jt808"])
    writer.write(jt808.encode(0x0100, phone, 1, bytes(37)))
    reg = await read_frame(reader)
    writer.write(jt808.encode(0x0102, phone, 2, reg.body[3:]))
    await read_frame(reader)
    writer.write(b"\x7e\x02\x00\x7d\x07junk\x7e")  # too short for a header: dropped, recorded
    body = bytes.fromhex(
        "000004000000080007203b7d0202633df7013800030063241001235959"
    )  # longitude ≈ 2097°: impossible
    writer.write(jt808.encode(0x0200, phone, 3, body))
    nak = await read_frame(reader)
    writer.close()
    assert nak.header.msg_id == 0x8001 and nak.body[4] == jt808.RESULT_BAD_MESSAGE
    records = await consume_topic(topic_prefix, "alarms.dlq", 2, timeout=20)
    assert {r["protocol"] for r in records} == {"jt808"} and len(records) == 2
    assert any("too short" in r["error"] for r in records) and any(
        "out of range" in r["error"] for r in records
    )


@pytest.mark.parametrize(
    "gateway", [{"ALARMHUB_GPS_LOGIN_TIMEOUT_S": 1.0, "ALARMHUB_GPS_IDLE_TIMEOUT_S": 2.0}], indirect=True
)
async def test_hostile_and_silent_peers_do_not_hold_the_gateway(
    gateway: GpsApp, topic_prefix: str, consume_topic: Any
) -> None:
    port = gateway.ports["jt808"]
    # a peer streaming a megabyte without a delimiter, and one that connects and never speaks
    flood_r, flood_w = await asyncio.open_connection("127.0.0.1", port)
    silent_r, silent_w = await asyncio.open_connection("127.0.0.1", port)
    flood_w.write(b"\x7e" + b"\x01" * 1_000_000)
    # meanwhile a real terminal is served normally
    phone = "013900000003"
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(jt808.encode(0x0100, phone, 1, bytes(37)))
    reg = await read_frame(reader)
    writer.write(jt808.encode(0x0102, phone, 2, reg.body[3:]))
    assert (await read_frame(reader)).body[4] == 0
    # the unauthenticated peers are closed by the login timeout, the silent terminal by the idle timeout
    assert await asyncio.wait_for(silent_r.read(), 10) == b""
    assert await asyncio.wait_for(flood_r.read(), 10) == b""
    assert await asyncio.wait_for(reader.read(), 10) == b""
    for w in (flood_w, silent_w, writer):
        w.close()
    statuses = await consume_topic(topic_prefix, "devices.status", 2, timeout=20)
    assert [s["status"] for s in statuses] == ["online", "offline"]
    assert statuses[1]["attributes"]["reason"] == "idle_timeout"


# -- cut fuel/power (protocols/commands_cutoff.py; encoders' vectors in test_commands_cutoff.py) --


async def _login(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, phone: str) -> None:
    writer.write(jt808.encode(0x0100, phone, 1, bytes(37)))
    reg = await read_frame(reader)
    writer.write(jt808.encode(0x0102, phone, 2, reg.body[3:]))
    await read_frame(reader)


async def test_cutoff_through_the_gateway(gateway: GpsApp) -> None:
    phone = "013900000077"
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.ports["jt808"])
    await _login(reader, writer, phone)
    seen: list[bytes] = []

    async def terminal() -> None:
        cmd = await read_frame(reader)
        seen.append(cmd.body)
        assert cmd.header.msg_id == 0x8105
        # 0x0001 general response: the serial and id it answers, result 0
        body = cmd.header.serial.to_bytes(2, "big") + b"\x81\x05\x00"
        writer.write(jt808.encode(0x0001, phone, 3, body))

    task = asyncio.create_task(terminal())
    async with _commands(gateway) as client:
        r = await client.post(
            "/commands",
            json={"device_id": phone, "command": "cutoff", "params": {"model": "jt808"}, "timeout_s": 10},
        )
        unknown = await client.post(
            "/commands",
            json={"device_id": phone, "command": "cutoff", "params": {"model": "ACME-1"}, "timeout_s": 2},
        )
        gt06_model = await client.post(
            "/commands",
            json={"device_id": phone, "command": "cutoff", "params": {"model": "GT06"}, "timeout_s": 2},
        )
    await task
    writer.close()
    assert r.status_code == 200 and r.json()["status"] == "ok" and r.json()["command"] == "0x8105"
    assert seen == [b"\xf0"]
    assert unknown.status_code == 409 and unknown.json()["status"] == "unsupported"
    assert gt06_model.status_code == 409 and "is a gt06 terminal's" in gt06_model.json()["reason"]


async def test_8500_answered_by_0500(gateway: GpsApp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(co.MODELS, "TEST-8500", co.CutoffModel("jt808", "jt808-8500", 1, 0xF001, "test row"))
    phone = "013900000078"
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.ports["jt808"])
    await _login(reader, writer, phone)

    async def terminal() -> None:
        cmd = await read_frame(reader)
        assert cmd.header.msg_id == 0x8500 and cmd.body == b"\x02"
        body = cmd.header.serial.to_bytes(2, "big") + jt808.encode_location_body(
            lat=22.54, lon=114.05, status_bits=0x03, local_time=datetime(2026, 11, 25, 18, 0, 0)
        )
        writer.write(jt808.encode(0x0500, phone, 3, body))
        await read_frame(reader)  # the platform's 0x8001 for the 0x0500

    task = asyncio.create_task(terminal())
    async with _commands(gateway) as client:
        r = await client.post(
            "/commands",
            json={"device_id": phone, "command": "cutoff", "params": {"model": "test-8500"}, "timeout_s": 10},
        )
    await task
    writer.close()
    assert r.status_code == 200 and r.json()["command"] == "0x8500"
    assert r.json()["position"]["lat"] == pytest.approx(22.54)


# GT06 / H02 cut-off over real sockets; the terminals answer with Traccar's captured answers (the frames'
# sources: test_commands_gt06_h02.py)
GT06_LOGIN = bytes.fromhex("78780D01086471700328358100093F040D0A")  # IMEI 864717003283581
GT06_CUT_OK_TEXT = b"Cut off the fuel supply: Success!"


async def _read_gt06(reader: asyncio.StreamReader) -> gt06.Gt06Message:
    return gt06.decode(await asyncio.wait_for(reader.readuntil(b"\r\n"), 10))


async def test_gt06_cutoff_reaches_the_terminal_and_its_text_is_the_answer(gateway: GpsApp) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.ports["gt06"])
    writer.write(GT06_LOGIN)
    assert (await _read_gt06(reader)).protocol == 0x01  # login answered: the session is open

    async def terminal() -> bytes:
        cmd = await _read_gt06(reader)
        assert cmd.protocol == 0x80
        flag = cmd.content[1:5]  # echoed, as the terminal's firmware does
        text = GT06_CUT_OK_TEXT
        writer.write(gt06.encode(0x15, bytes([4 + len(text)]) + flag + text + b"\x00\x02", 0x013B))
        return cmd.content[5:]

    task = asyncio.create_task(terminal())
    async with _commands(gateway) as client:
        body = {"device_id": "864717003283581", "command": "cutoff", "params": {"model": "GT06N"}}
        r = await client.post("/commands", json={**body, "timeout_s": 10})
        assert await task == b"DYD,000000#"
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "ok" and r.json()["command"] == "0x0080"
        assert r.json()["answer"] == "Cut off the fuel supply: Success!"
        # an H02 model for a GT06 terminal: nothing is sent; a restore nobody answers times out
        wrong = await client.post("/commands", json={**body, "params": {"model": "H02"}, "timeout_s": 2})
        assert wrong.status_code == 409 and "is a h02 terminal's" in wrong.json()["reason"]
        other = await client.post("/commands", json={**body, "command": "track", "timeout_s": 2})
        assert other.status_code == 409 and other.json()["status"] == "unsupported"
        silent = await client.post("/commands", json={**body, "command": "restore", "timeout_s": 0.5})
        assert silent.status_code == 504 and silent.json()["status"] == "timeout"
    assert (await _read_gt06(reader)).content[5:] == b"HFYD,000000#"  # the restore did reach it

    async def where() -> bytes:  # position now: WHERE#, answered with the fix as text (Concox manual)
        cmd = await _read_gt06(reader)
        text = b"Lat:N22.571285,Lon:E113.877115,Course:42.20,Speed:0.0740,DateTime:10-11-23 22:28:51"
        writer.write(gt06.encode(0x15, bytes([4 + len(text)]) + cmd.content[1:5] + text + b"\x00\x02", 7))
        return cmd.content[5:]

    task = asyncio.create_task(where())
    async with _commands(gateway) as client:
        located = await client.post(
            "/commands", json={"device_id": "864717003283581", "command": "query_position", "timeout_s": 10}
        )
    assert await task == b"WHERE#"
    assert located.status_code == 200 and located.json()["position"]["lat"] == pytest.approx(22.571285)
    writer.close()


async def test_h02_cutoff_reaches_the_terminal_and_its_v4_is_the_answer(gateway: GpsApp) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.ports["h02"])
    writer.write(b"*HQ,2020916013,V1,050316,A,2212.8745,N,11346.6574,E,0.00,028,220902,FFFFFBFF#")
    for _ in range(100):  # H02 is not answered: the session is known once the gateway holds it
        if "2020916013" in gateway.servers["h02"].devices:
            break
        await asyncio.sleep(0.05)

    async def terminal(word: str) -> bytes:
        cmd = await asyncio.wait_for(reader.readuntil(b"#"), 10)
        stamp = cmd.split(b",")[3].decode()
        writer.write(
            f"*HQ,2020916013,V4,S20,{word},{stamp},050316,A,2212.8745,N,11346.6574,E,0.00,028,220902,"
            "F7FFFBFF#".encode()
        )
        return cmd

    body = {"device_id": "2020916013", "params": {"model": "H02"}, "timeout_s": 10}
    async with _commands(gateway) as client:
        task = asyncio.create_task(terminal("DONE"))
        r = await client.post("/commands", json={**body, "command": "cutoff"})
        cmd = await task
        assert cmd.startswith(b"*HQ,2020916013,S20,") and cmd.endswith(b",1,1#")
        assert r.status_code == 200 and r.json()["status"] == "ok" and r.json()["command"] == "S20"
        assert r.json()["answer"] == "DONE" and r.json()["position"]["lat"] == pytest.approx(
            22.2146, abs=1e-3
        )
        task = asyncio.create_task(terminal("ERROR"))
        refused = await client.post("/commands", json={**body, "command": "restore"})
        assert (await task).endswith(b",1,0#")
        assert refused.status_code == 200 and refused.json()["status"] == "failed"
        assert refused.json()["answer"] == "ERROR"
    writer.close()
