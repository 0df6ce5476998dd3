"""Broker outage: while the broker does not answer, nothing is ACKed (transmitters keep retrying); when
it comes back the receiver recovers by itself and every signal ends up on ``alarms.raw``.

The test runs its own broker process (not the shared one) and freezes it with SIGSTOP — a hung broker,
the nastiest kind of outage: connections stay open, requests just time out.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alarmhub_devstack import BackingServices
from alarmhub_devstack.testing import consume, new_prefix
from alarmhub_events import ALARMS_RAW
from alarmhub_ingest_contactid.app import ContactIdApp
from alarmhub_ingest_contactid.protocols import dc09
from alarmhub_kafka import ensure_topics
from prometheus_client import CollectorRegistry

from .test_service import settings_for

pytestmark = [pytest.mark.drill, pytest.mark.slow]  # a fault drill: `make drills`


@pytest.fixture
def private_broker(stack: Any, tmp_path: Path) -> Iterator[tuple[str, int]]:
    from alarmhub_devstack import free_port

    backing = BackingServices(
        kafka_bootstrap=f"127.0.0.1:{free_port()}",
        redis_url=stack.redis_url,
        postgres_url=stack.admin_database_url,
        state_dir=tmp_path,
    ).start()
    (broker,) = [p for p in backing.started if p.name == "kafka"]
    try:
        yield backing.kafka_bootstrap, broker.proc.pid
    finally:
        os.kill(broker.proc.pid, signal.SIGCONT)
        backing.stop()


async def send_until_acked(port: int, seq: int, deadline: float) -> int:
    """A transmitter: send, wait 2 s for the ACK, retry (fresh timestamp) until ACKed. Returns attempts."""
    attempts = 0
    while time.monotonic() < deadline:
        attempts += 1
        frame = dc09.encode(
            "ADM-CID", seq, "5150", f"#5150|1130 01 {seq:03d}", line="9", timestamp=datetime.now(UTC)
        )
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(frame)
                await writer.drain()
                reply = dc09.decode_reply(await asyncio.wait_for(reader.readuntil(b"\r"), 2.0))
                if reply.token == "ACK" and reply.seq == f"{seq:04d}":
                    return attempts
            finally:
                writer.close()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
    raise AssertionError(f"message {seq} never ACKed")


async def test_no_ack_during_outage_and_nothing_lost(stack: Any, private_broker: tuple[str, int]) -> None:
    bootstrap, broker_pid = private_broker
    prefix = new_prefix()
    await ensure_topics(bootstrap, prefix=prefix)
    app = ContactIdApp(
        settings_for(stack, prefix, KAFKA_BOOTSTRAP=bootstrap, ALARMHUB_DC09_REGISTRY=False),
        CollectorRegistry(),
    )
    await asyncio.wait_for(app.start(), 30)
    try:
        deadline = time.monotonic() + 90
        assert await send_until_acked(app.port, 1, deadline) == 1

        os.kill(broker_pid, signal.SIGSTOP)  # the broker hangs
        outage = [asyncio.create_task(send_until_acked(app.port, s, deadline)) for s in (2, 3, 4)]
        await asyncio.sleep(13)  # longer than the producer's 10 s request timeout: writes fail
        assert not any(t.done() for t in outage), "ACKed while the broker could not confirm the write"
        os.kill(broker_pid, signal.SIGCONT)  # the broker is back

        attempts = await asyncio.wait_for(asyncio.gather(*outage), 80)
        assert all(a > 1 for a in attempts)  # each needed a retry: the first tries got no ACK
        assert await send_until_acked(app.port, 5, deadline) == 1  # recovered by itself
        assert app.metrics.publish_failures._value.get() >= 1  # type: ignore[attr-defined]
    finally:
        await app.stop()

    events = await consume(bootstrap, prefix + ALARMS_RAW, 50, timeout=10)
    zones = {int(e["zone"]) for e in events}
    assert zones == {1, 2, 3, 4, 5}  # every ACKed signal is on alarms.raw (some twice: at-least-once)
