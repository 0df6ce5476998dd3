"""Redis Sentinel failover during a DC-09 alarm stream: a private primary, replica and sentinel
(Debian's redis-server, its sentinel mode); the receiver finds Redis through ``REDIS_SENTINELS``. The
primary is SIGKILLed midway: every alarm is still ACKed (local memory while Redis fails over), each is
published exactly once, and after the replica's promotion the receiver uses it — a retransmission of a
message from before the failover is ACKed without being published again."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from alarmhub_devstack._backing import free_port, reachable
from alarmhub_events import ALARMS_RAW
from alarmhub_ingest_contactid.app import ContactIdApp
from alarmhub_ingest_contactid.config import ContactIdSettings
from alarmhub_ingest_contactid.protocols import dc09
from prometheus_client import CollectorRegistry

pytestmark = [
    pytest.mark.drill,  # a fault drill: `make drills`
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server (Debian) not installed"),
]


async def tcp_exchange(port: int, frame: bytes, timeout: float = 10.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(frame)
        await writer.drain()
        return await asyncio.wait_for(reader.readuntil(b"\r"), timeout)
    finally:
        writer.close()


def _spawn(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as f:
        return subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not within {timeout} s"
        time.sleep(0.1)


@pytest.fixture
def sentinel_set(tmp_path: Path) -> Iterator[dict[str, Any]]:
    ports = {"primary": free_port(), "replica": free_port(), "sentinel": free_port()}
    common = ["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"]
    # each server's RDB files (the replica's full sync writes one) in a directory of its own, not the cwd
    for name in ("p", "r"):
        (tmp_path / name).mkdir()
    procs = {
        "primary": _spawn(
            ["redis-server", "--port", str(ports["primary"]), "--dir", str(tmp_path / "p"), *common],
            tmp_path / "p.log",
        ),
        "replica": _spawn(
            [
                "redis-server",
                "--port",
                str(ports["replica"]),
                "--replicaof",
                "127.0.0.1",
                str(ports["primary"]),
                "--dir",
                str(tmp_path / "r"),
                *common,
            ],
            tmp_path / "r.log",
        ),
    }
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {ports['sentinel']}\nbind 127.0.0.1\n"
        f"sentinel monitor mymaster 127.0.0.1 {ports['primary']} 1\n"
        "sentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 5000\n"
    )
    try:
        for name in ("primary", "replica"):
            _wait(lambda n=name: reachable("127.0.0.1", ports[n]), 20, name)
        replica = redis.Redis(port=ports["replica"])
        _wait(lambda: replica.info("replication").get("master_link_status") == "up", 30, "replication")
        procs["sentinel"] = _spawn(["redis-server", str(conf), "--sentinel"], tmp_path / "s.log")
        _wait(lambda: reachable("127.0.0.1", ports["sentinel"]), 20, "sentinel")
        yield {"ports": ports, "procs": procs}
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait(10)


def _master_port(sentinel_port: int) -> int:
    addr: Any = redis.Redis(port=sentinel_port).sentinel_get_master_addr_by_name("mymaster")
    return int(addr[1])


async def test_failover_during_an_alarm_stream_loses_and_duplicates_nothing(
    stack: Any, topic_prefix: str, consume_topic: Any, sentinel_set: dict[str, Any]
) -> None:
    ports, procs = sentinel_set["ports"], sentinel_set["procs"]
    registry = CollectorRegistry()
    settings = ContactIdSettings(
        KAFKA_BOOTSTRAP=stack.kafka_bootstrap,
        DATABASE_URL=stack.database_url,
        REDIS_URL="redis://127.0.0.1:6379/0",  # only its database number is used with Sentinel
        REDIS_SENTINELS=f"127.0.0.1:{ports['sentinel']}",
        REDIS_SENTINEL_MASTER="mymaster",
        ALARMHUB_TOPIC_PREFIX=topic_prefix,
        ALARMHUB_DC09_HOST="127.0.0.1",
        ALARMHUB_DC09_PORT=0,
        ALARMHUB_HEALTH_PORT=0,
        ALARMHUB_DC09_REGISTRY=False,
        ALARMHUB_SHUTDOWN_GRACE_S=4,
    )
    app = ContactIdApp(settings, registry)
    await asyncio.wait_for(app.start(), 30)
    n, kill_at = 40, 12
    frames = [
        dc09.encode(
            "ADM-CID", i + 1, "9401", f"#9401|1130 01 {i + 1:03d}", line="7", timestamp=datetime.now(UTC)
        )
        for i in range(n)
    ]
    try:
        for i, frame in enumerate(frames):
            if i == kill_at:
                procs["primary"].send_signal(signal.SIGKILL)  # the primary dies mid-stream
                procs["primary"].wait(10)
            assert dc09.decode_reply(await tcp_exchange(app.port, frame)).token == "ACK", f"alarm {i}"
            await asyncio.sleep(0.1)
        deadline = time.monotonic() + 30
        while _master_port(ports["sentinel"]) != ports["replica"]:
            assert time.monotonic() < deadline, "sentinel did not promote the replica"
            await asyncio.sleep(0.2)
        # after the promotion: retransmissions of messages confirmed before the kill are ACKed, not
        # published (their "done" reached the replica); the receiver is on the new primary again
        await asyncio.sleep(1.5)  # past the shared state's retry pause
        for frame in frames[:5]:
            assert dc09.decode_reply(await tcp_exchange(app.port, frame)).token == "ACK"
        assert registry.get_sample_value("alarmhub_ingest_contactid_shared_state_up") == 1.0
        replica = redis.Redis(port=ports["replica"])
        assert replica.info("replication")["role"] == "master"
        # the messages confirmed before the kill were replicated; those of the failover itself went on
        # the receiver's local memory (Redis unreachable) and are not shared
        shared = len(list(replica.scan_iter(f"{topic_prefix}dc09:*:m:*")))
        assert kill_at <= shared <= n
    finally:
        await app.stop()
    events = [
        e
        for e in await consume_topic(topic_prefix, ALARMS_RAW, n + 5, timeout=8)
        if e["source"]["account"] == "9401"
    ]
    zones = sorted(e["zone"] for e in events)
    assert zones == [f"{i + 1:03d}" for i in range(n)], "each alarm published exactly once"
