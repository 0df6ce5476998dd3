"""Services run inside the test's own event loop, and real JT/T 808 / GT06 / H02 terminals to talk to them.

The vehicle tests need ingest-gps, dispatch and sometimes triage wired to one another on ephemeral
ports, on the real broker, Redis and PostgreSQL; these builders keep that wiring in one place so each
test states only what it changes (extra settings as keyword arguments).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from alarmhub_dispatch.app import DispatchApp
from alarmhub_dispatch.config import DispatchSettings
from alarmhub_events import (
    ALARMS_TRIAGED,
    AlarmEvent,
    AlarmKind,
    Decision,
    Location,
    Protocol,
    Reason,
    Source,
    TriagedAlarm,
)
from alarmhub_ingest_gps.app import GpsApp
from alarmhub_ingest_gps.config import GpsSettings
from alarmhub_ingest_gps.protocols import gt06, h02, jt808
from alarmhub_kafka import DurableProducer, KafkaMetrics
from alarmhub_triage.app import TriageApp
from alarmhub_triage.config import TriageSettings
from prometheus_client import CollectorRegistry


def common(stack: Any, topic_prefix: str) -> dict[str, Any]:
    """The settings every service shares: the backing services, the topic prefix, no health port."""
    return dict(
        KAFKA_BOOTSTRAP=stack.kafka_bootstrap,
        DATABASE_URL=stack.database_url,
        REDIS_URL=stack.redis_url,
        ALARMHUB_TOPIC_PREFIX=topic_prefix,
        ALARMHUB_HEALTH_PORT=0,
    )


def gps_app(stack: Any, topic_prefix: str, **settings: Any) -> GpsApp:
    """An ingest-gps on loopback with every listener (and the command endpoint) on an ephemeral port."""
    s = GpsSettings(
        **{
            **common(stack, topic_prefix),
            "ALARMHUB_GPS_HOST": "127.0.0.1",
            "ALARMHUB_GPS_UNREGISTERED": "accept",
            "ALARMHUB_JT808_PORT": 0,
            "ALARMHUB_GT06_PORT": 0,
            "ALARMHUB_H02_PORT": 0,
            "ALARMHUB_JT809_PORT": 0,
            "ALARMHUB_GPS_COMMAND_PORT": 0,
            **settings,
        }
    )
    registry = CollectorRegistry()
    producer = DurableProducer.from_settings(s, metrics=KafkaMetrics(registry), client_id="ingest-gps")
    return GpsApp(s, registry, producer=producer)


def command_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/commands"


def dispatch_app(
    stack: Any,
    topic_prefix: str,
    token: str,
    gps_command_url: str,
    registry: CollectorRegistry | None = None,
    **settings: Any,
) -> DispatchApp:
    """A dispatch whose API listens on an ephemeral port and whose dev token is ``token``."""
    s = DispatchSettings(
        **{
            **common(stack, topic_prefix),
            "ALARMHUB_HTTP_HOST": "127.0.0.1",
            "ALARMHUB_HTTP_PORT": 0,
            "ALARMHUB_DEV_TOKEN": token,
            "ALARMHUB_DEV_MODE": True,
            "ALARMHUB_GPS_COMMAND_URL": gps_command_url,
            **settings,
        }
    )
    return DispatchApp(s, registry if registry is not None else CollectorRegistry())


def triage_app(stack: Any, topic_prefix: str) -> TriageApp:
    """A triage with its Redis keys under the test's prefix."""
    return TriageApp(
        TriageSettings(
            KAFKA_BOOTSTRAP=stack.kafka_bootstrap,
            REDIS_URL=stack.redis_url,
            ALARMHUB_TOPIC_PREFIX=topic_prefix,
            ALARMHUB_HEALTH_PORT=0,
            ALARMHUB_TRIAGE_REDIS_PREFIX=f"{topic_prefix}triage:",
        ),
        CollectorRegistry(),
    )


def new_token() -> str:
    return f"dev-{uuid.uuid4().hex}"


@asynccontextmanager
async def gps_and_dispatch(stack: Any, topic_prefix: str) -> AsyncIterator[tuple[GpsApp, DispatchApp, str]]:
    """ingest-gps, and dispatch sending its vehicle commands there, running; yields (gps, dispatch, dev token)."""
    gps = gps_app(stack, topic_prefix)
    await gps.start()
    token = new_token()
    dispatch = dispatch_app(stack, topic_prefix, token, command_url(gps.ports["command"]))
    await dispatch.start()
    try:
        yield gps, dispatch, token
    finally:
        await dispatch.stop()
        await gps.stop()


async def read_808(reader: asyncio.StreamReader) -> jt808.Message:
    """The next JT/T 808 frame the platform sent (0x7e … 0x7e), parsed."""
    await reader.readuntil(b"\x7e")
    return jt808.decode((await asyncio.wait_for(reader.readuntil(b"\x7e"), 10))[:-1])


