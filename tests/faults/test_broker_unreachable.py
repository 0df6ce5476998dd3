"""The broker becomes unreachable while panels keep sending: the DC-09 receiver withholds ACKs (a panel
keeps its alarm and retransmits), and once the broker is back nothing is lost.

Real Kafka: a restart of one broker of three (RF 3, min.insync.replicas 2) is invisible to producers
beyond a leader election; losing two makes acks=all writes fail, which is this test's situation. The
dev broker keeps nothing across a restart, so here a private broker is cut off by a proxy instead
(docs/deployment.md, "Faults").
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import pytest
from alarmhub_devstack.testing import ServiceProcess, consume, new_prefix, service_env
from alarmhub_kafka import ensure_topics

from .conftest import ALARM_PATH, alarm_path, incidents_by_device, needs_services, register, send_until_acked

pytestmark = [pytest.mark.drill, pytest.mark.slow, pytest.mark.e2e]

BEFORE, DURING = 5, 10
OUTAGE_S = 8.0


async def _outage(broker: Any, sites: list[Any], send: Any) -> list[tuple[str, list[tuple[float, str]]]]:
    """ACK the first sites normally, cut the broker, keep the rest sending through an outage, restore."""
    before = [await send(s)() for s in sites[:BEFORE]]
    assert before == ["ACK"] * BEFORE
    await broker.proxy.cut()
    cut_at = time.monotonic()
    senders = [asyncio.create_task(send_until_acked(send(s), deadline_s=90)) for s in sites[BEFORE:]]
    await asyncio.sleep(OUTAGE_S)
    await broker.proxy.restore()
    restored_at = time.monotonic()
    results = await asyncio.gather(*senders)
    early = [
        (round(t - cut_at, 2), r) for _, log in results for t, r in log if r == "ACK" and t < restored_at
    ]
    assert not early, f"ACKs sent while the broker was unreachable: {early}"
    assert [r for r, _ in results] == ["ACK"] * DURING, "a panel never got its ACK after the outage"
    attempts = Counter(r for _, log in results for _, r in log)
    last = max(t for _, log in results for t, _ in log)
    print(
        f"\n{DURING} panels through a {OUTAGE_S:.0f} s outage: replies {dict(attempts)}; "
        f"all ACKed within {last - restored_at:.1f} s of the broker's return"
    )
    return results


@needs_services("alarmhub_ingest_contactid")
async def test_receiver_withholds_acks_and_publishes_everything_after(
    private_broker: Any, stack: Any
) -> None:
    from alarmhub_sim import dc09
    from alarmhub_sim.sites import demo_sites

    prefix = new_prefix()
    await ensure_topics(private_broker.bootstrap, prefix=prefix)
    sites = demo_sites(BEFORE + DURING, seed=20, line="9", company="fault-broker-ingest")

    class _A:
        kafka_bootstrap, redis_url, database_url = (
            private_broker.bootstrap,
            stack.redis_url,
            stack.database_url,
        )

    env = service_env(_A(), prefix, ALARMHUB_DC09_REGISTRY="false")
    rx = await asyncio.to_thread(
        ServiceProcess.create("alarmhub_ingest_contactid", env, ("ALARMHUB_DC09_PORT",)).start
    )
    try:
        port = rx.ports["ALARMHUB_DC09_PORT"]
        await _outage(
            private_broker, sites, lambda s: lambda: dc09.send_one("127.0.0.1", port, s, "1", "110", "003")
        )
        raw = await consume(private_broker.bootstrap, prefix + "alarms.raw", 10_000, timeout=8)
    finally:
        await asyncio.to_thread(rx.stop)
    fires = Counter(e["source"]["device_id"] for e in raw if e.get("code") == "E110")
    assert not {s.device_id for s in sites} - set(fires), "alarms lost on alarms.raw"
    print(sorted(fires.values()))
    print(
        f"alarms.raw: {len(sites)} alarms, {sum(fires.values())} events "
        f"({sum(fires.values()) - len(sites)} redelivered, absorbed downstream by triage dedup)"
    )


@needs_services(*ALARM_PATH)
async def test_broker_outage_end_to_end_no_lost_no_duplicated_incidents(
    private_broker: Any, stack: Any
) -> None:
    from alarmhub_sim import dc09
    from alarmhub_sim.sites import demo_sites

    prefix = new_prefix()
    await ensure_topics(private_broker.bootstrap, prefix=prefix)
    sites = demo_sites(BEFORE + DURING, seed=21, line="9", company="fault-broker")
    with alarm_path(private_broker.bootstrap, stack.redis_url, stack.database_url, prefix) as path:
        async with path.client() as client:
            await register(client, sites)
            await _outage(
                private_broker,
                sites,
                lambda s: lambda: dc09.send_one("127.0.0.1", path.dc09_port, s, "1", "110", "003"),
            )
            devices = await incidents_by_device(client, "fire", {s.device_id for s in sites}, timeout=90)
    sent = sorted(s.device_id for s in sites)
    assert not set(sent) - set(devices), f"lost alarms: {sorted(set(sent) - set(devices))}"
    assert sorted(devices) == sent, f"duplicated incidents: {len(devices) - len(sent)}"
