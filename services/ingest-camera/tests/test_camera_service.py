"""The camera service end to end on the real broker, Redis and PostgreSQL: pushes in, events on prefixed topics."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from alarmhub_ingest_camera.app import CameraApp
from alarmhub_ingest_camera.config import CameraSettings
from alarmhub_ingest_camera.protocols import gb28181
from alarmhub_ingest_camera.protocols.gb28181 import digest_response
from alarmhub_ingest_camera.protocols.webhook import sign
from alarmhub_kafka import DurableProducer, KafkaMetrics
from prometheus_client import CollectorRegistry

from .test_gb28181 import ALARM_GBK, KEEPALIVE, REGISTER_1, REGISTER_2, _message
from .test_isapi import LIVE_BLOCK, SPEC_VMD
from .test_onvif import NOTIFY_CELL_MOTION

SECRET = "webhook-test-secret"
SIP_PASSWORD = "123456"
ISAPI_CAMERA = "44030500001320000101"


async def _seed(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("""
            INSERT INTO units (id, name, tier, parent_id) VALUES
                ('T-city', 'City', 1, NULL), ('T-d1', 'District 1', 2, 'T-city'),
                ('T-s1', 'Station 1', 3, 'T-d1'), ('T-g1', 'Site 1', 4, 'T-s1')
            ON CONFLICT DO NOTHING""")
        await conn.execute(
            """
            INSERT INTO cameras (id, name, lat, lon, mac, ip, channel, unit, network, category, online) VALUES
                ($1, 'Live block camera', 22.5431, 114.0579, 'd4:e8:53:87:c0:5c', '192.168.0.7', 1, 'T-s1',
                 'police_video', 'main_road', false),
                ('34020000001320000001', 'GB camera', 22.60, 114.10, NULL, NULL, NULL, 'T-g1', 'social_video',
                 'market', false),
                ('64010000001340000001', 'GB alarm input', 22.61, 114.11, NULL, NULL, NULL, 'T-g1', 'social_video',
                 'market', false)
            ON CONFLICT DO NOTHING""",
            ISAPI_CAMERA,
        )
    finally:
        await conn.close()


@pytest.fixture
async def camera(stack: Any, topic_prefix: str) -> AsyncIterator[CameraApp]:
    await _seed(stack.database_url)
    settings = CameraSettings(
        KAFKA_BOOTSTRAP=stack.kafka_bootstrap,
        DATABASE_URL=stack.database_url,
        REDIS_URL=stack.redis_url,
        ALARMHUB_TOPIC_PREFIX=topic_prefix,
        ALARMHUB_CAMERA_HOST="127.0.0.1",
        ALARMHUB_CAMERA_HTTP_PORT=0,
        ALARMHUB_SIP_HOST="127.0.0.1",
        ALARMHUB_SIP_PORT=0,
        ALARMHUB_HEALTH_PORT=0,
        ALARMHUB_SIP_PASSWORD=SIP_PASSWORD,
        ALARMHUB_WEBHOOK_SECRET=SECRET,
        ALARMHUB_ONVIF_MODE="off",
        ALARMHUB_CAMERA_MAX_BODY_BYTES=64 * 1024,
        # these tests are about decoding, DLQ and floods from unregistered senders; who may push is
        # tested in test_attack_camera_intake.py with the production default
        ALARMHUB_CAMERA_INTAKE_AUTH="open",
    )
    registry = CollectorRegistry()
    producer = DurableProducer.from_settings(
        settings, metrics=KafkaMetrics(registry), client_id="ingest-camera-test"
    )
    app = CameraApp(settings, registry, producer=producer)
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


async def test_isapi_multipart_push_reaches_alarms_raw(
    camera: CameraApp, topic_prefix: str, consume_topic: Any
) -> None:
    jpeg = b"\xff\xd8\xff\xe0" + b"\x00" * 2048 + b"\xff\xd9"
    body = (
        LIVE_BLOCK + b'\r\n--boundary\r\nContent-Disposition: form-data; name="VMD.jpg"; filename="VMD.jpg"'
        b"\r\nContent-Type: image/jpeg\r\n\r\n" + jpeg + b"\r\n--boundary--\r\n"
    )
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{camera.http_port}") as client:
        r = await client.post(
            "/events/isapi", content=body, headers={"Content-Type": "multipart/form-data; boundary=boundary"}
        )
        again = await client.post(
            "/events/isapi", content=body, headers={"Content-Type": "multipart/form-data; boundary=boundary"}
        )
    assert r.status_code == 200 and r.json()["published"] == 1
    assert again.status_code == 200 and again.json()["published"] == 0  # coalesced repeat of the active state
    (ev,) = await consume_topic(topic_prefix, "alarms.raw", 1, timeout=20)
    assert ev["kind"] == "motion" and ev["qualifier"] == "new" and ev["source"]["protocol"] == "isapi"
    assert ev["source"]["device_id"] == ISAPI_CAMERA and ev["zone"] == "1"
    assert ev["location"] == {"lat": 22.5431, "lon": 114.0579, "crs": "WGS84", "source": "registry"}
    assert ev["occurred_at"] == "2026-07-16T05:48:26Z"
    (img,) = ev["attributes"]["images"]
    assert img["size"] == len(jpeg) and img["content_type"] == "image/jpeg"
    assert len(json.dumps(ev)) < 4096 + 2048  # the snapshot bytes are not on Kafka
    assert ev["attributes"]["camera"]["network"] == "police_video"


async def test_isapi_malformed_and_oversize_get_4xx_and_dlq(
    camera: CameraApp, topic_prefix: str, consume_topic: Any
) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{camera.http_port}") as client:
        bad = await client.post(
            "/events/isapi", content=SPEC_VMD[:200], headers={"Content-Type": "application/xml"}
        )
        big = await client.post(
            "/events/isapi", content=b"<" + b"x" * (70 * 1024), headers={"Content-Type": "application/xml"}
        )
        bomb = await client.post("/events/onvif", content=b'<!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>')
    assert bad.status_code == 400 and "malformed XML" in bad.json()["error"]
    assert big.status_code == 413 and bomb.status_code == 400
    dlq = await consume_topic(topic_prefix, "alarms.dlq", 3, timeout=20)
    assert sorted(d["protocol"] for d in dlq) == ["isapi", "isapi", "onvif"]
    assert any("malformed XML" in d["error"] for d in dlq) and any("exceeds" in d["error"] for d in dlq)


async def test_webhook_hmac_and_idempotency(camera: CameraApp, topic_prefix: str, consume_topic: Any) -> None:
    body = json.dumps(
        {
            "camera_id": ISAPI_CAMERA,
            "event": "line_crossing",
            "rule": "gate-1",
            "occurred_at": "2026-11-25T16:00:00+08:00",
        }
    ).encode()
    ts = int(time.time())
    key = f"{topic_prefix}evt-1"
    headers = {
        "Content-Type": "application/json",
        "X-Alarmhub-Timestamp": str(ts),
        "X-Alarmhub-Signature": sign(SECRET.encode(), ts, body, key),
        "Idempotency-Key": key,
    }
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{camera.http_port}") as client:
        ok = await client.post("/events/webhook", content=body, headers=headers)
        dup = await client.post("/events/webhook", content=body, headers=headers)
        forged = await client.post(
            "/events/webhook", content=body, headers={**headers, "X-Alarmhub-Signature": "sha256=" + "0" * 64}
        )
        bad = await client.post(
            "/events/webhook",
            content=b'{"camera_id": "x"}',
            headers={
                **headers,
                "X-Alarmhub-Signature": sign(SECRET.encode(), ts, b'{"camera_id": "x"}', key + "-2"),
                "Idempotency-Key": key + "-2",
            },
        )
    assert ok.status_code == 200 and ok.json()["published"] == 1
    assert dup.status_code == 200 and dup.json()["status"] == "duplicate"
    assert forged.status_code == 401 and bad.status_code == 400
    (ev,) = await consume_topic(topic_prefix, "alarms.raw", 1, timeout=20)
    assert ev["kind"] == "line_crossing" and ev["source"]["protocol"] == "webhook"
    assert ev["location"]["source"] == "registry" and ev["occurred_at"] == "2026-11-25T08:00:00Z"


class _UdpClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.replies.put_nowait(data)


async def test_gb28181_digest_register_and_gbk_alarm_over_udp(
    camera: CameraApp, topic_prefix: str, consume_topic: Any
) -> None:
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_datagram_endpoint(
        _UdpClient, remote_addr=("127.0.0.1", camera.sip_port)
    )
    try:

        async def exchange(data: bytes) -> Any:
            transport.sendto(data)
            return gb28181.decode(await asyncio.wait_for(client.replies.get(), 10))

        # before registering, an alarm gets nowhere
        assert (await exchange(_message(ALARM_GBK, cseq=1, branch="z9hG4bKearly"))).status == 403
        challenge = await exchange(REGISTER_1)
        assert challenge.status == 401
        www = gb28181.decode_auth_params(challenge.header("WWW-Authenticate") or "")
        uri = "sip:34020000002000000001@3402000000:5060"
        response = digest_response(
            username="34020000001320000001",
            realm=www["realm"],
            password=SIP_PASSWORD,
            method="REGISTER",
            uri=uri,
            nonce=www["nonce"],
        )
        answer = REGISTER_2.replace(b"c98f6d56cb2ab8e6", www["nonce"].encode()).replace(
            b"79d8846430436131196c50746cd97fa5", response.encode()
        )
        ok = await exchange(answer)
        assert ok.status == 200 and ok.header("Expires") == "3600"
        assert (await exchange(KEEPALIVE)).status == 200
        alarm = await exchange(_message(ALARM_GBK, cseq=30, branch="z9hG4bKalarm"))
        assert alarm.status == 200
        # then, the alarm being on Kafka, the server tells the device it was taken (A.2.6)
        answer = gb28181.decode(await asyncio.wait_for(client.replies.get(), 10))
        assert answer.method == "MESSAGE" and answer.status is None
        assert answer.header("To") == "<sip:34020000001320000001@3402000000>"
        assert b"<CmdType>Alarm</CmdType>" in answer.body and b"<Result>OK</Result>" in answer.body
        assert b"<DeviceID>64010000001340000001</DeviceID>" in answer.body and b"<Response>" in answer.body
        assert (
            await exchange(_message(ALARM_GBK, cseq=30, branch="z9hG4bKalarm"))
        ).status == 200  # retransmission
    finally:
        transport.close()
    (ev,) = await consume_topic(topic_prefix, "alarms.raw", 1, timeout=20)
    assert ev["source"]["protocol"] == "gb28181" and ev["source"]["device_id"] == "64010000001340000001"
    assert ev["attributes"]["description"] == "警情描述" and ev["attributes"]["priority"] == "4"
    assert ev["location"] == {"lat": 34.2, "lon": 171.3, "crs": "WGS84", "source": "device"}
    assert ev["occurred_at"] == "2009-12-04T08:23:32Z"
    statuses = await consume_topic(topic_prefix, "devices.status", 1, timeout=20)
    assert statuses[0]["device_id"] == "34020000001320000001" and statuses[0]["status"] == "online"
    conn = await asyncpg.connect(camera.settings.database_url)
    try:
        assert await conn.fetchval("SELECT online FROM cameras WHERE id = '34020000001320000001'")
    finally:
        await conn.close()


async def test_gb28181_over_tcp_split_writes(camera: CameraApp) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", camera.sip_port)
    try:
        for i in range(0, len(REGISTER_1), 7):
            writer.write(REGISTER_1[i : i + 7])
            await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"SIP/2.0 401 Unauthorized")
    finally:
        writer.close()


async def test_registry_csv_import_and_district_counts(camera: CameraApp) -> None:
    from alarmhub_ingest_camera.registry import CsvError, parse_cameras_csv

    rows = parse_cameras_csv(
        "id,name,lat,lon,unit,network,category\n"
        "44030500001320009001,Gate A,22.5,114.0,T-s1,police_video,city_checkpoint\n"
        "44030500001320009002,Market B,22.6,114.1,T-g1,social_video,market\n"
    )
    assert await camera.registry.import_rows(rows) == 2
    with pytest.raises(CsvError, match="line 2"):
        parse_cameras_csv("id,name,network\nx,y,cable_tv\n")
    counts = {c["district"]: c for c in await camera.registry.district_counts()}
    d1 = counts["T-d1"]
    assert d1["total"] >= 5 and d1["police_video"] >= 2 and d1["by_category"]["city_checkpoint"] >= 1


async def test_flood_keeps_the_first_and_limits_the_rest(
    camera: CameraApp, topic_prefix: str, consume_topic: Any
) -> None:
    flips = [
        SPEC_VMD.replace(b"<eventState>active</eventState>", b"<eventState>inactive</eventState>"),
        SPEC_VMD,
    ]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{camera.http_port}") as client:
        published = 0
        for i in range(40):  # a flapping detector: active, inactive, active …
            r = await client.post(
                "/events/isapi", content=flips[(i + 1) % 2], headers={"Content-Type": "application/xml"}
            )
            assert r.status_code == 200
            published += r.json()["published"]
    assert published == camera.settings.flood_burst  # the first 10 changes, then suppressed
    events = await consume_topic(topic_prefix, "alarms.raw", 40, timeout=5)
    assert len(events) == published and events[0]["qualifier"] == "new"


async def test_garbage_sip_is_dead_lettered_and_the_server_keeps_answering(
    camera: CameraApp, topic_prefix: str, consume_topic: Any
) -> None:
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_datagram_endpoint(
        _UdpClient, remote_addr=("127.0.0.1", camera.sip_port)
    )
    try:
        transport.sendto(b"\x16\x03\x01\x00\xa5garbage that is not SIP\r\n\r\n")
        transport.sendto(REGISTER_1)
        reply = gb28181.decode(await asyncio.wait_for(client.replies.get(), 10))
        assert reply.status == 401
    finally:
        transport.close()
    (dlq,) = await consume_topic(topic_prefix, "alarms.dlq", 1, timeout=20)
    assert dlq["protocol"] == "gb28181" and dlq["stage"] == "decode"


async def test_a_nul_in_an_onvif_camera_id_is_escaped_not_refused(
    camera: CameraApp, topic_prefix: str, consume_topic: Any
) -> None:
    """Poison pill (issue #13): ``camera=`` with a NUL went into the registry lookup and onto alarms.raw, where
    dispatch's PostgreSQL refused it. Now the id is escaped and the alarm still goes out."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{camera.http_port}") as client:
        r = await client.post("/events/onvif?camera=cam%001", content=NOTIFY_CELL_MOTION)
    assert r.status_code == 200
    (ev,) = await consume_topic(topic_prefix, "alarms.raw", 1, timeout=20)
    assert ev["source"]["device_id"] == "cam\\x001" and ev["kind"] == "motion"
    assert camera.registry.ready()  # the lookup did not fail
