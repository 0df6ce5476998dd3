"""Two DC-09 receiver processes share one account's traffic — polls alternating between them, each alarm
sent on both paths of a dual-path communicator (R1 to one receiver, R2 to the other), and a retransmission
of each R1 copy to the other receiver (a lost ACK) — while one receiver is SIGKILLed and restarted midway.

Shows: no supervision miss while polls come in time (each receiver alone sees a poll every 3.6 s against
a 3 s interval), every alarm published exactly once per path, every message and retransmission ACKed (a
transmitter whose receiver is down sends to the other, as panels fail over)."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from alarmhub_devstack.testing import ServiceProcess, service_env
from alarmhub_events import ALARMS_RAW, DEVICES_STATUS
from alarmhub_ingest_contactid.protocols import dc09

pytestmark = [pytest.mark.drill, pytest.mark.slow, pytest.mark.e2e]


async def exchange(port: int, frame: bytes, timeout: float = 5.0) -> bytes | None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return None
    try:
        writer.write(frame)
        await writer.drain()
        return await asyncio.wait_for(reader.readuntil(b"\r"), timeout)
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return None
    finally:
        writer.close()


async def send(ports: list[int], first: int, frame: bytes) -> str:
    """To receiver ``first``; if it is down, to the other (bounded): the reply token."""
    for attempt in range(6):
        reply = await exchange(ports[(first + attempt) % 2], frame)
        if reply is not None:
            return dc09.decode_reply(reply).token
        await asyncio.sleep(0.2)
    return "none"


async def test_two_receivers_one_killed_and_restarted_behave_as_one(
    stack: Any, topic_prefix: str, consume_topic: Any
) -> None:
    line = f"{secrets.randbelow(0xFFFF) + 1:X}"
    conn = await asyncpg.connect(stack.database_url)
    await conn.execute(
        "INSERT INTO accounts (line, account, company, supervision_s) VALUES ($1, '5501', 'AA Co', 3)",
        f"L{line}",
    )
    await conn.close()
    env = service_env(
        stack,
        topic_prefix,
        ALARMHUB_DC09_HOST="127.0.0.1",
        ALARMHUB_DC09_PATHS="R1=ethernet,R2=cellular",
        ALARMHUB_DC09_SUPERVISION_CHECK_S="0.3",
    )
    procs = [
        ServiceProcess.create("alarmhub_ingest_contactid", {**env, "ALARMHUB_DC09_NODE_ID": n}, ("ALARMHUB_DC09_PORT",))
        for n in ("a", "b")
    ]  # fmt: skip
    for p in procs:
        p.start(wait_ready=False)
    for p in procs:
        p.wait_ready()
    ports = [p.ports["ALARMHUB_DC09_PORT"] for p in procs]
    replies: list[str] = []
    alarms = 0
    last_poll = datetime.now(UTC)
    try:
        for step in range(30):  # 0.6 s a step: 18 s
            if step == 10:
                procs[1].kill()  # mid-stream, between messages
            if step == 16:
                procs[1] = ServiceProcess(
                    module=procs[1].module, env=procs[1].env, ports=procs[1].ports
                ).start(wait_ready=False)
            now = datetime.now(UTC)
            if step % 3 == 0:  # a poll every 1.8 s, alternating receivers
                last_poll = now
                null = dc09.encode("NULL", step, "5501", "", line=line, timestamp=now)
                replies.append(await send(ports, (step // 3) % 2, null))
            if step % 4 == 1:  # an alarm on both paths, then the R1 copy again to the other receiver
                alarms += 1
                data = f"#5501|1130 01 {alarms:03d}"
                r1 = dc09.encode("ADM-CID", alarms, "5501", data, line=line, receiver="1", timestamp=now)
                r2 = dc09.encode("ADM-CID", alarms, "5501", data, line=line, receiver="2", timestamp=now)
                replies.append(await send(ports, 0, r1))
                replies.append(await send(ports, 1, r2))
                await asyncio.sleep(0.1)
                replies.append(await send(ports, 1, r1))  # the ACK was lost: retransmitted elsewhere
            await asyncio.sleep(0.6)
        procs[1].wait_ready()
    finally:
        for p in procs:
            p.stop()
    assert replies and set(replies) == {"ACK"}, replies
    events = [
        e
        for e in await consume_topic(topic_prefix, ALARMS_RAW, 1_000, timeout=5)
        if e["source"]["account"] == "5501"
    ]
    copies = sorted((e["zone"], e["source"]["path"]) for e in events)
    want = sorted((f"{i:03d}", p) for i in range(1, alarms + 1) for p in ("ethernet", "cellular"))
    assert copies == want, "each path's copy of each alarm published exactly once"
    statuses = [
        s
        for s in await consume_topic(topic_prefix, DEVICES_STATUS, 1_000, timeout=2)
        if s["device_id"] == f"L{line}#5501"
        # after the last poll the silence is true: a miss 3 s later is right
        and datetime.fromisoformat(s["occurred_at"]) < last_poll + timedelta(seconds=3)
    ]
    assert statuses == [], "a supervision miss while polls came in time"
