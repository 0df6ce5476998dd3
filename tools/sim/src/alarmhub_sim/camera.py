"""Cameras for the simulator: Hikvision ISAPI pushes, ONVIF Notify pushes and GB/T 28181 devices.

Each camera speaks its protocol as a real unit does:

- an ISAPI camera POSTs ``EventNotificationAlert`` XML to ``/events/isapi`` (active, then inactive when
  the scene calms down), with a small JPEG part now and then, and a ``videoloss``-inactive heartbeat;
- an ONVIF camera (base-notification mode) POSTs ``wsnt:Notify`` envelopes to
  ``/events/onvif?camera=<id>``, as it does once the service has subscribed;
- a GB/T 28181 device REGISTERs over UDP, answers the digest challenge with ``ALARMHUB_SIP_PASSWORD``
  (dev default ``12345678``), sends keepalives and alarm Notify MESSAGEs in GB2312, and retransmits
  like a SIP UA when no answer comes (T1 = 0.5 s, three tries). Asked for its Catalog, it answers 200
  and sends its channels (the camera, code type 131, and an alarm input, 134) one Item per Response
  MESSAGE with ``SumNum`` 2, in GB2312, as some NVR firmware does.

Scenarios: motion (most), intrusion, line crossing, tamper. Cameras sit around the districts' anchors
with 20-digit GB/T 28181 codes (district adcode + 0000 + type 132 + serial). Every run is bounded by a
count and/or a duration; only the given addresses are contacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
from alarmhub_ingest_camera.protocols import gb28181
from alarmhub_ingest_camera.protocols.gb28181 import digest_response

from .sites import DISTRICT_ANCHORS

__all__ = ["GbDevice", "SimCamera", "cameras_for", "gb_catalog_pages", "run"]

CN = timezone(timedelta(hours=8))
SCENARIOS: tuple[tuple[str, float], ...] = (
    ("motion", 0.7),
    ("intrusion", 0.15),
    ("line_crossing", 0.1),
    ("tamper", 0.05),
)
ISAPI_TYPES = {
    "motion": "VMD",
    "intrusion": "fielddetection",
    "line_crossing": "linedetection",
    "tamper": "tamperdetection",
}
ONVIF_TOPICS = {
    "motion": ("tns1:RuleEngine/CellMotionDetector/Motion", "IsMotion"),
    "intrusion": ("tns1:RuleEngine/FieldDetector/ObjectsInside", "IsInside"),
    "line_crossing": ("tns1:RuleEngine/LineDetector/Crossed", "ObjectId"),
    "tamper": ("tns1:RuleEngine/TamperDetector/Tamper", "IsTamper"),
}
GB_TYPES = {"motion": "2", "intrusion": "6", "line_crossing": "5", "tamper": "11"}
PROTOCOL_MIX = (("isapi", 0.45), ("gb28181", 0.4), ("onvif", 0.15))


@dataclass
class SimCamera:
    protocol: str
    id: str
    name: str
    lat: float
    lon: float
    mac: str
    channel: int = 1
    active: str | None = None


def cameras_for(n: int, *, seed: int = 1) -> list[SimCamera]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        adcode, district, lat, lon = DISTRICT_ANCHORS[i % len(DISTRICT_ANCHORS)]
        r = rng.random()
        acc = 0.0
        proto = PROTOCOL_MIX[-1][0]
        for p, w in PROTOCOL_MIX:
            acc += w
            if r < acc:
                proto = p
                break
        out.append(
            SimCamera(
                proto,
                f"{adcode}0000132{seed % 100:02d}{i:05d}",
                f"{district} camera {i}",
                round(lat + rng.uniform(-0.02, 0.02), 6),
                round(lon + rng.uniform(-0.02, 0.02), 6),
                f"02:{seed % 256:02x}:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}:01",
            )
        )
    return out


def isapi_alert(cam: SimCamera, scenario: str, active: bool, now: datetime, post_count: int = 1) -> bytes:
    event = ISAPI_TYPES[scenario] if scenario != "heartbeat" else "videoloss"
    state = "active" if active else "inactive"
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<EventNotificationAlert version="2.0" '
        f'xmlns="http://www.hikvision.com/ver20/XMLSchema">\n<ipAddress>127.0.0.1</ipAddress>\n'
        f"<portNo>80</portNo>\n<protocol>HTTP</protocol>\n<macAddress>{cam.mac}</macAddress>\n"
        f"<channelID>{cam.channel}</channelID>\n<dateTime>{now.astimezone(CN).isoformat(timespec='seconds')}"
        f"</dateTime>\n<activePostCount>{post_count if active else 0}</activePostCount>\n"
        f"<eventType>{event}</eventType>\n<eventState>{state}</eventState>\n"
        f"<eventDescription>{event} alarm</eventDescription>\n</EventNotificationAlert>\n"
    ).encode()


def onvif_notify(scenario: str, active: bool, now: datetime) -> bytes:
    topic, item = ONVIF_TOPICS[scenario]
    value = "1" if item == "ObjectId" else ("true" if active else "false")
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        f'xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2" xmlns:tt="http://www.onvif.org/ver10/schema" '
        f'xmlns:tns1="http://www.onvif.org/ver10/topics"><s:Body><wsnt:Notify><wsnt:NotificationMessage>'
        f'<wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">{topic}</wsnt:Topic>'
        f'<wsnt:Message><tt:Message UtcTime="{now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}" '
        f'PropertyOperation="Changed"><tt:Source><tt:SimpleItem Name="Rule" Value="sim-{scenario}"/></tt:Source>'
        f'<tt:Data><tt:SimpleItem Name="{item}" Value="{value}"/></tt:Data></tt:Message></wsnt:Message>'
        f"</wsnt:NotificationMessage></wsnt:Notify></s:Body></s:Envelope>"
    ).encode()


def gb_alarm_body(cam: SimCamera, scenario: str, sn: int, now: datetime) -> bytes:
    return (
        '<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Alarm</CmdType>\r\n'
        f"<SN>{sn}</SN>\r\n<DeviceID>{cam.id}</DeviceID>\r\n<AlarmPriority>3</AlarmPriority>\r\n"
        f"<AlarmMethod>5</AlarmMethod>\r\n<AlarmTime>{now.astimezone(CN).strftime('%Y-%m-%dT%H:%M:%S')}"
        f"</AlarmTime>\r\n<AlarmDescription>模拟{scenario}报警</AlarmDescription>\r\n<Longitude>{cam.lon}"
        f"</Longitude>\r\n<Latitude>{cam.lat}</Latitude>\r\n<Info>\r\n<AlarmType>{GB_TYPES[scenario]}"
        "</AlarmType>\r\n</Info>\r\n</Notify>\r\n"
    ).encode("gb2312")


def gb_catalog_pages(cam: SimCamera, sn: str) -> list[bytes]:
    """The device's Catalog Response (A.2.6.4): its channels, one Item per message, ``SumNum`` 2."""
    channels = [
        (f"{cam.id[:10]}131{cam.id[13:]}", f"{cam.name} 通道1", "IPC", "ON", True),
        (f"{cam.id[:10]}134{cam.id[13:]}", "报警输入1", "AlarmIn", "ON", False),
    ]
    pages = []
    for device_id, name, model, status, positioned in channels:
        where = (
            f"<Longitude>{cam.lon}</Longitude>\r\n<Latitude>{cam.lat}</Latitude>\r\n" if positioned else ""
        )
        pages.append(
            (
                '<?xml version="1.0" encoding="GB2312"?>\r\n<Response>\r\n<CmdType>Catalog</CmdType>\r\n'
                f"<SN>{sn}</SN>\r\n<DeviceID>{cam.id}</DeviceID>\r\n<SumNum>{len(channels)}</SumNum>\r\n"
                f'<DeviceList Num="1">\r\n<Item>\r\n<DeviceID>{device_id}</DeviceID>\r\n<Name>{name}</Name>\r\n'
                f"<Manufacturer>alarmhub-sim</Manufacturer>\r\n<Model>{model}</Model>\r\n<Owner>Owner</Owner>\r\n"
                f"<CivilCode>{cam.id[:6]}</CivilCode>\r\n<Address>模拟地址</Address>\r\n<Parental>0</Parental>\r\n"
                f"<ParentID>{cam.id}</ParentID>\r\n<SafetyWay>0</SafetyWay>\r\n<RegisterWay>1</RegisterWay>\r\n"
                f"<Secrecy>0</Secrecy>\r\n<Status>{status}</Status>\r\n{where}</Item>\r\n</DeviceList>\r\n"
                "</Response>\r\n"
            ).encode("gb2312")
        )
    return pages


