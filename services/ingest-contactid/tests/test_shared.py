"""Two receivers sharing one Redis behave as one: a retransmission that reaches the other receiver is
ACKed and not published again, each path of a dual-path message is published once, alternate polls to
the two raise no supervision miss, a newly supervised account's first deadline counts from when the
receiver learned of it, and with Redis unreachable the receiver ACKs durable writes on local memory.

Real broker, real Redis, real PostgreSQL (the account registry)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from alarmhub_devstack._backing import free_port
from alarmhub_events import ALARMS_RAW, DEVICES_STATUS
from alarmhub_ingest_contactid.app import ContactIdApp
from alarmhub_ingest_contactid.protocols import dc09
from alarmhub_ingest_contactid.session import Account
from alarmhub_ingest_contactid.supervision import Supervisor
from prometheus_client import CollectorRegistry

from .test_service import settings_for, tcp_exchange, udp_exchange

pytestmark = pytest.mark.drill  # a fault drill: `make drills`

Consume = Callable[..., Awaitable[list[dict[str, Any]]]]


def two_settings(stack: Any, prefix: str, **extra: Any) -> list[Any]:
    common = {"ALARMHUB_DC09_PATHS": "R1=ethernet,R2=cellular", **extra}
    return [
        settings_for(stack, prefix, ALARMHUB_DC09_NODE_ID="a", **common),
        settings_for(stack, prefix, ALARMHUB_DC09_NODE_ID="b", **common),
    ]


@pytest_asyncio.fixture
async def line(stack: Any) -> AsyncIterator[str]:
    """A line of our own with account 3002 (not supervised); tests add supervised ones."""
    line = f"{secrets.randbelow(0xFFFF) + 1:X}"
    conn = await asyncpg.connect(stack.database_url)
    try:
        await conn.execute(
            "INSERT INTO accounts (line, account, company) VALUES ($1, '3002', 'Pair Co')",
            f"L{line}",
        )
        yield line
    finally:
        await conn.execute("DELETE FROM accounts WHERE line = $1", f"L{line}")
        await conn.close()


@pytest_asyncio.fixture
async def pair(stack: Any, topic_prefix: str, line: str) -> AsyncIterator[list[ContactIdApp]]:
    apps = [
        ContactIdApp(s, CollectorRegistry())
        for s in two_settings(stack, topic_prefix, ALARMHUB_DC09_SUPERVISION_CHECK_S=0.2)
    ]
    for app in apps:
        await asyncio.wait_for(app.start(), 30)
    try:
        yield apps
    finally:
        for app in apps:
            await app.stop()


async def test_retransmission_to_the_other_receiver_is_acked_not_published(
    pair: list[ContactIdApp], line: str, topic_prefix: str, consume_topic: Consume
) -> None:
    a, b = pair
    now = datetime.now(UTC).replace(microsecond=0)
    alarm = dc09.encode("ADM-CID", 7, "3002", "#3002|1130 01 004", line=line, receiver="1", timestamp=now)
    assert dc09.decode_reply(await tcp_exchange(a.port, alarm)).token == "ACK"
    # the ACK was lost: the panel sends the identical message again (same path, R1), and this time it
    # reaches b, over UDP
    await asyncio.sleep(0.2)  # a's "done" is written right after its ACK (in the background)
    assert dc09.decode_reply(await udp_exchange(b.port, alarm)).token == "ACK"
    assert dc09.decode_reply(await tcp_exchange(a.port, alarm)).token == "ACK"
    # a dual-path communicator's second path (receiver 2) is its own copy: published, once
    path2 = dc09.encode("ADM-CID", 7, "3002", "#3002|1130 01 004", line=line, receiver="2", timestamp=now)
    assert dc09.decode_reply(await tcp_exchange(b.port, path2)).token == "ACK"
    await asyncio.sleep(0.2)  # b's "done" goes with its next claim or within ALARMHUB_DC09_CONFIRM_DELAY_MS
    assert dc09.decode_reply(await tcp_exchange(a.port, path2)).token == "ACK"
    events = [
        e
        for e in await consume_topic(topic_prefix, ALARMS_RAW, 3, timeout=6)
        if e["source"]["account"] == "3002"
    ]
    assert sorted(e["source"]["path"] for e in events) == ["cellular", "ethernet"]
    assert b.metrics.retransmissions._value.get() == 1  # type: ignore[attr-defined]
    assert a.metrics.retransmissions._value.get() == 2  # type: ignore[attr-defined]
    # 3002 is not supervised: when it was heard is nobody's business in Redis (only supervision reads it)
    await a.check_supervision()  # flushes what was heard
    assert a.shared is not None and b.shared is not None
    assert not await a.shared.redis.exists(a.shared._key(f"L{line}#3002", "last"))


async def supervise(stack: Any, apps: list[ContactIdApp], line: str, account: str, interval_s: int) -> None:
    """Register a supervised account now and have every receiver load it (its first deadline: now)."""
    conn = await asyncpg.connect(stack.database_url)
    try:
        await conn.execute(
            "INSERT INTO accounts (line, account, company, supervision_s) VALUES ($1, $2, 'Pair Co', $3)",
            f"L{line}",
            account,
            interval_s,
        )
    finally:
        await conn.close()
    for app in apps:
        assert await app.refresh_accounts()


async def poll(app: ContactIdApp, line: str, account: str, seq: int) -> None:
    null = dc09.encode("NULL", seq, account, "", line=line, timestamp=datetime.now(UTC))
    assert dc09.decode_reply(await tcp_exchange(app.port, null)).token == "ACK"


async def test_alternate_polls_to_two_receivers_raise_no_miss_and_a_silence_raises_one(
    stack: Any, pair: list[ContactIdApp], line: str, topic_prefix: str, consume_topic: Consume
) -> None:
    """Supervision 3 s, a poll every 1.8 s to alternate receivers: each sees one every 3.6 s, which
    without shared state is a miss on both. Then silence: one miss in all, then one recovery."""
    device = f"L{line}#3001"
    await supervise(stack, pair, line, "3001", 3)
    for i in range(6):
        last_poll = datetime.now(UTC)  # before the poll: the receiver hears it later than this
        await poll(pair[i % 2], line, "3001", i)
        await asyncio.sleep(1.8)
    await asyncio.sleep(2.5)  # then silence, longer than the interval
    await poll(pair[1], line, "3001", 9)
    restored_by = datetime.now(UTC) + timedelta(seconds=3)  # (after that the silence is true again)
    await asyncio.sleep(1.0)  # both receivers have checked several times since
    statuses = [
        s
        for s in await consume_topic(topic_prefix, DEVICES_STATUS, 1_000, timeout=1.5)
        if s["device_id"] == device and datetime.fromisoformat(s["occurred_at"]) < restored_by
    ]
    assert [s["status"] for s in statuses] == ["supervision_missed", "supervision_restored"]
    shared = pair[0].shared
    assert shared is not None and await shared.redis.exists(shared._key(device, "last"))  # supervised: shared
    missed_at = datetime.fromisoformat(statuses[0]["occurred_at"])
    assert missed_at >= last_poll + timedelta(seconds=3), "a false miss while the polls came in time"


async def test_newly_supervised_account_first_deadline_counts_from_when_learned(
    stack: Any, pair: list[ContactIdApp], line: str, topic_prefix: str, consume_topic: Consume
) -> None:
    """An account registered long after the receivers started, polling on time from then on: no miss
    (its first deadline is not the receivers' start)."""
    await asyncio.sleep(3.5)  # the receivers have been up longer than the new account's interval
    await supervise(stack, pair, line, "3003", 3)
    # a poll every 1 s (each receiver hears one every 2 s): 2 s of margin under the 3 s interval for the
    # loop these receivers share with the test on a loaded box (at 2 s apart the margin was 1 s, and a
    # run on a box at load 3-5 once saw a miss between polls); a first deadline counted from the
    # receivers' start would still be a miss at once, before the first poll
    for i in range(3):
        await asyncio.sleep(1.0)
        last_poll = datetime.now(UTC)
        await poll(pair[i % 2], line, "3003", i)
    statuses = [
        s
        for s in await consume_topic(topic_prefix, DEVICES_STATUS, 1_000, timeout=1.5)
        if s["device_id"] == f"L{line}#3003"
    ]
    # a miss after the last poll's deadline would be true (the test stops polling); none before it
    assert all(datetime.fromisoformat(s["occurred_at"]) >= last_poll + timedelta(seconds=3) for s in statuses)


def test_supervisor_counts_a_new_accounts_first_deadline_from_when_it_learned_of_it() -> None:
    t0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    sup = Supervisor(t0)
    old = Account(line="1", account="1", supervision_s=10)
    sup.set_accounts({("1", "1"): old}, t0)
    new = Account(line="1", account="2", supervision_s=10)
    later = t0 + timedelta(minutes=5)
    sup.seen(old.device_id, later)
    sup.set_accounts({("1", "1"): old, ("1", "2"): new}, later)
    assert sup.check(later + timedelta(seconds=9)) == []
    sup.seen(old.device_id, later + timedelta(seconds=10))
    (t,) = sup.check(later + timedelta(seconds=11))  # the new account never polled: a miss, then
    assert (t.device_id, t.state) == (new.device_id, "missed")


async def test_redis_unreachable_the_receiver_acks_on_local_memory(
    stack: Any, topic_prefix: str, line: str, consume_topic: Consume
) -> None:
    settings = settings_for(stack, topic_prefix, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    registry = CollectorRegistry()
    app = ContactIdApp(settings, registry)
    await asyncio.wait_for(app.start(), 30)
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        alarm = dc09.encode("ADM-CID", 8, "3002", "#3002|1130 01 005", line=line, timestamp=now)
        assert dc09.decode_reply(await tcp_exchange(app.port, alarm)).token == "ACK"
        assert dc09.decode_reply(await tcp_exchange(app.port, alarm)).token == "ACK"  # local memory
        await app.check_supervision()
        assert registry.get_sample_value("alarmhub_ingest_contactid_shared_state_up") == 0.0
        errors = registry.get_sample_value(
            "alarmhub_ingest_contactid_shared_state_errors_total", {"op": "claim"}
        )
        assert errors is not None and errors >= 1
    finally:
        await app.stop()
    events = [
        e
        for e in await consume_topic(topic_prefix, ALARMS_RAW, 2, timeout=4)
        if e["source"]["account"] == "3002"
    ]
    assert len(events) == 1
