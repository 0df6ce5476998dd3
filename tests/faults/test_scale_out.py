"""Horizontal scale: two triage and two dispatch processes in one consumer group each share the partitions,
and ordering per source holds — an alarm and then its restore from the same account land, in that order,
on one incident; every alarm becomes exactly one incident.

Why the restore proves ordering: triage lets a restore join an open incident but never open one, so a
restore handled before its alarm (another instance, a reordered partition) would be dropped and the
incident would hold one event instead of [alarm, restore].
"""

from __future__ import annotations

import asyncio
import re
import urllib.request
from collections import Counter
from typing import Any

import httpx
import pytest
from alarmhub_devstack.testing import ServiceProcess, new_prefix, service_env, wait_http
from alarmhub_kafka import ensure_topics

from .conftest import ALARM_PATH, DEV_TOKEN, incidents_by_device, needs_services, register

pytestmark = [pytest.mark.drill, pytest.mark.slow, pytest.mark.e2e, needs_services(*ALARM_PATH)]

N = 24


class _Addr:
    def __init__(self, stack: Any) -> None:
        self.kafka_bootstrap, self.redis_url, self.database_url = (
            stack.kafka_bootstrap,
            stack.redis_url,
            stack.database_url,
        )


def partitions_consumed(proc: ServiceProcess, topic: str) -> set[int]:
    """Partitions of ``topic`` this process committed offsets for (its lag gauge has a series per partition)."""
    with urllib.request.urlopen(proc.health_url + "/metrics", timeout=5) as r:
        text = r.read().decode()
    pat = re.compile(
        r'^alarmhub_kafka_consumer_lag_messages\{[^}]*partition="(\d+)"[^}]*topic="'
        + re.escape(topic)
        + r'"',
        re.M,
    )
    return {int(p) for p in pat.findall(text)}


async def test_two_triage_and_two_dispatch_share_partitions_and_keep_order(stack: Any) -> None:
    from alarmhub_sim import dc09
    from alarmhub_sim.sites import demo_sites

    prefix = new_prefix()
    await ensure_topics(stack.kafka_bootstrap, prefix=prefix)
    env = service_env(_Addr(stack), prefix, ALARMHUB_DEV_TOKEN=DEV_TOKEN, ALARMHUB_DEV_MODE="1")
    procs: list[ServiceProcess] = []
    try:

        def start(module: str, ports: tuple[str, ...] = ()) -> ServiceProcess:
            p = ServiceProcess.create(module, env, ports).start(wait_ready=False)
            procs.append(p)
            return p

        dispatch = [start("alarmhub_dispatch", ("ALARMHUB_HTTP_PORT",)) for _ in range(2)]
        triage = [start("alarmhub_triage") for _ in range(2)]
        contactid = start("alarmhub_ingest_contactid", ("ALARMHUB_DC09_PORT",))
        await asyncio.gather(
            *(asyncio.to_thread(wait_http, p.health_url + "/readyz", 60.0, p.proc) for p in procs)
        )
        api = f"http://127.0.0.1:{dispatch[1].ports['ALARMHUB_HTTP_PORT']}"

        sites = demo_sites(N, seed=77, line="5", company="scale-out")
        async with httpx.AsyncClient(
            base_url=api, headers={"Authorization": f"Bearer {DEV_TOKEN}"}, timeout=10
        ) as client:
            await register(client, sites)
            port = contactid.ports["ALARMHUB_DC09_PORT"]

            async def alarm_then_restore(site: Any, delay: float) -> list[str]:
                await asyncio.sleep(delay)
                panel = dc09.Panel(site, "127.0.0.1", port, ack_timeout_s=5.0, retries=3)
                stats: Counter[str] = Counter()
                try:  # burglary (E130) then its restore (R130), as a panel reports them, one after the other
                    first = await panel.send("ADM-CID", f"#{site.account}|1130 01 004", stats)
                    await asyncio.sleep(0.3)
                    second = await panel.send("ADM-CID", f"#{site.account}|3130 01 004", stats)
                finally:
                    await panel.close()
                return [first, second]

            await asyncio.sleep(2.0)  # let both groups settle their rebalance
            replies = await asyncio.gather(*(alarm_then_restore(s, 0.15 * i) for i, s in enumerate(sites)))
            assert all(r == ["ACK", "ACK"] for r in replies), replies

            devices = await incidents_by_device(client, "burglary", {s.device_id for s in sites}, timeout=90)
            assert not {s.device_id for s in sites} - set(devices), "lost alarms"
            assert sorted(devices) == sorted(s.device_id for s in sites), "duplicated incidents"

            # each incident holds the alarm and then its restore, in that order
            listed = (await client.get("/api/v1/incidents", params={"limit": 1000})).json()["items"]
            ours = {s.device_id for s in sites}
            orders: dict[str, list[str]] = {}
            for inc in listed:
                if inc["kind"] != "burglary" or inc["source_device_id"] not in ours:
                    continue
                detail = (await client.get(f"/api/v1/incidents/{inc['id']}")).json()
                orders[inc["source_device_id"]] = [e["event"]["qualifier"] for e in detail["events"]]
            for _ in range(40):  # a restore may still be on its way through the second instance
                if all(o == ["new", "restore"] for o in orders.values()) and len(orders) == N:
                    break
                await asyncio.sleep(0.25)
                for inc in listed:
                    dev = inc["source_device_id"]
                    if dev in orders and orders[dev] != ["new", "restore"]:
                        detail = (await client.get(f"/api/v1/incidents/{inc['id']}")).json()
                        orders[dev] = [e["event"]["qualifier"] for e in detail["events"]]
            assert len(orders) == N and all(o == ["new", "restore"] for o in orders.values()), orders

        # both instances of each group owned partitions; together they covered what carried traffic
        for group, topic in ((triage, "alarms.raw"), (dispatch, "alarms.triaged")):
            owned = [partitions_consumed(p, prefix + topic) for p in group]
            assert all(owned), f"an instance of {group[0].module} got no partition of {topic}: {owned}"
    finally:
        await asyncio.gather(*(asyncio.to_thread(p.stop) for p in procs))
