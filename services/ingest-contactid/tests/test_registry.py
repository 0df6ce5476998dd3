"""Accounts from the real PostgreSQL registry: per-account AES keys, encryption policy, location fill,
supervision on ``devices.status``. Real broker, real database."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from alarmhub_events import ALARMS_RAW, DEVICES_STATUS
from alarmhub_ingest_contactid.app import ContactIdApp
from alarmhub_ingest_contactid.protocols import dc09
from prometheus_client import CollectorRegistry

from .test_service import settings_for, tcp_exchange, udp_exchange

Consume = Callable[..., Awaitable[list[dict[str, Any]]]]


@pytest_asyncio.fixture
async def accounts(stack: Any) -> AsyncIterator[dict[str, Any]]:
    line = f"L{secrets.randbelow(0xFFFF) + 1:X}"
    key = secrets.token_bytes(32)
    rows = [
        # (account, key_hex, encryption_required, supervision_s, lat, lon)
        ("1001", key.hex(), True, None, 22.5431, 114.0579),
        ("1002", None, False, 1, 22.6, 114.1),
    ]
    conn = await asyncpg.connect(stack.database_url)
    try:
        for acct, key_hex, enc, sup, lat, lon in rows:
            await conn.execute(
                "INSERT INTO accounts (line, account, company, key_hex, encryption_required, supervision_s, "
                "site_name, site_address, lat, lon, zones) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11::jsonb)",
                line,
                acct,
                "Acme Security",
                key_hex,
                enc,
                sup,
                f"Site {acct}",
                "1 Main St",
                lat,
                lon,
                json.dumps({"1": "Front door", "3": "Vault"}),
            )
        yield {"line": line[1:], "key": key}
    finally:
        await conn.execute("DELETE FROM accounts WHERE line = $1", line)
        await conn.close()


@pytest_asyncio.fixture
async def service(stack: Any, topic_prefix: str, accounts: dict[str, Any]) -> AsyncIterator[ContactIdApp]:
    app = ContactIdApp(
        settings_for(stack, topic_prefix, ALARMHUB_DC09_SUPERVISION_CHECK_S=0.5), CollectorRegistry()
    )
    await asyncio.wait_for(app.start(), 30)
    try:
        yield app
    finally:
        await app.stop()


async def test_encrypted_account_from_registry(
    service: ContactIdApp,
    accounts: dict[str, Any],
    topic_prefix: str,
    consume_topic: Consume,
) -> None:
    line, key = accounts["line"], accounts["key"]
    assert (line, "1001") in service.session.accounts
    now = datetime.now(UTC).replace(microsecond=0)
    frame = dc09.encode("ADM-CID", 42, "1001", "#1001|1130 01 003", line=line, timestamp=now, key=key)
    reply = dc09.decode_reply(await tcp_exchange(service.port, frame), key)
    assert reply.token == "ACK" and reply.encrypted and reply.seq == "0042"

    # the same account in clear is refused: encryption is required for it
    clear = dc09.encode("ADM-CID", 43, "1001", "#1001|1130 01 003", line=line, timestamp=now)
    assert dc09.decode_reply(await tcp_exchange(service.port, clear)).token == "NAK"
    # a replayed encrypted frame (timestamp an hour old) is NAKed as well
    old = dc09.encode(
        "ADM-CID", 44, "1001", "#1001|1130 01 003", line=line, timestamp=now - timedelta(hours=1), key=key
    )
    assert dc09.decode_reply(await udp_exchange(service.port, old)).token == "NAK"

    # account 1002's supervision alarm shares the topic: pick 1001's events
    events = [
        e
        for e in await consume_topic(topic_prefix, ALARMS_RAW, 2, timeout=10)
        if e["source"]["device_id"].endswith("#1001")
    ]
    (event,) = events
    assert event["kind"] == "burglary" and event["code"] == "E130" and event["zone"] == "003"
    assert event["source"]["device_id"] == f"L{line}#1001"
    assert event["location"] == {"lat": 22.5431, "lon": 114.0579, "crs": "WGS84", "source": "registry"}
    assert event["attributes"]["zone_name"] == "Vault" and event["attributes"]["encrypted"] is True
    assert event["attributes"]["company"] == "Acme Security"


async def test_supervision_miss_then_restore(
    service: ContactIdApp,
    accounts: dict[str, Any],
    topic_prefix: str,
    consume_topic: Consume,
) -> None:
    line = accounts["line"]
    device = f"L{line}#1002"
    # account 1002 must poll every second; stay silent until the miss is published
    statuses = await consume_topic(topic_prefix, DEVICES_STATUS, 1, timeout=20)
    assert statuses[0]["device_id"] == device and statuses[0]["status"] == "supervision_missed"
    null = dc09.encode("NULL", 0, "1002", "", line=line, timestamp=datetime.now(UTC))
    assert dc09.decode_reply(await tcp_exchange(service.port, null)).token == "ACK"
    statuses = await consume_topic(topic_prefix, DEVICES_STATUS, 2, timeout=20)
    assert [s["status"] for s in statuses][:2] == ["supervision_missed", "supervision_restored"]
    alarms = [
        e
        for e in await consume_topic(topic_prefix, ALARMS_RAW, 2, timeout=20)
        if e["source"]["device_id"] == device
    ]
    assert [(a["kind"], a["qualifier"], a["code"]) for a in alarms][:2] == [
        ("supervision", "new", "E356"),
        ("supervision", "restore", "R356"),
    ]


@pytest.mark.parametrize("transport", ["tcp", "udp"])
async def test_account_registered_after_start_is_found_on_its_first_message(
    stack: Any,
    service: ContactIdApp,
    topic_prefix: str,
    consume_topic: Consume,
    transport: str,
) -> None:
    """The frame of an account the loaded registry lacks leaves the callback path for a database
    lookup (a task), over TCP and over UDP alike."""
    exchange = tcp_exchange if transport == "tcp" else udp_exchange
    line = f"{secrets.randbelow(0xFFFF) + 1:X}"
    conn = await asyncpg.connect(stack.database_url)
    try:
        await conn.execute(
            "INSERT INTO accounts (line, account, company, lat, lon) VALUES ($1, '2001', 'Late Co', 22.1, 113.9)",
            f"L{line}",
        )
        frame = dc09.encode("ADM-CID", 1, "2001", "#2001|1120 01 000", line=line, timestamp=datetime.now(UTC))
        assert dc09.decode_reply(await exchange(service.port, frame)).token == "ACK"
    finally:
        await conn.execute("DELETE FROM accounts WHERE line = $1", f"L{line}")
        await conn.close()
    events = [
        e
        for e in await consume_topic(topic_prefix, ALARMS_RAW, 3, timeout=8)
        if e["source"]["device_id"] == f"L{line}#2001"
    ]
    assert (
        events
        and events[0]["location"]["source"] == "registry"
        and events[0]["attributes"]["company"] == "Late Co"
    )


async def test_a_refresh_reads_only_the_accounts_written_since(
    stack: Any, service: ContactIdApp, accounts: dict[str, Any]
) -> None:
    """Rows written by anyone (here plain SQL, as an operator's psql: no notice) are read again by the next
    refresh, the others are kept as they were (the same objects: not rebuilt); a row notice re-reads one."""
    line, stored = accounts["line"], f"L{accounts['line']}"
    first, second = service.session.accounts[(line, "1001")], service.session.accounts[(line, "1002")]
    assert service.supervisor.supervises(second.device_id)
    assert await service.refresh_accounts()
    assert (
        service.session.accounts[(line, "1001")] is first
        and service.session.accounts[(line, "1002")] is second
    )

    conn = await asyncpg.connect(stack.database_url)
    try:
        await conn.execute(
            "UPDATE accounts SET site_name = 'Moved', supervision_s = NULL WHERE line = $1 AND account = '1002'",
            stored,
        )
        assert await service.refresh_accounts()
        moved = service.session.accounts[(line, "1002")]
        assert moved.site_name == "Moved" and service.session.accounts[(line, "1001")] is first
        assert not service.supervisor.supervises(moved.device_id)

        # a supervised account whose row can no longer be read (a key of 2 bytes) leaves the copy and
        # its supervision, as a full load would
        await conn.execute(
            "UPDATE accounts SET supervision_s = 60 WHERE line = $1 AND account = '1002'", stored
        )
        assert await service.refresh_accounts() and service.supervisor.supervises(moved.device_id)
        await conn.execute(
            "UPDATE accounts SET key_hex = 'abcd' WHERE line = $1 AND account = '1002'", stored
        )
        assert await service.refresh_accounts()
        assert (line, "1002") not in service.session.accounts and not service.supervisor.supervises(
            moved.device_id
        )
        assert service.registry is not None and service.registry.bad_rows >= 1
        await conn.execute(
            "UPDATE accounts SET supervision_s = NULL, key_hex = NULL WHERE line = $1 AND account = '1002'",
            stored,
        )
        assert await service.refresh_accounts()
        moved = service.session.accounts[(line, "1002")]

        await conn.execute("DELETE FROM accounts WHERE line = $1 AND account = '1001'", stored)
        assert await service.refresh_accounts()
        assert (line, "1001") not in service.session.accounts

        # dispatch's notice for one row: that row is read, at once, without a table refresh
        await conn.execute(
            "INSERT INTO accounts (line, account, company, supervision_s) VALUES ($1, '1003', 'Acme', 30)",
            stored,
        )
        await conn.execute("SELECT pg_notify('alarmhub_registry', $1)", f'accounts:["{stored}", "1003"]')
        for _ in range(250):
            if (line, "1003") in service.session.accounts:
                break
            await asyncio.sleep(0.02)
        added = service.session.accounts[(line, "1003")]
        assert service.supervisor.supervises(added.device_id)
        assert service.session.accounts[(line, "1002")] is moved
    finally:
        await conn.close()
