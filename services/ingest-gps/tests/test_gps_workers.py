"""ALARMHUB_GPS_WORKERS=2: two gateways on the same tracker ports (SO_REUSEPORT) under one supervisor, each
with its own health and command endpoint; and the connection budget, shared by every port of a process,
refusing the next connection cleanly and counting it."""

from __future__ import annotations

import asyncio
import re
import socket
import urllib.request
from typing import Any

import pytest
from alarmhub_devstack import free_port
from alarmhub_devstack.testing import ServiceProcess, service_env, wait_http
from alarmhub_ingest_gps.app import GpsApp
from alarmhub_ingest_gps.protocols import gt06

from .test_gps_service import gateway  # noqa: F401  (fixture)

TERMINALS = 30


def _login(i: int) -> bytes:
    imei = bytes.fromhex(f"{864717000000000 + i:016d}")
    return gt06.encode(0x01, imei + b"\x00\x01", i + 1)


def _metric(port: int, name: str, **labels: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    total = 0.0
    for lab, value in re.findall(rf"^{name}\{{([^}}]*)\}} ([0-9.e+]+)$", text, re.M):
        if all(f'{k}="{v}"' in lab for k, v in labels.items()):
            total += float(value)
    return total


def _pair() -> int:
    """A free port whose successor is free too (the second worker takes base + 1), both reserved so that no
    later ``free_port`` of this test (the tracker ports, the other pair) can hand out the successor."""
    return free_port(span=2)


@pytest.mark.slow
async def test_two_gateway_workers_share_the_ports(stack: Any, topic_prefix: str) -> None:
    health, command = _pair(), _pair()
    env = service_env(
        stack,
        topic_prefix,
        ALARMHUB_GPS_WORKERS="2",
        ALARMHUB_GPS_UNREGISTERED="accept",
        ALARMHUB_GPS_HOST="127.0.0.1",
        ALARMHUB_GPS_COMMAND_HOST="127.0.0.1",
        ALARMHUB_GPS_COMMAND_PORT=str(command),
        ALARMHUB_SHUTDOWN_GRACE_S="5",
    )
    proc = ServiceProcess.create(
        "alarmhub_ingest_gps",
        env,
        ("ALARMHUB_JT808_PORT", "ALARMHUB_GT06_PORT", "ALARMHUB_H02_PORT", "ALARMHUB_JT809_PORT"),
    )
    proc.env["ALARMHUB_HEALTH_PORT"] = str(health)
    proc.ports["ALARMHUB_HEALTH_PORT"] = health
    proc.start(wait_ready=False)
    writers = []
    try:
        for port in (health, health + 1):
            await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/readyz", 60.0, proc.proc)
        gt06_port = proc.ports["ALARMHUB_GT06_PORT"]
        for i in range(TERMINALS):
            reader, writer = await asyncio.open_connection("127.0.0.1", gt06_port)
            writer.write(_login(i))
            reply = gt06.decode(await asyncio.wait_for(reader.readexactly(10), 10))
            assert reply.protocol == 0x01 and reply.serial == i + 1
            writers.append(writer)
        per_worker = [
            _metric(p, "alarmhub_ingest_gps_connections", protocol="gt06") for p in (health, health + 1)
        ]
        assert sum(per_worker) == TERMINALS and min(per_worker) > 0, per_worker
        for port in (command, command + 1):  # each worker's own command endpoint
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        for w in writers:
            w.close()
        code = proc.stop(timeout=20)
    assert code == 0


@pytest.mark.parametrize("gateway", [{"ALARMHUB_GPS_MAX_CONNECTIONS": 3}], indirect=True)
async def test_connection_budget_is_shared_by_the_ports_and_refuses_cleanly(gateway: GpsApp) -> None:  # noqa: F811
    ports = [gateway.ports["gt06"], gateway.ports["jt808"], gateway.ports["h02"]]
    held = []
    for port in ports:
        held.append(await asyncio.open_connection("127.0.0.1", port))
    await asyncio.sleep(0.2)
    reader, writer = await asyncio.open_connection("127.0.0.1", ports[0])  # the fourth: refused
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    closed = gateway.metrics.closed.labels("gt06", "capacity")._value.get()
    assert closed == 1
    held[0][1].close()  # one goes: the next is admitted again
    await asyncio.sleep(0.2)
    reader, writer = await asyncio.open_connection("127.0.0.1", ports[0])
    writer.write(_login(99))
    assert gt06.decode(await asyncio.wait_for(reader.readexactly(10), 10)).protocol == 0x01
    writer.close()
    for _, w in held[1:]:
        w.close()
