"""Registry changes at once (issue #13): an account with a new AES key, a new JT/T 809 platform and a new vehicle
each work within 1 s of their API call.

dispatch (the API), ingest-contactid and ingest-gps run in this process on ephemeral ports, on the real broker
and PostgreSQL; every sender is a real socket client. The ingest services' refresh timers are left at their
30 s defaults, so only dispatch's NOTIFY (LISTENed to by the ingest services) can explain a change seen
within the second. Each sender is refused first (so a miss is remembered where the service remembers one),
then the record is created through the API and the sender tries again every 50 ms until it is accepted.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from alarmhub_devstack import free_port
from alarmhub_dispatch.app import DispatchApp
from alarmhub_ingest_contactid.app import ContactIdApp
from alarmhub_ingest_contactid.config import ContactIdSettings
from alarmhub_ingest_contactid.protocols import dc09
from alarmhub_ingest_gps.app import GpsApp
from alarmhub_ingest_gps.protocols import jt808
from alarmhub_ingest_gps.protocols import jt809 as p
from prometheus_client import CollectorRegistry

from .inproc import common, dispatch_app, gps_app, new_token, read_808

WITHIN_S = 1.0


async def _dispatch_and_ingest(
    stack: Any, prefix: str
) -> AsyncIterator[tuple[DispatchApp, GpsApp, ContactIdApp, str]]:
    token = new_token()
    command_port = free_port()
    dispatch = dispatch_app(stack, prefix, token, f"http://127.0.0.1:{command_port}/commands")
    gps = gps_app(
        stack,
        prefix,
        ALARMHUB_GPS_COMMAND_PORT=command_port,
        ALARMHUB_GPS_UNREGISTERED="reject",
        ALARMHUB_JT809_SLAVE_LINK=False,
    )
    contactid = ContactIdApp(
        ContactIdSettings(
            **common(stack, prefix),
            ALARMHUB_DC09_HOST="127.0.0.1",
            ALARMHUB_DC09_PORT=0,
            ALARMHUB_SHUTDOWN_GRACE_S=4,
        ),
        CollectorRegistry(),
    )
    assert gps.settings.registry_refresh_s >= 30 and gps.settings.platforms_refresh_s >= 30
    assert contactid.settings.accounts_refresh_s >= 30
    await asyncio.gather(dispatch.start(), gps.start(), contactid.start())
    try:
        yield dispatch, gps, contactid, token
    finally:
        await asyncio.gather(contactid.stop(), gps.stop(), dispatch.stop())


@pytest.fixture
async def services(
    stack: Any, topic_prefix: str
) -> AsyncIterator[tuple[DispatchApp, GpsApp, ContactIdApp, str]]:
    async for s in _dispatch_and_ingest(stack, topic_prefix):
        yield s


async def _accepted_within(attempt: Callable[[], Awaitable[bool]], since: float) -> float:
    """Seconds from ``since`` (the API's answer) to the first accepted attempt (tried every 50 ms, 5 s at most)."""
    deadline = since + 5.0
    while time.monotonic() < deadline:
        if await attempt():
            return time.monotonic() - since
        await asyncio.sleep(0.05)
    raise AssertionError("not accepted within 5 s")


async def _dc09(port: int, frame: bytes, key: bytes) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(frame)
        await writer.drain()
        raw = await asyncio.wait_for(reader.readuntil(b"\r"), 5)
    finally:
        writer.close()
    try:
        return dc09.decode_reply(raw, key).token
    except Exception:
        return dc09.decode_reply(raw).token  # a DUH or NAK is not encrypted with the key


async def _jt808_register(port: int, phone: str) -> int:
    """0x0100 → the 0x8100 result (0 success, 4 not in the registry)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(jt808.encode(0x0100, phone, 1, bytes(37)))
        await writer.drain()
        reply = await read_808(reader)
    finally:
        writer.close()
    assert reply.header.msg_id == 0x8100
    return reply.body[2]


async def _jt809_login(port: int, user: int, password: str, centre: int) -> int:
    """0x1001 → the 0x1002 result (0 success, 3 user not registered)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        body = p.encode_login(p.Login(user, password, "127.0.0.1", 809))
        writer.write(p.encode(p.UP_CONNECT_REQ, body, serial=1, gnss_center_id=centre))
        await writer.drain()
        framer = p.Framer()
        while True:
            data = await asyncio.wait_for(reader.read(4096), 5)
            assert data, "link closed without a login reply"
            for payload in framer.feed(data):
                frame = p.decode(payload)
                if frame.msg_id == p.UP_CONNECT_RSP:
                    return p.read(frame)[0]
    finally:
        writer.close()


async def test_a_key_a_platform_and_a_vehicle_work_within_a_second_of_their_api_call(
    services: tuple[DispatchApp, GpsApp, ContactIdApp, str],
) -> None:
    dispatch, gps, contactid, token = services
    line, account = f"{secrets.randbelow(0xFFF) + 1:X}", f"{secrets.randbelow(0xFFFF) + 1:X}"
    key = secrets.token_bytes(16)
    user, centre = 30_000_000 + secrets.randbelow(1_000_000), 40_000 + secrets.randbelow(10_000)
    phone = f"0139{secrets.randbelow(10**8):08d}"
    took: dict[str, float] = {}

    def dc09_frame(seq: int) -> bytes:
        now = datetime.now(UTC).replace(microsecond=0)
        return dc09.encode("SIA-DCS", seq, account, f"#{account}|NBA1", line=line, timestamp=now, key=key)

    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{dispatch.http_port}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ) as api:
        # -- DC-09: an account with a new AES-128 key
        assert await _dc09(contactid.port, dc09_frame(1), key) != "ACK"
        r = await api.post(
            "/api/v1/registry/accounts",
            json={
                "line": line,
                "account": account,
                "company": "registry-at-once",
                "key_hex": key.hex(),
                "encryption_required": True,
                "lat": 22.54,
                "lon": 114.05,
            },
        )
        assert r.status_code == 201, r.text
        seq = iter(range(2, 10_000))
        took["dc09 account + key"] = await _accepted_within(
            lambda: _eq(_dc09(contactid.port, dc09_frame(next(seq)), key), "ACK"), time.monotonic()
        )

        # -- JT/T 809: a new lower platform
        password = uuid.uuid4().hex[:8]
        assert await _jt809_login(gps.ports["jt809"], user, password, centre) == p.LOGIN_OTHER
        r = await api.post(
            "/api/v1/registry/platforms",
            json={
                "user_id": user,
                "password": password,
                "gnss_center_id": centre,
                "name": "registry-at-once",
            },
        )
        assert r.status_code == 201, r.text
        took["jt809 platform"] = await _accepted_within(
            lambda: _eq(_jt809_login(gps.ports["jt809"], user, password, centre), p.LOGIN_OK),
            time.monotonic(),
        )

        # -- JT/T 808: a new vehicle (the gateway refuses unregistered terminals here)
        assert await _jt808_register(gps.ports["jt808"], phone) == 4
        r = await api.post("/api/v1/registry/vehicles", json={"device_id": phone, "protocol": "jt808"})
        assert r.status_code == 201, r.text
        took["jt808 vehicle"] = await _accepted_within(
            lambda: _eq(_jt808_register(gps.ports["jt808"], phone), 0), time.monotonic()
        )

    print({k: round(v, 3) for k, v in took.items()})
    for what, seconds in took.items():
        assert seconds < WITHIN_S, f"{what} worked {seconds:.2f} s after its API call"


async def _eq(result: Awaitable[Any], want: Any) -> bool:
    return (await result) == want
