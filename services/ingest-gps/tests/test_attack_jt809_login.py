"""Attack: the JT/T 809 login as an oracle, and the slave link as a redirector (docs/security.md).

Before: a wrong password got 0x04 and an unknown user 0x03 (which user ids exist, which passwords were
right), the password was hashed before the source address and the centre were checked, and the slave
link was opened to whatever address the login named (a third party's). Now: the cheap checks first,
one refusal code, and the slave link only to the peer's own address. And the password hash no longer
runs on the event loop (a slow one stalled every link of the gateway).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from alarmhub_ingest_gps.jt809 import Jt809Server, raw_items
from alarmhub_ingest_gps.jt809.platforms import PlatformDirectory, PlatformRecord
from alarmhub_ingest_gps.jt809.session import Jt809LinkSession
from alarmhub_ingest_gps.protocols import jt809 as p
from alarmhub_kafka import DurableProducer, KafkaMetrics
from alarmhub_store import hash_password
from prometheus_client import CollectorRegistry

from .test_jt809 import HEARTBEAT, LOGIN, NOW


def _code(records: list[PlatformRecord], peer: str = "127.0.0.1:5000") -> int | None:
    return Jt809LinkSession(PlatformDirectory(records), peer=peer).feed(LOGIN + HEARTBEAT, NOW).login_result


def test_unknown_user_and_wrong_password_are_indistinguishable() -> None:
    unknown = _code([PlatformRecord(1, hash_password("x"), 20180920)])
    wrong = _code([PlatformRecord(20180920, hash_password("not it"), 20180920)])
    outside = _code(
        [PlatformRecord(20180920, hash_password("20180920"), 20180920, allowed_ips=("10.0.0.0/8",))]
    )
    assert unknown == wrong == outside == p.LOGIN_OTHER


def test_slave_link_goes_only_to_the_peers_own_address() -> None:
    record = PlatformRecord(20180920, hash_password("20180920"), 20180920)
    out = Jt809LinkSession(PlatformDirectory([record]), peer="127.0.0.9:5000").feed(LOGIN, NOW)
    assert out.login_result == p.LOGIN_OK and out.slave is not None
    assert out.slave.ip == "127.0.0.9"  # whatever down-link address the login named


def test_deferred_password_check_holds_the_frames_read_after_the_login() -> None:
    """The server's mode: the session hands the hash out and holds what the peer pipelined behind it."""
    record = PlatformRecord(20180920, hash_password("20180920"), 20180920)
    for ok, result, replies in ((True, p.LOGIN_OK, 2), (False, p.LOGIN_OTHER, 1)):
        session = Jt809LinkSession(PlatformDirectory([record]), peer="127.0.0.1:5000", defer_password=True)
        first = session.feed(LOGIN + HEARTBEAT, NOW)
        assert first.password_check == (record.password, "20180920")
        assert first.replies == [] and first.login_result is None and session.platform is None
        out = session.finish_login(ok, NOW)
        assert out.login_result == result and len(out.replies) == replies  # + the heartbeat's 0x1006 when ok
        assert session.closed is not ok


async def test_a_slow_password_hash_does_not_stall_the_gateway(stack: Any, topic_prefix: str) -> None:
    """Before: the PBKDF2 check ran on the event loop, so one login with an expensive hash stalled every
    link of the gateway for as long as it took. Now it runs in a bounded thread pool: while one platform's
    slow hash runs, another platform logs in and is answered.

    Asserted on what happened, not on wall-clock gaps (a loaded 2-core machine deschedules the whole
    process now and then): the quick answer arrives while the slow check is still running in the pool."""
    t0 = time.perf_counter()
    hash_password("calibrate", iterations=200_000)
    iterations = int(200_000 * 3 / (time.perf_counter() - t0))  # ≈ 3 s of PBKDF2 on this machine
    slow = PlatformRecord(20180920, hash_password("20180920", iterations=iterations), 20180920)
    quick = PlatformRecord(4242, hash_password("quick-pw"), 4242)
    quick_login = p.encode(
        p.UP_CONNECT_REQ,
        p.encode_login(p.Login(4242, "quick-pw", "127.0.0.1", 0)),
        serial=1,
        gnss_center_id=4242,
    )
    producer = DurableProducer(
        stack.kafka_bootstrap,
        metrics=KafkaMetrics(CollectorRegistry()),
        client_id="jt809-slow-hash",
        topic_prefix=topic_prefix,
        service="ingest-gps",
    )
    await producer.start()

    async def publish(items: list[tuple[str, Any]]) -> None:
        await producer.send_raw_many(raw_items(items))

    srv = Jt809Server(
        host="127.0.0.1",
        port=0,
        directory=PlatformDirectory([slow, quick]),
        publish=publish,
        slave_enabled=False,
        hash_threads=2,
    )
    await srv.start()
    try:
        # a first login warms the producer up (topic metadata), so answers below wait for the hash only
        warm_r, warm_w = await asyncio.open_connection("127.0.0.1", srv.port)
        warm_w.write(quick_login)
        await asyncio.wait_for(warm_r.read(4096), 20)
        warm_w.close()
        slow_r, slow_w = await asyncio.open_connection("127.0.0.1", srv.port)
        quick_r, quick_w = await asyncio.open_connection("127.0.0.1", srv.port)
        slow_w.write(LOGIN)
        await slow_w.drain()
        for _ in range(1000):  # the slow login reaches the gateway and its hash starts (≤ 10 s)
            if srv.passwords.running:
                break
            await asyncio.sleep(0.01)
        assert srv.passwords.running == 1, "the slow login's check never started"
        quick_w.write(quick_login)
        await quick_w.drain()
        quick_answer = await asyncio.wait_for(quick_r.read(4096), 10)
        slow_running_at_quick_answer = srv.passwords.running
        slow_answer = await asyncio.wait_for(slow_r.read(4096), 30)
        for w in (slow_w, quick_w):
            w.close()
    finally:
        await srv.stop()
        await producer.stop()
    assert p.read(p.decode(p.Framer().feed(quick_answer)[0]))[0] == p.LOGIN_OK
    assert p.read(p.decode(p.Framer().feed(slow_answer)[0]))[0] == p.LOGIN_OK
    assert slow_running_at_quick_answer == 1, "the other platform was answered while the slow hash ran"
    assert srv.passwords.peak == 2  # both checks ran at once, in the pool's two threads