async def terminal_login(port: int, phone: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A JT/T 808 terminal that registers (0x0100) and authenticates (0x0102) with the code it was given."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(jt808.encode(0x0100, phone, 1, bytes(37)))
    reg = await read_808(reader)
    writer.write(jt808.encode(0x0102, phone, 2, reg.body[3:]))
    answer = await read_808(reader)
    assert answer.body[4] == 0, "authentication refused"
    return reader, writer


async def read_gt06(reader: asyncio.StreamReader) -> gt06.Gt06Message:
    """The next GT06 frame the platform sent (78 78 … 0d 0a), parsed."""
    return gt06.decode(await asyncio.wait_for(reader.readuntil(b"\r\n"), 10))


async def gt06_login(port: int, imei: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A GT06 tracker that logs in (0x01, its IMEI in BCD) and is answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(gt06.encode(0x01, bytes.fromhex(imei.rjust(16, "0")), 1))
    answer = await read_gt06(reader)
    assert answer.protocol == 0x01, "login not answered"
    return reader, writer


def _utc(ago_s: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=ago_s)


class Gt06Tracker:
    """A GT06N tracker (clock in UTC, the gateway's default): logs in, reports 0x12, answers 0x80."""

    protocol, model = Protocol.GT06, "GT06N"

    def __init__(self) -> None:
        self.device = f"86{uuid.uuid4().int % 10**13:013d}"
        self.serial = 1

    async def connect(self, gps: GpsApp) -> None:
        self.reader, self.writer = await gt06_login(gps.ports["gt06"], self.device)

    def report(self, speed_kmh: float, ago_s: float = 0.0) -> None:
        t = _utc(ago_s)
        content = gt06.encode_gps_content(
            local_time=(t.year % 100, t.month, t.day, t.hour, t.minute, t.second),
            lat=22.54,
            lon=114.05,
            speed_kmh=round(speed_kmh),
            heading=0,
        )
        self.serial += 1
        self.writer.write(gt06.encode(0x12, content, self.serial))

    async def answer(self, text: str) -> bytes:
        """The next command's text; the 0x15 answer (its server flag echoed) carries ``text``."""
        cmd = await read_gt06(self.reader)
        assert cmd.protocol == 0x80
        words = text.encode()
        self.serial += 1
        self.writer.write(gt06.encode(0x15, bytes([4 + len(words)]) + cmd.content[1:5] + words, self.serial))
        return cmd.content[5:]


class H02Tracker:
    """An H02 tracker (clock in UTC): names itself in its V1 reports, acknowledges S20 with V4."""

    protocol, model = Protocol.H02, "H02"

    def __init__(self) -> None:
        self.device = f"{uuid.uuid4().int % 10**10:010d}"

    async def connect(self, gps: GpsApp) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", gps.ports["h02"])

    def report(self, speed_kmh: float, ago_s: float = 0.0) -> None:
        t = _utc(ago_s)
        self.writer.write(
            h02.encode_v1(
                self.device,
                hms=f"{t:%H%M%S}",
                dmy=f"{t:%d%m%y}",
                lat=22.54,
                lon=114.05,
                knots=speed_kmh / 1.852,
                course=0,
            )
        )

    async def answer(self, word: str) -> bytes:
        """The next command; its V4 acknowledgement (the command's stamp echoed) says ``word``."""
        cmd = await asyncio.wait_for(self.reader.readuntil(b"#"), 10)
        stamp, t = cmd.split(b",")[3].decode(), _utc(0)
        self.writer.write(
            f"*HQ,{self.device},V4,S20,{word},{stamp},{t:%H%M%S},A,2232.4000,N,11403.0000,E,0.00,000,"
            f"{t:%d%m%y},F7FFFBFF#".encode()
        )
        return cmd


def theft_decision(incident_id: uuid.UUID, phone: str, protocol: Protocol = Protocol.JT808) -> TriagedAlarm:
    """Triage's decision to dispatch a vehicle terminal's theft alarm (JT/T 808 illegal ignition) in Futian."""
    now = datetime.now(UTC)
    ev = AlarmEvent(
        kind=AlarmKind.VEHICLE_THEFT,
        source=Source(protocol=protocol, device_id=phone),
        code="0x00000800",
        occurred_at=now,
        received_at=now,
        location=Location(lat=22.54, lon=114.05),
    )
    return TriagedAlarm(
        incident_id=incident_id,
        event=ev,
        decision=Decision.DISPATCH,
        score=80,
        priority=2,
        rule_version="test",
        decided_at=now,
        reasons=[Reason(code="ignition_unauthorized", text="Ignition while armed")],
    )


async def publish_decision(stack: Any, topic_prefix: str, decision: TriagedAlarm) -> None:
    """Put a triage decision on the test's ``alarms.triaged``, as triage would (durable write)."""
    producer = DurableProducer(
        stack.kafka_bootstrap,
        metrics=KafkaMetrics(CollectorRegistry()),
        client_id="t",
        topic_prefix=topic_prefix,
    )
    await producer.start()
    try:
        await producer.send(ALARMS_TRIAGED, decision)
    finally:
        await producer.stop()
