"""ALARMHUB_DC09_WORKERS=2: two receiver processes on one port (SO_REUSEPORT) under one supervisor — every
message from many connections ACKed and published once, both workers take traffic and are scraped on
their own health ports, SIGTERM stops them all cleanly."""

from __future__ import annotations

import asyncio
import re
import urllib.request
from datetime import UTC, datetime
from typing import Any

import pytest
from alarmhub_devstack import free_port
from alarmhub_devstack.testing import ServiceProcess, service_env, wait_http
from alarmhub_events import ALARMS_RAW
from alarmhub_ingest_contactid.protocols import dc09

from .test_service import tcp_exchange

pytestmark = pytest.mark.slow
N = 40


def _acked(health_port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{health_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(
        float(v)
        for v in re.findall(
            r'^alarmhub_ingest_contactid_messages_total\{[^}]*result="ack"[^}]*\} ([0-9.e+]+)$', text, re.M
        )
    )


async def test_two_workers_share_the_port(stack: Any, topic_prefix: str, consume_topic: Any) -> None:
    base = free_port()
    while free_port() == base + 1:  # keep base+1 for the second worker's health port
        base = free_port()
    env = service_env(stack, topic_prefix, ALARMHUB_DC09_WORKERS="2", ALARMHUB_SHUTDOWN_GRACE_S="5")
    proc = ServiceProcess.create("alarmhub_ingest_contactid", env, ("ALARMHUB_DC09_PORT",))
    proc.env["ALARMHUB_HEALTH_PORT"] = str(base)
    proc.ports["ALARMHUB_HEALTH_PORT"] = base
    proc.start(wait_ready=False)
    try:
        for port in (base, base + 1):
            await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/readyz", 60.0, proc.proc)
        port = proc.ports["ALARMHUB_DC09_PORT"]
        now = datetime.now(UTC).replace(microsecond=0)
        replies = []
        for seq in range(1, N + 1):  # a new connection per message, as stop-and-wait panels do
            frame = dc09.encode("ADM-CID", seq, "7A01", f"#7A01|1130 01 {seq:03d}", line="9", timestamp=now)
            replies.append(dc09.decode_reply(await tcp_exchange(port, frame)))
        assert [(r.token, r.seq) for r in replies] == [("ACK", f"{s:04d}") for s in range(1, N + 1)]

        events = await consume_topic(
            topic_prefix, ALARMS_RAW, N + 1, timeout=6, where=lambda e: e["source"]["account"] == "7A01"
        )
        assert sorted(e["zone"] for e in events) == [f"{s:03d}" for s in range(1, N + 1)]

        per_worker = [_acked(base), _acked(base + 1)]
        assert sum(per_worker) == N and min(per_worker) > 0, per_worker
    finally:
        code = proc.stop(timeout=20)
    assert code == 0
