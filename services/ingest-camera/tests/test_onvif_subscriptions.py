"""The ONVIF subscription manager against a small real local HTTP SOAP responder playing the camera.

PullPoint mode: CreatePullPointSubscription → PullMessages → Renew before expiry, events on alarms.raw.
Notify mode: Subscribe naming our /events/onvif; the responder then POSTs a Notify there, as a camera does.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from alarmhub_devstack import free_port
from alarmhub_ingest_camera.app import CameraApp
from alarmhub_ingest_camera.config import CameraSettings
from alarmhub_kafka import DurableProducer, KafkaMetrics
from defusedxml import ElementTree
from prometheus_client import CollectorRegistry

from .test_onvif import NOTIFY_CELL_MOTION

ENV = (
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2"'
    ' xmlns:wsa="http://www.w3.org/2005/08/addressing" xmlns:tev="http://www.onvif.org/ver10/events/wsdl"'
    ' xmlns:tt="http://www.onvif.org/ver10/schema"><s:Body>{}</s:Body></s:Envelope>'
)


def _z(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


class SoapCamera:
    """Answers the ONVIF event operations over real HTTP/1.1 on loopback; counts what it was asked."""

    def __init__(self, consumer: str | None = None) -> None:
        self.calls: Counter[str] = Counter()
        self.security: list[str] = []
        self.port = 0
        self.consumer = consumer
        self._server: asyncio.Server | None = None
        self._pulls = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        if self._server is not None:
            self._server.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/onvif/Events"

    def _times(self) -> str:
        now = datetime.now(UTC)
        return (
            f"<wsnt:CurrentTime>{_z(now)}</wsnt:CurrentTime>"
            f"<wsnt:TerminationTime>{_z(now + timedelta(seconds=60))}</wsnt:TerminationTime>"
        )

    async def _answer(self, body: bytes) -> bytes:
        root = ElementTree.fromstring(body)
        op = next(
            el.tag.rsplit("}", 1)[-1]
            for el in root.iter()
            if el.tag.endswith("}Body")
            for el in [next(iter(el))]
        )
        self.calls[op] += 1
        sec = next((el for el in root.iter() if el.tag.endswith("}UsernameToken")), None)
        if sec is not None:
            self.security.append(next(e.text or "" for e in sec.iter() if e.tag.endswith("}Username")))
        ref = (
            f"<wsnt:SubscriptionReference><wsa:Address>http://127.0.0.1:{self.port}/sub/1</wsa:Address>"
            "</wsnt:SubscriptionReference>"
        )
        if op == "CreatePullPointSubscription":
            return ENV.format(
                f"<tev:CreatePullPointSubscriptionResponse>{ref}{self._times()}"
                "</tev:CreatePullPointSubscriptionResponse>"
            ).encode()
        if op == "Subscribe":
            address = next(el.text for el in root.iter() if el.tag.endswith("}Address"))
            task = asyncio.create_task(self._notify(address or ""))
            self._tasks.add(task)
            return ENV.format(
                f"<wsnt:SubscribeResponse>{ref}{self._times()}</wsnt:SubscribeResponse>"
            ).encode()
        if op == "Renew":
            return ENV.format(f"<wsnt:RenewResponse>{self._times()}</wsnt:RenewResponse>").encode()
        if op == "PullMessages":
            self._pulls += 1
            if self._pulls == 1:
                # The message of NOTIFY_CELL_MOTION (a Go ONVIF client's fixture), delivered by pull.
                start = NOTIFY_CELL_MOTION.index(b"<wsnt:NotificationMessage>")
                end = NOTIFY_CELL_MOTION.index(b"</wsnt:NotificationMessage>") + len(
                    b"</wsnt:NotificationMessage>"
                )
                msg = NOTIFY_CELL_MOTION[start:end].decode()
                return ENV.format(f"<tev:PullMessagesResponse>{msg}</tev:PullMessagesResponse>").encode()
            await asyncio.sleep(0.3)
            return ENV.format("<tev:PullMessagesResponse/>").encode()
        if op == "Unsubscribe":
            return ENV.format("<wsnt:UnsubscribeResponse/>").encode()
        return b""

    async def _notify(self, address: str) -> None:
        await asyncio.sleep(0.2)
        async with httpx.AsyncClient() as client:
            r = await client.post(
                address, content=NOTIFY_CELL_MOTION, headers={"Content-Type": "application/soap+xml"}
            )
            self.calls[f"notify-{r.status_code}"] += 1

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode("latin-1").split("\r\n"):
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                body = await reader.readexactly(length)
                reply = await self._answer(body)
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml\r\n"
                    + f"Content-Length: {len(reply)}\r\n\r\n".encode()
                    + reply
                )
                await writer.drain()
        except (
            asyncio.IncompleteReadError,
            ConnectionError,
            asyncio.LimitOverrunError,
            asyncio.CancelledError,
        ):
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def _service(stack: Any, prefix: str, **extra: Any) -> AsyncIterator[CameraApp]:
    settings = CameraSettings(
        KAFKA_BOOTSTRAP=stack.kafka_bootstrap,
        DATABASE_URL=stack.database_url,
        REDIS_URL=stack.redis_url,
        ALARMHUB_TOPIC_PREFIX=prefix,
        ALARMHUB_CAMERA_HOST="127.0.0.1",
        ALARMHUB_SIP_HOST="127.0.0.1",
        ALARMHUB_SIP_PORT=0,
        ALARMHUB_HEALTH_PORT=0,
        ALARMHUB_ONVIF_TTL_S=60,
        ALARMHUB_ONVIF_RENEW_MARGIN_S=58,
        ALARMHUB_ONVIF_REFRESH_S=0.5,
        **extra,
    )
    registry = CollectorRegistry()
    producer = DurableProducer.from_settings(
        settings, metrics=KafkaMetrics(registry), client_id="camera-onvif-test"
    )
    app = CameraApp(settings, registry, producer=producer)
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


async def _add_camera(database_url: str, cam_id: str, onvif_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO cameras (id, name, lat, lon, onvif_url, username, password) "
            "VALUES ($1, 'ONVIF cam', 22.55, 114.06, $2, 'admin', 'secret')",
            cam_id,
            onvif_url,
        )
    finally:
        await conn.close()


async def _remove_camera(database_url: str, cam_id: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("DELETE FROM cameras WHERE id = $1", cam_id)
    finally:
        await conn.close()


@pytest.mark.slow
async def test_pullpoint_subscribe_pull_renew(stack: Any, topic_prefix: str, consume_topic: Any) -> None:
    cam = SoapCamera()
    await cam.start()
    cam_id = f"onvif-{uuid.uuid4().hex[:8]}"
    await _add_camera(stack.database_url, cam_id, cam.url)
    try:
        async with _service(
            stack, topic_prefix, ALARMHUB_CAMERA_HTTP_PORT=0, ALARMHUB_ONVIF_MODE="pullpoint"
        ) as app:
            (ev,) = [e for e in await consume_topic(topic_prefix, "alarms.raw", 1, timeout=20)]
            assert ev["kind"] == "motion" and ev["source"]["protocol"] == "onvif"
            assert ev["source"]["device_id"] == cam_id and ev["location"]["source"] == "registry"
            for _ in range(100):  # termination in 60 s, renew margin 58 s: renewed within ~2 s
                if cam.calls["Renew"]:
                    break
                await asyncio.sleep(0.1)
            assert cam.calls["CreatePullPointSubscription"] == 1 and cam.calls["Renew"] >= 1
            assert cam.calls["PullMessages"] >= 2 and app.onvif.renewals >= 1
            assert set(cam.security) == {"admin"}  # WS-UsernameToken on every request
    finally:
        await _remove_camera(stack.database_url, cam_id)
        await cam.stop()


@pytest.mark.slow
async def test_notify_subscription_delivers_to_our_endpoint(
    stack: Any, topic_prefix: str, consume_topic: Any
) -> None:
    port = free_port()
    cam = SoapCamera()
    await cam.start()
    cam_id = f"onvif-{uuid.uuid4().hex[:8]}"
    await _add_camera(stack.database_url, cam_id, cam.url)
    try:
        async with _service(
            stack,
            topic_prefix,
            ALARMHUB_CAMERA_HTTP_PORT=port,
            ALARMHUB_ONVIF_MODE="notify",
            ALARMHUB_ONVIF_CONSUMER_URL=f"http://127.0.0.1:{port}/events/onvif",
        ):
            events = await consume_topic(topic_prefix, "alarms.raw", 1, timeout=20)
            assert events[0]["source"]["device_id"] == cam_id and events[0]["kind"] == "motion"
            assert cam.calls["Subscribe"] == 1 and cam.calls["notify-200"] == 1
    finally:
        await _remove_camera(stack.database_url, cam_id)
        await cam.stop()