class _Udp(asyncio.DatagramProtocol):
    """Responses go to the queue; a request from the server (the alarm-notification response MESSAGE
    of A.2.6, a Catalog query) is answered 200 OK at once, as a device does, and counted; a Catalog
    query is then answered with the device's Catalog pages (``catalog`` builds them)."""

    def __init__(self) -> None:
        self.replies: asyncio.Queue[bytes] = asyncio.Queue(maxsize=64)
        self.transport: asyncio.DatagramTransport | None = None
        self.server_requests: list[bytes] = []
        self.catalog: Callable[[str], list[bytes]] | None = None  # SN → the MESSAGEs to send
        self._ours: set[str] = set()  # Call-IDs of our catalog pages: their 200s are not replies

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not data.startswith(b"SIP/2.0"):
            try:
                req = gb28181.decode(data)
            except Exception:
                return
            self.server_requests.append(req.body)
            ok = [
                "SIP/2.0 200 OK",
                *(f"Via: {v}" for v in req.header_all("via")),
                f"From: {req.header('from')}",
                f"To: {req.header('to')};tag={uuid.uuid4().hex[:8]}",
                f"Call-ID: {req.call_id}",
                f"CSeq: {req.header('cseq')}",
                "Content-Length: 0",
            ]
            if self.transport is not None:
                self.transport.sendto(("\r\n".join(ok) + "\r\n\r\n").encode(), addr)
            self._answer_catalog(req.body)
            return
        with contextlib.suppress(ValueError):
            if gb28181.decode(data).call_id in self._ours:
                return
        with contextlib.suppress(asyncio.QueueFull):
            self.replies.put_nowait(data)

    def _answer_catalog(self, body: bytes) -> None:
        if self.catalog is None or self.transport is None or b"<Query>" not in body or b"Catalog" not in body:
            return
        try:
            sn = gb28181.decode_manscdp(body).sn or "0"
        except ValueError:
            return
        for page in self.catalog(sn):
            self._ours.add(gb28181.decode(page).call_id)
            self.transport.sendto(page)


