"""Requests down a JT/T 809 link (0x9205/0x9206 tracking, 0x9401 supervision) and their correlated answers.

The link server runs with the durable Kafka write in the path; the lower platform is the simulator over
loopback TCP, which answers on the main link as a platform does (0x1205/0x1206, 0x1401; late and twice
when asked to, as a platform answering "processing" and later "handled" does). The request
frame alarmhub sends is checked byte for byte against SmallChi/JT809's published 0x9401 frame
(src/JT809.Protocol.Test/Simples/Demo1.cs, the frame ``SUPERVISION`` of test_jt809.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from alarmhub_events import SUPERVISION_ANSWER, DeviceStatus, Event
from alarmhub_ingest_gps.jt809 import Jt809Server, PlatformDirectory, PlatformRecord
from alarmhub_ingest_gps.jt809.commands import (
    Jt809Commands,
    split_device_id,
    warn_type_code,
)
from alarmhub_ingest_gps.protocols import jt809 as p
from alarmhub_kafka import DurableProducer, KafkaMetrics
from alarmhub_sim import jt809 as sim
from prometheus_client import CollectorRegistry

# SmallChi/JT809 Demo1.cs: 0x9400/0x9401 supervision for 粤A12345, yellow (2); body contains 5A01 (= 0x5B)
SUPERVISION = bytes.fromhex(
    "5B000000920000068294000133EFB8010000000000270FD4C1413132333435000000000000000000000000000294010000005C"
    "010002000000005A01AC3F40123FFAA1000000005A01AC4D5003736D616C6C636869000000000000000031323334353637383930"
    "310000000000000000003132333435364071712E636F6D00000000000000000000000000000000000000BAD85D"
)
PLATFORM = PlatformRecord(user_id=70101, password="pw70101", gnss_center_id=70101, name="cmd-operator")


def test_supervision_request_matches_the_reference_frame() -> None:
    [payload] = p.Framer().feed(SUPERVISION)
    frame = p.decode(payload)
    vm = p.read(frame)
    sup = p.read(vm)
    body = p.encode_vehicle(vm.plate, vm.colour, p.DOWN_WARN_MSG_URGE_TODO_REQ, p.encode_9401(sup))
    h = frame.header
    assert (
        p.encode(p.DOWN_WARN_MSG, body, serial=h.serial, gnss_center_id=h.gnss_center_id, key=h.key)
        == SUPERVISION
    )


def test_device_ids_and_warn_types() -> None:
    assert split_device_id("粤B12345:2") == ("粤B12345", 2)
    for bad in ("粤B12345", ":2", "粤B1:x", "013900000777"):
        with pytest.raises(ValueError):
            split_device_id(bad)
    assert [warn_type_code(v) for v in ("theft", 9, "0x000A", "12", "emergency", "power_cut", None)] == [
        0x0009,
        0x0009,
        0x000A,
        12,
        0x0003,
        0x00FF,
        0x00FF,
    ]


@pytest_asyncio.fixture
async def link(stack: Any, topic_prefix: str) -> AsyncIterator[tuple[Jt809Server, Jt809Commands]]:
    producer = DurableProducer(
        stack.kafka_bootstrap,
        metrics=KafkaMetrics(CollectorRegistry()),
        client_id="jt809-cmd-test",
        topic_prefix=topic_prefix,
        service="ingest-gps",
    )
    await producer.start()
    commands = Jt809Commands(position_wait_s=3.0)

    async def publish(items: list[tuple[str, Event]]) -> None:
        await producer.send_many([(t, e, None) for t, e in items])
        commands.published(items)

    commands.publish = publish

    srv = Jt809Server(
        host="127.0.0.1",
        port=0,
        directory=PlatformDirectory([PLATFORM]),
        publish=publish,
        on_answer=commands.on_answer,
        slave_heartbeat_s=0.5,
    )
    commands.server = srv
    await srv.start()
    try:
        yield srv, commands
    finally:
        await srv.stop()
        await producer.stop()


async def _platform(srv: Jt809Server, **kw: Any) -> asyncio.Task[dict[str, int]]:
    task = asyncio.create_task(
        sim.run(
            "127.0.0.1",
            srv.port,
            user_id=70101,
            password="pw70101",
            gnss_center_id=70101,
            rate=20,
            count=None,
            duration_s=3,
            vehicles=2,
            seed=5,
            **kw,
        )
    )
    for _ in range(200):
        lk = srv.links.get(70101)
        if lk is not None and lk.slave_up:
            break
        await asyncio.sleep(0.02)
    return task


async def test_track_supervise_and_stop_are_answered(link: tuple[Jt809Server, Jt809Commands]) -> None:
    srv, commands = link
    task = await _platform(srv)
    assert (await commands.command("粤B99999:2", "track", {}, 5.0, "nobody"))["status"] == "not_connected"

    # a plate the platform was not forwarding: 0x9205 → 0x1205, then its positions flow
    track = await commands.command("粤B77777:2", "track", {}, 5.0, "cmd-operator")
    assert track["status"] == "ok" and track["ack"] == "0x1205" and track["request"] == "0x9205"
    assert track["via"] == "slave" and track["platform"] == "cmd-operator"
    assert track["position"] is not None and 22.0 < track["position"]["lat"] < 23.0

    sup = await commands.command(
        "粤B77777:2", "supervise", {"warn_type": "theft", "supervisor": "张警官"}, 5.0
    )
    assert sup["status"] == "ok" and sup["ack"] == "0x1401" and sup["warn_type"] == "0x0009"
    assert (sup["result"], sup["result_name"]) == (0, "processing")

    stop = await commands.command("粤B77777:2", "track_stop", {}, 5.0, "cmd-operator")
    assert stop["status"] == "ok" and stop["ack"] == "0x1206" and "position" not in stop
    counts = await asyncio.wait_for(task, 30)
    assert counts["down_requests"] == 3 and counts["answers_sent"] == 3


async def test_unanswered_supervision_times_out(link: tuple[Jt809Server, Jt809Commands]) -> None:
    srv, commands = link
    task = await _platform(srv, supervision_result=None)
    sup = await commands.command("粤B77777:2", "supervise", {}, 1.0, "cmd-operator")
    assert sup["status"] == "timeout" and sup["request"] == "0x9401"
    with pytest.raises(ValueError):
        await commands.command("粤B77777:2", "text", {"text": "x"}, 1.0, "cmd-operator")
    await asyncio.wait_for(task, 30)


async def test_late_and_second_supervision_answers_reach_devices_status(
    link: tuple[Jt809Server, Jt809Commands], topic_prefix: str, consume_topic: Any
) -> None:
    srv, commands = link
    # the platform answers 1.5 s after the request, "processing" then "handled": both after the 0.5 s wait
    task = await _platform(srv, supervision_delay_s=1.5, supervision_then=1)
    sup = await commands.command("粤B77777:2", "supervise", {"warn_type": "theft"}, 0.5, "cmd-operator")
    assert sup["status"] == "timeout" and sup["request"] == "0x9401"
    sid = sup["supervision_id"]
    got = await consume_topic(
        topic_prefix,
        "devices.status",
        2,
        timeout=30,
        where=lambda v: SUPERVISION_ANSWER in v.get("attributes", {}),
    )
    statuses = [DeviceStatus.model_validate(v) for v in got]
    assert [s.attributes[SUPERVISION_ANSWER] for s in statuses] == [
        {"supervision_id": sid, "result": 0, "result_text": "processing", "platform": "cmd-operator"},
        {"supervision_id": sid, "result": 1, "result_text": "handled", "platform": "cmd-operator"},
    ]
    assert {(s.device_id, s.protocol.value, s.status.value) for s in statuses} == {
        ("粤B77777:2", "jt809", "other")
    }
    assert len({s.event_id for s in statuses}) == 2 and commands.answers_published == 2 and commands.late == 0
    # an id this process never sent: logged and counted, nothing published
    await commands.on_answer(
        70101, {"sub_type": p.UP_WARN_MSG_URGE_TODO_ACK, "supervision_id": sid + 7, "result": 1}
    )
    assert commands.late == 1 and commands.answers_published == 2
    await asyncio.wait_for(task, 30)


async def test_disabling_a_platform_closes_its_link_and_refuses_it(
    link: tuple[Jt809Server, Jt809Commands],
) -> None:
    srv, _ = link
    task = await _platform(srv)
    assert 70101 in srv.links
    srv.directory.replace([dataclasses.replace(PLATFORM, disabled=True)])  # what a registry refresh brings
    assert srv.enforce(srv.directory) == 1
    with contextlib.suppress(ConnectionError):  # the platform sees its link closed under it
        await asyncio.wait_for(task, 30)
    for _ in range(100):
        if 70101 not in srv.links:
            break
        await asyncio.sleep(0.02)
    assert 70101 not in srv.links
    again = await sim.run(
        "127.0.0.1",
        srv.port,
        user_id=70101,
        password="pw70101",
        gnss_center_id=70101,
        rate=10,
        count=1,
        duration_s=2,
        vehicles=1,
        seed=6,
    )
    assert again["login_result"] == p.LOGIN_OTHER


def test_remembered_supervisions_are_bounded_by_deadline_and_size() -> None:
    now = [100.0]
    commands = Jt809Commands(max_supervisions=2, clock=lambda: now[0])
    commands._remember(1, 10, "粤B1:2", "p", 60)
    commands._remember(1, 11, "粤B2:2", "p", 3600)
    commands._remember(1, 12, "粤B3:2", "p", 3600)  # full: the oldest (10) goes
    assert list(commands._sent) == [(1, 11), (1, 12)]
    now[0] += 3601  # both past their deadline: dropped on the next request
    commands._remember(1, 13, "粤B4:2", "p", 60)
    assert list(commands._sent) == [(1, 13)] and commands._sent[(1, 13)].expires == now[0] + 60


async def test_an_answer_reaching_another_process_finds_its_vehicle_in_redis(
    link: tuple[Jt809Server, Jt809Commands], stack: Any, topic_prefix: str, consume_topic: Any
) -> None:
    """The platform's link moved (a restart, another gateway process) while the supervision was open."""
    import redis.asyncio as aioredis
    from alarmhub_ingest_gps.jt809.commands import SharedSupervisions

    srv, commands = link
    r = aioredis.from_url(stack.redis_url)
    try:
        shared = SharedSupervisions(r, topic_prefix + "gps:")
        commands.shared = shared
        task = await _platform(srv, supervision_result=None)  # the platform says nothing for now
        sup = await commands.command("粤B77777:2", "supervise", {"deadline_s": 600}, 0.5, "cmd-operator")
        assert sup["status"] == "timeout"
        sid = sup["supervision_id"]
        assert 590 <= await r.ttl(f"{topic_prefix}gps:jt809:sup:70101:{sid}") <= 600  # until the deadline
        await asyncio.wait_for(task, 30)

        # the process that sent it is gone; a new one (nothing in memory) gets the platform's "handled"
        other = Jt809Commands(publish=commands.publish, shared=shared)
        await other.on_answer(
            70101, {"sub_type": p.UP_WARN_MSG_URGE_TODO_ACK, "supervision_id": sid, "result": 1}
        )
        got = await consume_topic(
            topic_prefix,
            "devices.status",
            1,
            timeout=20,
            where=lambda v: v.get("attributes", {}).get(SUPERVISION_ANSWER, {}).get("supervision_id") == sid,
        )
        status = DeviceStatus.model_validate(got[0])
        assert status.device_id == "粤B77777:2" and status.attributes[SUPERVISION_ANSWER] == {
            "supervision_id": sid,
            "result": 1,
            "result_text": "handled",
            "platform": "cmd-operator",
        }
        assert other.answers_published == 1 and other.late == 0
        # an id no process sent is still only counted
        await other.on_answer(
            70101, {"sub_type": p.UP_WARN_MSG_URGE_TODO_ACK, "supervision_id": sid + 7, "result": 1}
        )
        assert other.late == 1 and other.answers_published == 1
    finally:
        await r.aclose()


async def test_supervision_goes_out_with_redis_down(link: tuple[Jt809Server, Jt809Commands]) -> None:
    """Redis is only the fallback for other processes: unreachable, the request and its answer still work."""
    import redis.asyncio as aioredis
    from alarmhub_devstack import free_port
    from alarmhub_ingest_gps.jt809.commands import SharedSupervisions

    srv, commands = link
    dead = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    try:
        commands.shared = SharedSupervisions(dead, "x:")
        task = await _platform(srv)
        sup = await commands.command("粤B77777:2", "supervise", {"warn_type": "theft"}, 5.0, "cmd-operator")
        assert sup["status"] == "ok" and sup["result_name"] == "processing"
        await asyncio.wait_for(task, 30)
    finally:
        await dead.aclose()
