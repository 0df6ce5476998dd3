"""Two gateway processes: a dispatcher's command reaches the one holding the terminal, and follows it.

Two GpsApp instances (as two ingest-gps processes behind one address would be) and dispatch run in
this process on ephemeral ports, on the real broker, Redis and PostgreSQL. The terminal is a real
TCP client: it authenticates on the second gateway, answers the 0x8201 there, then moves to the
first gateway (new login, then the old connection drops) and answers the next 0x8201 there.
Dispatch's configured URL points at the first gateway, so the first answer can only come through
the ownership lookup.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from alarmhub_dispatch.app import DispatchApp
from alarmhub_ingest_gps.app import GpsApp
from alarmhub_ingest_gps.protocols import jt808
from prometheus_client import CollectorRegistry

from .inproc import command_url, dispatch_app, gps_app, new_token, publish_decision, read_808, theft_decision

PHONE = "013900000778"


@pytest.fixture
async def services(
    stack: Any, topic_prefix: str
) -> AsyncIterator[tuple[GpsApp, GpsApp, DispatchApp, str, Any]]:
    gateways = [gps_app(stack, topic_prefix) for _ in range(2)]
    for gps in gateways:
        await gps.start()
    token = new_token()
    metrics = CollectorRegistry()
    dispatch = dispatch_app(
        stack, topic_prefix, token, command_url(gateways[0].ports["command"]), registry=metrics
    )
    await dispatch.start()
    try:
        yield gateways[0], gateways[1], dispatch, token, metrics
    finally:
        await dispatch.stop()
        for gps in gateways:
            await gps.stop()


async def _until(check: Any, what: str) -> None:
    for _ in range(100):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def _answer(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, lat: float, serial: int
) -> None:
    query = await read_808(reader)
    assert query.header.msg_id == 0x8201
    body = query.header.serial.to_bytes(2, "big") + jt808.encode_location_body(
        lat=lat, lon=114.0666, status_bits=0x03, local_time=datetime(2026, 11, 25, 18, 0, 0)
    )
    writer.write(jt808.encode(0x0201, PHONE, serial, body))
    await read_808(reader)


async def test_command_follows_the_terminal_across_gateways(
    services: tuple[GpsApp, GpsApp, DispatchApp, str, Any], stack: Any, topic_prefix: str
) -> None:
    first, second, dispatch, token, metrics = services
    r = aioredis.from_url(stack.redis_url, decode_responses=True)
    owner_key = f"{topic_prefix}gps:owner:{PHONE}"

    async def owner() -> str | None:
        v = await r.get(owner_key)
        return str(v) if v else None

    # each gateway announces its command URL
    assert first.ownership.gateway_id != second.ownership.gateway_id
    for gps in (first, second):
        url = await r.get(f"{topic_prefix}gps:gateway:{gps.ownership.gateway_id}")
        assert url is not None and str(url).endswith(f":{gps.ports['command']}/commands")

    # the terminal registers and authenticates on the SECOND gateway
    reader, writer = await asyncio.open_connection("127.0.0.1", second.ports["jt808"])
    writer.write(jt808.encode(0x0100, PHONE, 1, bytes(37)))
    code = (await read_808(reader)).body[3:]
    writer.write(jt808.encode(0x0102, PHONE, 2, code))
    assert (await read_808(reader)).body[4] == 0

    async def owned_by_second() -> bool:
        return await owner() == second.ownership.gateway_id

    await _until(owned_by_second, "the second gateway's ownership")
    ttl = await r.ttl(owner_key)
    assert 300 < ttl <= 300 + 2 * 30 + 1  # idle timeout + two refresh periods

    incident_id = uuid.uuid4()
    await publish_decision(stack, topic_prefix, theft_decision(incident_id, PHONE))

    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{dispatch.http_port}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=20,
    ) as client:
        for _ in range(200):
            if (await client.get(f"/api/v1/incidents/{incident_id}")).status_code == 200:
                break
            await asyncio.sleep(0.1)
        cmd = f"/api/v1/incidents/{incident_id}/vehicle-command"

        task = asyncio.create_task(_answer(reader, writer, 22.5555, 3))
        resp = await client.post(cmd, json={"command": "query_position", "timeout_s": 10})
        await task
        assert resp.status_code == 200, resp.text
        assert resp.json()["reply"]["status"] == "ok"
        assert resp.json()["reply"]["position"]["lat"] == pytest.approx(22.5555)

        # the terminal moves: it logs in on the FIRST gateway, then its old connection drops
        reader2, writer2 = await asyncio.open_connection("127.0.0.1", first.ports["jt808"])
        writer2.write(jt808.encode(0x0102, PHONE, 4, code))
        assert (await read_808(reader2)).body[4] == 0

        async def owned_by_first() -> bool:
            return await owner() == first.ownership.gateway_id

        await _until(owned_by_first, "the first gateway's ownership")
        writer.close()

        async def old_session_gone() -> bool:
            return PHONE not in second.servers["jt808"].devices

        await _until(old_session_gone, "the old session's close")
        await asyncio.sleep(0.2)  # the second gateway's release has run: it must not delete the new owner
        assert await owner() == first.ownership.gateway_id

        task = asyncio.create_task(_answer(reader2, writer2, 22.6666, 5))
        resp = await client.post(cmd, json={"command": "query_position", "timeout_s": 10})
        await task
        assert resp.status_code == 200, resp.text
        assert resp.json()["reply"]["position"]["lat"] == pytest.approx(22.6666)

        detail = (await client.get(f"/api/v1/incidents/{incident_id}")).json()
        recorded = [
            e["data"]["vehicle_command"]["reply"]["position"]["lat"]
            for e in detail["timeline"]
            if "vehicle_command" in (e["data"] or {})
        ]
        assert recorded == [pytest.approx(22.5555), pytest.approx(22.6666)]

        # an owner whose gateway key is gone (a crashed process): 503 with the reason, nothing sent
        await r.set(owner_key, "crashed-gateway:1", ex=60)
        resp = await client.post(cmd, json={"command": "query_position", "timeout_s": 2})
        assert resp.status_code == 503 and "crashed-gateway:1" in resp.json()["detail"]

        # no owner known: the configured URL (the first gateway) as before
        await r.delete(owner_key)
        task = asyncio.create_task(_answer(reader2, writer2, 22.7777, 6))
        resp = await client.post(cmd, json={"command": "query_position", "timeout_s": 10})
        await task
        assert resp.status_code == 200 and resp.json()["reply"]["position"]["lat"] == pytest.approx(22.7777)

    def lookups(outcome: str) -> float:
        return (
            metrics.get_sample_value("alarmhub_dispatch_gps_owner_lookups_total", {"outcome": outcome}) or 0.0
        )

    assert (lookups("routed"), lookups("owner_gone"), lookups("fallback")) == (2, 1, 1)

    # closing the session on its gateway releases the key (put back first, as the next refresh would)
    await r.set(owner_key, first.ownership.gateway_id, ex=60)
    writer2.close()

    async def released() -> bool:
        return await owner() is None

    await _until(released, "the release on close")
    await r.aclose()