class GbDevice:
    """A GB/T 28181 device UA on its own UDP socket."""

    def __init__(
        self, cam: SimCamera, host: str, port: int, *, server_id: str, realm: str, password: str
    ) -> None:
        self.cam, self.host, self.port = cam, host, port
        self.server_id, self.realm, self.password = server_id, realm, password
        self.cseq = 0
        self.sn = 0
        self.call_id = uuid.uuid4().hex
        self.transport: asyncio.DatagramTransport | None = None
        self.proto: _Udp | None = None

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self.transport, self.proto = await loop.create_datagram_endpoint(
            _Udp, remote_addr=(self.host, self.port)
        )
        self.proto.catalog = lambda sn: [
            self._request("MESSAGE", body=page) for page in gb_catalog_pages(self.cam, sn)
        ]

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _request(self, method: str, extra: str = "", body: bytes = b"", call_id: str | None = None) -> bytes:
        self.cseq += 1
        assert self.transport is not None
        lport = self.transport.get_extra_info("sockname")[1]
        uri = f"sip:{self.server_id}@{self.realm}"
        to = (
            f"<sip:{self.cam.id}@{self.realm}>"
            if method == "REGISTER"
            else f"<sip:{self.server_id}@{self.realm}>"
        )
        head = (
            f"{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{lport};rport;branch=z9hG4bK{uuid.uuid4().hex[:12]}"
            f"\r\nFrom: <sip:{self.cam.id}@{self.realm}>;tag={self.call_id[:8]}\r\nTo: {to}\r\n"
            f"Call-ID: {call_id or uuid.uuid4().hex}\r\nCSeq: {self.cseq} {method}\r\nMax-Forwards: 70\r\n"
            f"User-Agent: alarmhub-sim IPC\r\n{extra}"
        )
        if body:
            head += "Content-Type: Application/MANSCDP+xml\r\n"
        return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    async def _send(self, data: bytes) -> Any:
        assert self.transport is not None and self.proto is not None
        for attempt in range(3):  # RFC 3261 timer A: 0.5 s, doubling
            self.transport.sendto(data)
            try:
                return gb28181.decode(await asyncio.wait_for(self.proto.replies.get(), 0.5 * 2**attempt))
            except TimeoutError:
                continue
        raise TimeoutError("no answer")

    async def register(self) -> int:
        call_id = self.call_id
        first = await self._send(self._request("REGISTER", "Expires: 3600\r\n", call_id=call_id))
        if first.status != 401:
            return int(first.status or 0)
        www = gb28181.decode_auth_params(first.header("WWW-Authenticate") or "")
        uri = f"sip:{self.server_id}@{self.realm}"
        resp = digest_response(
            username=self.cam.id,
            realm=www.get("realm", self.realm),
            password=self.password,
            method="REGISTER",
            uri=uri,
            nonce=www.get("nonce", ""),
            qop="auth",
            nc="00000001",
            cnonce="0a4f113b",
        )
        auth = (
            f'Authorization: Digest username="{self.cam.id}", realm="{www.get("realm", self.realm)}", '
            f'nonce="{www.get("nonce", "")}", uri="{uri}", response="{resp}", algorithm=MD5, qop=auth, '
            f'nc=00000001, cnonce="0a4f113b"\r\nExpires: 3600\r\n'
        )
        second = await self._send(self._request("REGISTER", auth, call_id=call_id))
        return int(second.status or 0)

    async def keepalive(self) -> int:
        self.sn += 1
        body = (
            '<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n'
            f"<SN>{self.sn}</SN>\r\n<DeviceID>{self.cam.id}</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n"
        )
        return int((await self._send(self._request("MESSAGE", body=body.encode()))).status or 0)

    async def alarm(self, scenario: str, now: datetime) -> int:
        self.sn += 1
        return int(
            (
                await self._send(
                    self._request("MESSAGE", body=gb_alarm_body(self.cam, scenario, self.sn, now))
                )
            ).status
            or 0
        )


