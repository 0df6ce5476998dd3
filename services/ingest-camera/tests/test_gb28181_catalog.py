"""GB/T 28181 Catalog (§9.5.1): the query the platform sends, the device's Response pages, and the internal
endpoint dispatch calls — sans-IO on real bodies (tests/data/SOURCES.md), then over real UDP sockets
against the running service with a device that answers as the captured one did."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from alarmhub_ingest_camera.app import CameraApp
from alarmhub_ingest_camera.config import CameraSettings
from alarmhub_ingest_camera.protocols import gb28181
from alarmhub_kafka import DurableProducer, KafkaMetrics
from prometheus_client import CollectorRegistry

from .test_camera_service import SIP_PASSWORD, _seed
from .test_sip_conformance import SCENARIOS, _run

DATA = Path(__file__).parent / "data"
HIK = (DATA / "gb28181_catalog_hikvision_ipc.xml").read_bytes()
NAMES = (DATA / "gb28181_catalog_gb2312_names.xml").read_bytes()
TOKEN = "catalog-test-token-0123456789"
SERVER, REALM = "34020000002000000001", "3402000000"


def _page(body: bytes, sn: str) -> gb28181.CatalogPage:
    return gb28181.decode_catalog(
        gb28181.decode_manscdp(re.sub(rb"<SN>\d+</SN>", f"<SN>{sn}</SN>".encode(), body))
    )


def test_captured_hikvision_catalog_response() -> None:
    page = _page(HIK, "10021")
    assert page.sn == "10021" and page.device_id == "34020000001320000002" and page.sum_num == 2
    video, alarm_in = page.items
    assert video["device_id"] == "34020000001310000001" and video["kind"] == "camera"
    assert (
        video["name"] == "hikangname"
        and video["manufacturer"] == "Hikvision"
        and video["model"] == "IP Camera"
    )
    assert video["online"] is True and video["parental"] is False and video["parent_id"] == SERVER
    assert video["lat"] is None and video["civil_code"] == "3402000000" and video["register_way"] == "1"
    assert alarm_in["kind"] == "alarm_input" and alarm_in["name"] is None and alarm_in["model"] == "AlarmIn"


def test_gb2312_names_positions_and_no_password() -> None:
    body = NAMES.replace(
        b"<Port>5060</Port>\n</Item>",
        b"<Port>5060</Port>\n<Password>12345678</Password>\n<Longitude>114.0579</Longitude>\n"
        b"<Latitude>22.5431</Latitude>\n<Info>\n<PTZType>1</PTZType>\n</Info>\n</Item>",
        1,
    )
    page = _page(body, "7")
    gate, garage = page.items
    assert (
        gate["name"] == "大门口摄像机" and gate["owner"] == "消防科" and gate["address"] == "1号办公楼大门口"
    )
    assert (gate["lat"], gate["lon"], gate["ptz_type"], gate["port"]) == (22.5431, 114.0579, "1", 5060)
    assert "12345678" not in str(page.items) and "password" not in gate
    assert garage["name"] == "车库摄像机" and garage["online"] is False and garage["kind"] == "ipc"


def test_query_body_and_request() -> None:
    body = gb28181.encode_catalog_query_body("34020000001320000002", 10021)
    q = gb28181.decode_manscdp(body)
    assert (q.root, q.cmd_type, q.sn, q.device_id) == ("Query", "Catalog", "10021", "34020000001320000002")
    assert body.startswith(b'<?xml version="1.0" encoding="GB2312"?>')
    raw = gb28181.encode_manscdp_request(
        server_id=SERVER, realm=REALM, device_id="34020000001320000002", body=body, peer=("10.0.0.5", 5060),
        local=("10.0.0.1", 5060), transport="UDP", call_id="c1", branch="b1", from_tag="t1",
    )  # fmt: skip
    msg = gb28181.decode(raw)
    assert msg.method == "MESSAGE" and msg.uri == "sip:34020000001320000002@10.0.0.5:5060"
    assert msg.header("Content-Type") == "Application/MANSCDP+xml" and msg.body == body
    assert msg.branch == "z9hG4bKb1" and msg.from_user == SERVER


def test_registrar_answers_a_catalog_page_only_from_the_registered_device() -> None:
    reg = gb28181.Gb28181Registrar(
        server_id=SERVER, realm=REALM, default_password="pw", nonce_source=lambda now: "n0nce"
    )
    now = datetime(2026, 12, 7, tzinfo=UTC)
    device, peer = "34020000001320000002", ("127.0.0.1", 5)
    page = gb28181.decode(_message(HIK, device, 5))
    refused = reg.handle(page, peer, now)
    assert refused.reply is not None and refused.reply.startswith(b"SIP/2.0 403")
    uri = f"sip:{SERVER}@{REALM}"
    reg.handle(gb28181.decode(_register(device, 1)), peer, now)  # the challenge issues the nonce
    digest = gb28181.digest_response(
        username=device, realm=REALM, password="pw", method="REGISTER", uri=uri, nonce="n0nce"
    )
    auth = f'Authorization: Digest username="{device}", realm="{REALM}", nonce="n0nce", uri="{uri}", response="{digest}"\r\n'
    assert reg.handle(gb28181.decode(_register(device, 2, auth)), peer, now).reply.startswith(b"SIP/2.0 200")  # type: ignore[union-attr]
    ok = reg.handle(page, peer, now)
    assert ok.reply is not None and ok.reply.startswith(b"SIP/2.0 200 OK")
    assert [e.type for e in ok.events] == [gb28181.SipEventType.CATALOG] and not ok.needs_publish
    assert reg.source(device, now) == peer
    assert reg.handle(page, ("127.0.0.2", 5), now).reply.startswith(b"SIP/2.0 403")  # type: ignore[union-attr]


def _register(device: str, cseq: int, auth: str = "") -> bytes:
    return (
        f"REGISTER sip:{SERVER}@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;rport;branch=z9hG4bKr{cseq}\r\n"
        f"From: <sip:{device}@{REALM}>;tag=r1\r\nTo: <sip:{device}@{REALM}>\r\n"
        f"Call-ID: reg-{device}\r\nCSeq: {cseq} REGISTER\r\n"
        f"Contact: <sip:{device}@127.0.0.1:5060>\r\n{auth}Max-Forwards: 70\r\n"
        f"User-Agent: IP Camera\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n"
    ).encode()


# ---------------------------------------------------------------- over real sockets


def _message(body: bytes, device: str, cseq: int, call_id: str = "") -> bytes:
    head = (
        f"MESSAGE sip:{SERVER}@{REALM} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5060;rport;branch=z9hG4bKcat{cseq}\r\n"
        f"From: <sip:{device}@{REALM}>;tag=dev{cseq}\r\nTo: <sip:{SERVER}@{REALM}>\r\n"
        f"Call-ID: {call_id or f'cat{cseq}'}\r\nCSeq: {cseq} MESSAGE\r\nContent-Type: Application/MANSCDP+xml\r\n"
        f"Max-Forwards: 70\r\nUser-Agent: IP Camera\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Device(asyncio.DatagramProtocol):
    """A GB/T 28181 device on a real UDP socket: registers with digest, answers the platform's requests
    with ``on_query`` (which sends what the device sends), and records every datagram it got."""

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id
        self.transport: asyncio.DatagramTransport | None = None
        self.got: asyncio.Queue[gb28181.SipMessage] = asyncio.Queue()
        self.queries: list[gb28181.SipMessage] = []
        self.on_query: Callable[[Device, gb28181.SipMessage], None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        msg = gb28181.decode(data)
        if msg.method == "MESSAGE" and b"<Query>" in msg.body:
            self.queries.append(msg)
            if self.on_query is not None:
                self.on_query(self, msg)
            return
        self.got.put_nowait(msg)

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.sendto(data)

    async def exchange(self, data: bytes) -> gb28181.SipMessage:
        self.send(data)
        return await asyncio.wait_for(self.got.get(), 10)

    async def register(self) -> None:
        challenge = await self.exchange(_register(self.device_id, 1))
        www = gb28181.decode_auth_params(challenge.header("WWW-Authenticate") or "")
        uri = f"sip:{SERVER}@{REALM}"
        response = gb28181.digest_response(
            username=self.device_id, realm=REALM, password=SIP_PASSWORD, method="REGISTER", uri=uri,
            nonce=www["nonce"],
        )  # fmt: skip
        auth = (
            f'Authorization: Digest username="{self.device_id}", realm="{REALM}", nonce="{www["nonce"]}", '
            f'uri="{uri}", response="{response}", algorithm=MD5\r\n'
        )
        assert (await self.exchange(_register(self.device_id, 2, auth))).status == 200


def answer_with(*pages: bytes, repeat_first: bool = False) -> Callable[[Device, gb28181.SipMessage], None]:
    """The device's side: 200 OK to the query (once), then the Response pages with the query's SN."""

    def on_query(dev: Device, query: gb28181.SipMessage) -> None:
        dev.send(gb28181.reply(query, 200, "OK", to_tag="dev"))
        if len(dev.queries) > 1:
            return  # a retransmission: the pages are on their way already
        sn = gb28181.decode_manscdp(query.body).sn or ""
        sent = [*pages[:1], *pages] if repeat_first else list(pages)
        for i, body in enumerate(sent):
            body = re.sub(rb"<SN>\d+</SN>", f"<SN>{sn}</SN>".encode(), body)
            # a repeated page is a UDP retransmission (same Call-ID/CSeq/branch), the others new requests
            n = i - 1 if repeat_first and i else i
            dev.send(_message(body, dev.device_id, 100 + n, call_id=f"cat{sn}-{n}"))

    return on_query


@pytest.fixture
async def catalog_camera(stack: Any, topic_prefix: str) -> AsyncIterator[CameraApp]:
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
        ALARMHUB_CAMERA_COMMAND_PORT=0,
        ALARMHUB_CAMERA_COMMAND_TOKEN=TOKEN,
        ALARMHUB_SIP_PASSWORD=SIP_PASSWORD,
        ALARMHUB_ONVIF_MODE="off",
    )
    registry = CollectorRegistry()
    producer = DurableProducer.from_settings(
        settings, metrics=KafkaMetrics(registry), client_id="catalog-test"
    )
    app = CameraApp(settings, registry, producer=producer)
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


async def _device(app: CameraApp, device_id: str) -> tuple[asyncio.DatagramTransport, Device]:
    transport, dev = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: Device(device_id), remote_addr=("127.0.0.1", app.sip_port)
    )
    await dev.register()
    return transport, dev


async def _ask(app: CameraApp, device_id: str, timeout_s: float = 5.0, token: str = TOKEN) -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.command_port}", timeout=30) as client:
        return await client.post(
            "/gb28181/catalog",
            json={"device_id": device_id, "timeout_s": timeout_s},
            headers={"Authorization": f"Bearer {token}"},
        )


async def test_catalog_query_over_udp_with_the_captured_answer(catalog_camera: CameraApp) -> None:
    transport, dev = await _device(catalog_camera, "34020000001320000002")
    try:
        dev.on_query = answer_with(HIK)
        r = await _ask(catalog_camera, dev.device_id)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "complete" and body["sum_num"] == 2 and body["pages"] == 1, body
        assert [c["device_id"] for c in body["channels"]] == ["34020000001310000001", "34020000001340000001"]
        assert body["sip_status"] == 200
        query = dev.queries[0]
        q = gb28181.decode_manscdp(query.body)
        assert (q.root, q.cmd_type, q.device_id) == ("Query", "Catalog", dev.device_id)
        assert query.uri == f"sip:{dev.device_id}@127.0.0.1:{transport.get_extra_info('sockname')[1]}"
        answer = await asyncio.wait_for(dev.got.get(), 10)  # the page was answered 200 OK
        assert answer.status == 200 and answer.cseq == (100, "MESSAGE")
        assert catalog_camera.catalog.last(dev.device_id) is not None
    finally:
        transport.close()


async def test_catalog_split_over_pages_gb2312_names_and_a_repeated_page(catalog_camera: CameraApp) -> None:
    transport, dev = await _device(catalog_camera, "34020000001320000001")
    try:
        first, second = (
            NAMES.replace(b'<DeviceList Num="2">', b'<DeviceList Num="1">').split(b"<Item>")[i]
            for i in (1, 2)
        )
        head = NAMES.split(b"<Item>")[0].replace(b'<DeviceList Num="2">', b'<DeviceList Num="1">')
        tail = b"</DeviceList>\n</Response>\n"
        page1 = head + b"<Item>" + first.split(b"</Item>")[0] + b"</Item>\n" + tail
        page2 = head + b"<Item>" + second.split(b"</Item>")[0] + b"</Item>\n" + tail
        dev.on_query = answer_with(page1, page2, repeat_first=True)
        body = (await _ask(catalog_camera, dev.device_id)).json()
        assert body["status"] == "complete" and body["pages"] == 2 and len(body["channels"]) == 2, (
            body
        )  # the repeat: no page
        assert [c["name"] for c in body["channels"]] == ["大门口摄像机", "车库摄像机"]
        # a device that announces 3 but sends 2: partial at the timeout, the last complete list beside it
        dev.queries.clear()
        dev.on_query = answer_with(*(p.replace(b"<SumNum>2", b"<SumNum>3") for p in (page1, page2)))
        body = (await _ask(catalog_camera, dev.device_id, timeout_s=1.0)).json()
        assert body["status"] == "partial" and body["sum_num"] == 3 and len(body["channels"]) == 2
        assert len(body["last_complete"]["channels"]) == 2
    finally:
        transport.close()


async def test_silent_device_unregistered_device_and_bad_tokens(catalog_camera: CameraApp) -> None:
    transport, dev = await _device(catalog_camera, "34020000001320000009")
    try:
        body = (await _ask(catalog_camera, dev.device_id, timeout_s=2.0)).json()
        # nothing came back: retransmitted on timer E (0 s, 0.5 s, 1.5 s) and given up at the timeout
        assert body["status"] == "no_answer" and body["channels"] == [] and body["last_complete"] is None
        assert len(dev.queries) >= 2 and len({q.call_id for q in dev.queries}) == 1
    finally:
        transport.close()
    assert (await _ask(catalog_camera, "34020000001320000777")).json()["status"] == "not_registered"
    assert (await _ask(catalog_camera, dev.device_id, token="wrong-token-0123456789")).status_code == 401
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{catalog_camera.command_port}") as client:
        r = await client.post("/gb28181/catalog", json={"device_id": dev.device_id})
        assert r.status_code == 401
        assert (await client.post("/gb28181/catalog", json={"device_id": "x"})).status_code in (401, 422)


async def test_catalog_query_over_the_devices_tcp_connection(catalog_camera: CameraApp) -> None:
    """A device registered over TCP gets the query on its own connection (it has no UDP address)."""
    device = "34020000001320000002"
    reader, writer = await asyncio.open_connection("127.0.0.1", catalog_camera.sip_port)
    framer = gb28181.Framer()
    pending: list[bytes] = []

    async def next_msg() -> gb28181.SipMessage:
        for _ in range(100):
            if pending:
                return gb28181.decode(pending.pop(0))
            pending.extend(framer.feed(await asyncio.wait_for(reader.read(65536), 10)))
        raise AssertionError("no SIP message on the connection")

    try:
        writer.write(_register(device, 1).replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP"))
        www = gb28181.decode_auth_params((await next_msg()).header("WWW-Authenticate") or "")
        uri = f"sip:{SERVER}@{REALM}"
        digest = gb28181.digest_response(
            username=device,
            realm=REALM,
            password=SIP_PASSWORD,
            method="REGISTER",
            uri=uri,
            nonce=www["nonce"],
        )
        auth = f'Authorization: Digest username="{device}", realm="{REALM}", nonce="{www["nonce"]}", uri="{uri}", response="{digest}"\r\n'
        writer.write(_register(device, 2, auth).replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP"))
        assert (await next_msg()).status == 200
        ask = asyncio.create_task(_ask(catalog_camera, device))
        query = await next_msg()
        assert query.method == "MESSAGE" and "SIP/2.0/TCP" in (query.header("Via") or "")
        writer.write(gb28181.reply(query, 200, "OK", to_tag="dev"))
        sn = gb28181.decode_manscdp(query.body).sn or ""
        writer.write(_message(re.sub(rb"<SN>\d+</SN>", f"<SN>{sn}</SN>".encode(), HIK), device, 7))
        body = (await ask).json()
        assert body["status"] == "complete" and len(body["channels"]) == 2, body
        assert (await next_msg()).status == 200
    finally:
        writer.close()


# ---------------------------------------------------------------- SIPp as the device


SIPP = shutil.which("sipp")


def _sipp(app: CameraApp, scenario: str, device: str, port: int) -> list[str]:
    return [
        SIPP or "sipp", f"127.0.0.1:{app.sip_port}", "-sf", str(SCENARIOS / scenario), "-m", "1", "-t", "u1",
        "-i", "127.0.0.1", "-p", str(port), "-nostdin", "-timeout", "20s", "-timeout_error", "-trace_err",
        "-key", "device", device, "-key", "device_prefix", device[:10], "-key", "server", SERVER,
        "-key", "realm", REALM, "-au", device, "-ap", SIP_PASSWORD,
    ]  # fmt: skip


@pytest.mark.skipif(SIPP is None, reason="sipp not installed (Debian package sip-tester)")
async def test_sipp_device_answers_the_catalog_query(catalog_camera: CameraApp, tmp_path: Path) -> None:
    """SIPp registers as the device, then (a second SIPp, UAS, on the same port) answers our Catalog query
    with 200 OK and the list in two Response MESSAGEs with GB2312 names; each page must get 200."""
    device = "44030500001320000301"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rc, out = await _run(_sipp(catalog_camera, "register.xml", device, port), tmp_path)
    assert rc == 0, out[-3000:]
    uas = asyncio.create_task(_run(_sipp(catalog_camera, "catalog_uas.xml", device, port), tmp_path))
    try:
        body = (await _ask(catalog_camera, device, timeout_s=15.0)).json()
    finally:
        rc, out = await uas
    assert rc == 0, out[-3000:]
    assert body["status"] == "complete" and body["sum_num"] == 2 and body["pages"] == 2, body
    cam, alarm_in = body["channels"]
    assert (
        cam["device_id"] == "44030500001310000001"
        and cam["name"] == "大门口摄像机"
        and cam["kind"] == "camera"
    )
    assert (cam["lat"], cam["lon"], cam["online"]) == (22.5431, 114.0579, True)
    assert (
        alarm_in["name"] == "报警输入1" and alarm_in["kind"] == "alarm_input" and alarm_in["online"] is False
    )


async def test_command_bodies_are_bounded(catalog_camera: CameraApp) -> None:
    """The command port reads at most 4 KiB of an authorised body (413 beyond, declared or streamed) and
    answers a bad one 422 with its reasons, not its input; without the token nothing is read (401)."""
    from alarmhub_ingest_camera.commands import MAX_COMMAND_BODY

    auth = {"Authorization": f"Bearer {TOKEN}"}
    big = b'{"device_id": "' + b"3" * (4 * MAX_COMMAND_BODY) + b'"}'

    async def streamed() -> AsyncIterator[bytes]:  # chunked: no length declared, the bound is counted
        for k in range(0, len(big), 1024):
            yield big[k : k + 1024]

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{catalog_camera.command_port}", timeout=30) as c:
        r = await c.post("/gb28181/catalog", content=big, headers=auth)
        assert r.status_code == 413 and "4096" in r.json()["detail"]
        r = await c.post("/gb28181/catalog", content=streamed(), headers=auth)
        assert r.status_code == 413
        assert (await c.post("/gb28181/catalog", content=big)).status_code == 401  # the token first
        r = await c.post("/gb28181/catalog", json={"device_id": "secret-x", "timeout_s": 0}, headers=auth)
        assert r.status_code == 422
        fields = sorted(e["loc"][-1] for e in r.json()["detail"])
        assert fields == ["device_id", "timeout_s"] and "secret-x" not in r.text
        r = await c.post("/gb28181/catalog", content=b"{not json", headers=auth)
        assert r.status_code == 422
        r = await c.post("/gb28181/catalog", json={"device_id": "34020000001320000777"}, headers=auth)
        assert r.status_code == 200 and r.json()["status"] == "not_registered"