async def _register_cameras(cams: list[SimCamera], counters: Counter[str]) -> None:
    """Best effort: put the cameras in the registry through dispatch's API so events get located."""
    api = os.environ.get("ALARMHUB_API")
    if not api:
        return
    token = os.environ.get("ALARMHUB_DEV_TOKEN", "dev-city-admin")
    async with httpx.AsyncClient(
        base_url=api, timeout=5.0, headers={"Authorization": f"Bearer {token}"}
    ) as c:
        for cam in cams:
            try:
                r = await c.post(
                    "/api/v1/registry/cameras",
                    json={
                        "id": cam.id,
                        "name": cam.name,
                        "lat": cam.lat,
                        "lon": cam.lon,
                        "ip": "127.0.0.1",
                        "mac": cam.mac,
                        "channel": cam.channel,
                        "network": "police_video",
                        "category": "public_place",
                    },
                )
                counters["registered" if r.status_code < 300 else "register_refused"] += 1
            except httpx.HTTPError:
                counters["register_failed"] += 1
                return


async def run(
    http_base: str,
    sip_host: str,
    sip_port: int,
    *,
    rate: float,
    count: int | None,
    duration_s: float | None,
    cameras: int,
    seed: int,
) -> dict[str, int]:
    """Drive ``cameras`` simulated cameras at ``rate`` events/s in total until ``count`` or ``duration_s``."""
    if count is None and duration_s is None:
        raise ValueError("bound the run with count and/or duration_s")
    rng = random.Random(seed)
    cams = cameras_for(max(1, cameras), seed=seed)
    counters: Counter[str] = Counter()
    await _register_cameras(cams, counters)
    password = os.environ.get("ALARMHUB_SIP_PASSWORD", "12345678")
    server_id = os.environ.get("ALARMHUB_SIP_SERVER_ID", "34020000002000000001")
    realm = os.environ.get("ALARMHUB_SIP_REALM", server_id[:10])
    devices: dict[str, GbDevice] = {}
    deadline = time.monotonic() + duration_s if duration_s is not None else float("inf")
    async with httpx.AsyncClient(base_url=http_base, timeout=10.0) as http:
        try:
            for cam in cams:
                if cam.protocol == "gb28181":
                    dev = GbDevice(
                        cam, sip_host, sip_port, server_id=server_id, realm=realm, password=password
                    )
                    await dev.open()
                    devices[cam.id] = dev
                    try:
                        status = await dev.register()
                        counters[f"gb28181_register_{status}"] += 1
                    except TimeoutError:
                        counters["gb28181_timeout"] += 1
                elif cam.protocol == "isapi":
                    with contextlib.suppress(httpx.HTTPError):
                        r = await http.post(
                            "/events/isapi",
                            content=isapi_alert(cam, "heartbeat", False, datetime.now(UTC)),
                            headers={"Content-Type": "application/xml"},
                        )
                        counters[f"isapi_heartbeat_{r.status_code}"] += 1
            sent = 0
            interval = 1.0 / rate if rate > 0 else 1.0
            next_at = time.monotonic()
            last_keepalive = time.monotonic()
            while (count is None or sent < count) and time.monotonic() < deadline:
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                next_at += interval
                cam = rng.choice(cams)
                now = datetime.now(UTC)
                r_ = rng.random()
                acc = 0.0
                scenario = SCENARIOS[0][0]
                for name, w in SCENARIOS:
                    acc += w
                    if r_ < acc:
                        scenario = name
                        break
                # a camera in an active episode ends it before starting another
                active = cam.active is None
                if not active:
                    scenario, cam.active = cam.active, None  # type: ignore[assignment]
                elif scenario != "line_crossing":
                    cam.active = scenario
                try:
                    if cam.protocol == "isapi":
                        body = isapi_alert(cam, scenario, active, now)
                        ctype = "application/xml"
                        if active and rng.random() < 0.2:
                            jpeg = b"\xff\xd8\xff\xe0" + rng.randbytes(1024) + b"\xff\xd9"
                            ctype = "multipart/form-data; boundary=MIME_boundary"
                            body = (
                                b'--MIME_boundary\r\nContent-Disposition: form-data; name="alert.xml"\r\n'
                                b"Content-Type: application/xml\r\n\r\n" + body + b"\r\n--MIME_boundary\r\n"
                                b'Content-Disposition: form-data; name="snap"; filename="snap.jpg"\r\n'
                                b"Content-Type: image/jpeg\r\n\r\n" + jpeg + b"\r\n--MIME_boundary--\r\n"
                            )
                        r = await http.post("/events/isapi", content=body, headers={"Content-Type": ctype})
                        counters[f"isapi_{r.status_code}"] += 1
                    elif cam.protocol == "onvif":
                        r = await http.post(
                            "/events/onvif",
                            params={"camera": cam.id},
                            content=onvif_notify(scenario, active, now),
                            headers={"Content-Type": "application/soap+xml"},
                        )
                        counters[f"onvif_{r.status_code}"] += 1
                    else:
                        dev = devices[cam.id]
                        if active:
                            counters[f"gb28181_alarm_{await dev.alarm(scenario, now)}"] += 1
                        else:
                            counters[f"gb28181_keepalive_{await dev.keepalive()}"] += 1
                except (httpx.HTTPError, TimeoutError):
                    counters[f"{cam.protocol}_error"] += 1
                sent += 1
                counters["sent"] = sent
                if time.monotonic() - last_keepalive > 60:
                    last_keepalive = time.monotonic()
                    for dev in devices.values():
                        with contextlib.suppress(TimeoutError):
                            await dev.keepalive()
        finally:
            for dev in devices.values():
                dev.close()
    return dict(counters)
