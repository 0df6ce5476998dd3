"""A GPS operator's platform forwards a stolen vehicle over JT/T 809; the police handle it through the API.

ingest-gps, triage and dispatch run in this process on ephemeral ports, on the real broker, Redis and
PostgreSQL. The platform and the vehicle are registered through the dispatch API. The lower platform is a
real TCP client: it logs in with SmallChi/JT809's published 0x1001 frame (JT809_0x1001PackageTest.cs
Test2, user 20180920 / password "20180920"), then forwards 0x1202 positions and a 0x1402 theft report
built by the codec — whose bodies are first checked byte for byte against the published ones
(JT809_0x1200_0x1202Test.cs Test2, AnalyzeTest.cs 0x1402). The alarm becomes an incident routed to the
station of the vehicle's position; the dispatcher then supervises the alarm (0x9401 → 0x1401) and
starts and stops the vehicle's tracking (0x9205 → 0x1205 and a position, 0x9206 → 0x1206) through the
vehicle-command API, and every answer lands on the incident's timeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from alarmhub_devstack import free_port
from alarmhub_dispatch.app import DispatchApp
from alarmhub_dispatch.config import DispatchSettings
from alarmhub_ingest_gps.app import GpsApp
from alarmhub_ingest_gps.config import GpsSettings
from alarmhub_ingest_gps.protocols import jt809 as p
from alarmhub_triage.app import TriageApp
from alarmhub_triage.config import TriageSettings
from prometheus_client import CollectorRegistry

# SmallChi/JT809 JT809_0x1001PackageTest.cs Test2: user 20180920, password "20180920", 127.0.0.1:809
LOGIN = bytes.fromhex(
    "5B000000480000008510010133EFB8010000000000270F0133EFB832303138303932303132372E302E302E31"
    "000000000000000000000000000000000000000000000003296A915D"
)
# SmallChi/JT809 JT809_0x1200_0x1202Test.cs Test2: 2012-07-19 15:15:15, lon 133.123456, lat 24.123456
BODY_1202 = bytes.fromhex("00130707DC0F0F0F07EF4D80017018400032003300000096002D002D0000000300000101")
# SmallChi/JT809 AnalyzeTest.cs: 0x1402 2011, warn type 0x000B, time 0x5BAA5B80, info id 3344, "gfdf454553"
BODY_1402 = bytes.fromhex("01000B000000005BAA5B8000000D100000000A67666466343534353533")

USER, CENTRE = 20180920, 20180920
PLATE, COLOUR = "粤B80901", 2
VEHICLE = f"{PLATE}:{COLOUR}"
# in Futian (福田区), as the walking skeleton's site
LAT, LON = 22.5410, 114.0550


def test_codec_reproduces_the_reference_frames() -> None:
    """The frames the platform below builds come from the codec that reproduces these published bytes."""
    login = p.encode_login(p.Login(USER, "20180920", "127.0.0.1", 809))
    assert p.encode(p.UP_CONNECT_REQ, login, serial=133, gnss_center_id=CENTRE, key=9999) == LOGIN
    when = datetime(2012, 7, 19, 7, 15, 15, tzinfo=UTC)
    assert (
        p.encode_position_2011(
            24.123456,
            133.123456,
            when,
            speed=50,
            vec2=51,
            mileage=150,
            heading=45,
            altitude=45,
            status=3,
            alarm=257,
        )
        == BODY_1202
    )
    assert p.encode_1402(0x000B, datetime.fromtimestamp(0x5BAA5B80, UTC), 3344, "gfdf454553") == BODY_1402


@dataclass
class Services:
    gps: GpsApp
    triage: TriageApp
    dispatch: DispatchApp
    token: str


@pytest.fixture
async def services(stack: Any, topic_prefix: str) -> AsyncIterator[Services]:
    common = dict(
        KAFKA_BOOTSTRAP=stack.kafka_bootstrap,
        DATABASE_URL=stack.database_url,
        REDIS_URL=stack.redis_url,
        ALARMHUB_TOPIC_PREFIX=topic_prefix,
        ALARMHUB_HEALTH_PORT=0,
    )
    registry = CollectorRegistry()
    command_port = free_port()  # dispatch is told ingest-gps's command URL at construction
    gps_settings = GpsSettings(
        **common,
        ALARMHUB_GPS_HOST="127.0.0.1",
        ALARMHUB_GPS_UNREGISTERED="accept",
        ALARMHUB_JT808_PORT=0,
        ALARMHUB_GT06_PORT=0,
        ALARMHUB_H02_PORT=0,
        ALARMHUB_JT809_PORT=0,
        ALARMHUB_GPS_COMMAND_PORT=command_port,
        ALARMHUB_JT809_PLATFORMS_REFRESH_S=0.2,
        ALARMHUB_GPS_REGISTRY_REFRESH_S=0.2,
        # the reference login names 127.0.0.1:809 as its down-link: requests use the main link
        ALARMHUB_JT809_SLAVE_LINK=False,
    )
    gps = GpsApp(gps_settings, registry)
    triage = TriageApp(TriageSettings(**common), CollectorRegistry())
    token = f"dev-{uuid.uuid4().hex}"
    dispatch = DispatchApp(
        DispatchSettings(
            **common,
            ALARMHUB_HTTP_HOST="127.0.0.1",
            ALARMHUB_HTTP_PORT=0,
            ALARMHUB_DEV_TOKEN=token,
            ALARMHUB_DEV_MODE=True,
            ALARMHUB_GPS_COMMAND_URL=f"http://127.0.0.1:{command_port}/commands",
        ),
        CollectorRegistry(),
    )
    await gps.start()
    try:
        await asyncio.gather(triage.start(), dispatch.start())
        yield Services(gps, triage, dispatch, token)
    finally:
        await dispatch.stop()
        await triage.stop()
        await gps.stop()


class LowerPlatform:
    """The operator's platform: the main link, frames from the codec, answers to requests sent down it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.framer = p.Framer()
        self.serial = 200
        self.replies: asyncio.Queue[p.Frame] = asyncio.Queue()
        self.requests: list[tuple[int, Any]] = []

    def send(self, msg_id: int, body: bytes) -> None:
        self.serial += 1
        self.writer.write(p.encode(msg_id, body, serial=self.serial, gnss_center_id=CENTRE))

    def position(self, lat: float, lon: float) -> None:
        body = p.encode_position_2011(lat, lon, datetime.now(UTC), speed=30, heading=90)
        self.send(p.UP_EXG_MSG, p.encode_vehicle(PLATE, COLOUR, p.UP_EXG_MSG_REAL_LOCATION, body))

    async def run(self) -> None:
        """Read the main link; answer 0x9205/0x9206 with 0x1205/0x1206 (plus a position) and 0x9401 with 0x1401."""
        while data := await self.reader.read(65536):
            for payload in self.framer.feed(data):
                frame = p.decode(payload)
                if frame.msg_id not in (p.DOWN_EXG_MSG, p.DOWN_WARN_MSG):
                    self.replies.put_nowait(frame)
                    continue
                vm = p.read(frame)
                assert vm.device_id == VEHICLE
                if vm.sub_type == p.DOWN_WARN_MSG_URGE_TODO_REQ:
                    sup = p.read(vm)
                    self.requests.append((vm.sub_type, sup))
                    self.send(
                        p.UP_WARN_MSG,
                        p.encode_vehicle(
                            PLATE,
                            COLOUR,
                            p.UP_WARN_MSG_URGE_TODO_ACK,
                            p.encode_1401(sup.supervision_id, 1),
                        ),
                    )
                elif vm.sub_type == p.DOWN_EXG_MSG_RETURN_STARTUP:
                    self.requests.append((vm.sub_type, vm.data))
                    self.send(
                        p.UP_EXG_MSG, p.encode_vehicle(PLATE, COLOUR, p.UP_EXG_MSG_RETURN_STARTUP_ACK, b"")
                    )
                    self.position(LAT + 0.001, LON + 0.001)
                elif vm.sub_type == p.DOWN_EXG_MSG_RETURN_END:
                    self.requests.append((vm.sub_type, vm.data))
                    self.send(p.UP_EXG_MSG, p.encode_vehicle(PLATE, COLOUR, p.UP_EXG_MSG_RETURN_END_ACK, b""))
            await self.writer.drain()


async def test_platform_alarm_becomes_a_routed_incident_and_requests_go_down(services: Services) -> None:
    t0 = time.monotonic()
    api = f"http://127.0.0.1:{services.dispatch.http_port}"
    async with httpx.AsyncClient(
        base_url=api, headers={"Authorization": f"Bearer {services.token}"}, timeout=20
    ) as client:
        r = await client.post(
            "/api/v1/registry/platforms",
            json={"user_id": USER, "password": "20180920", "gnss_center_id": CENTRE, "name": "e2e-operator"},
        )
        assert r.status_code == 201, r.text
        r = await client.post(
            "/api/v1/registry/vehicles",
            json={
                "device_id": VEHICLE,
                "protocol": "jt809",
                "plate": PLATE,
                "plate_colour": COLOUR,
            },
        )
        assert r.status_code == 201, r.text
        for _ in range(100):  # ingest-gps re-reads the registries every 0.2 s here
            if USER in services.gps.platforms.by_user and services.gps.registry.get(VEHICLE) is not None:
                break
            await asyncio.sleep(0.05)

        reader, writer = await asyncio.open_connection("127.0.0.1", services.gps.ports["jt809"])
        platform = LowerPlatform(reader, writer)
        reading = asyncio.create_task(platform.run())
        try:
            writer.write(LOGIN)  # the published login frame, as is
            rsp = await asyncio.wait_for(platform.replies.get(), 10)
            assert rsp.msg_id == p.UP_CONNECT_RSP and p.read(rsp)[0] == p.LOGIN_OK

            since_at = datetime.now(UTC) - timedelta(seconds=1)
            since = since_at.isoformat()
            for i in range(3):
                platform.position(LAT - 0.0005 * (2 - i), LON)
            platform.send(
                p.UP_WARN_MSG,
                p.encode_vehicle(
                    PLATE,
                    COLOUR,
                    p.UP_WARN_MSG_ADPT_INFO,
                    p.encode_1402(0x0009, datetime.now(UTC), 77, "盗警 e2e"),
                ),
            )
            await writer.drain()

            incident = None
            while incident is None and time.monotonic() - t0 < 15:
                r = await client.get("/api/v1/incidents", params={"since": since})
                # earlier tests' open incidents, escalated by this dispatch, also match ``since``: ours opened after it
                incident = next(
                    (
                        i
                        for i in r.json()["items"]
                        if i["kind"] == "vehicle_theft" and datetime.fromisoformat(i["opened_at"]) >= since_at
                    ),
                    None,
                )
                if incident is None:
                    await asyncio.sleep(0.1)
            assert incident is not None, "the platform's theft report never became an incident"
            expected = services.dispatch.dispatcher.router.route(LON, LAT).station  # type: ignore[union-attr]
            assert incident["district"] == "440304" and incident["station"] == expected
            assert str(expected).startswith("440304")
            detail = (await client.get(f"/api/v1/incidents/{incident['id']}")).json()
            event = detail["events"][0]
            event = event.get("event", event)
            assert event["source"] == {
                **event["source"],
                "protocol": "jt809",
                "device_id": VEHICLE,
                "platform": "e2e-operator",
            }
            assert event["attributes"]["registered"] is True and event["attributes"]["warn_type"] == 9
            assert event["location"]["lat"] == pytest.approx(LAT, abs=1e-5)

            cmd = f"/api/v1/incidents/{incident['id']}/vehicle-command"
            r = await client.post(
                cmd, json={"command": "supervise", "params": {"tel": "110"}, "timeout_s": 10}
            )
            assert r.status_code == 200, r.text
            sup = r.json()["reply"]
            assert sup["status"] == "ok" and sup["ack"] == "0x1401" and sup["result_name"] == "handled"
            assert sup["via"] == "main" and sup["platform"] == "e2e-operator"
            sent = platform.requests[-1][1]
            assert (sent.supervision_id, sent.warn_type, sent.supervisor, sent.tel) == (
                sup["supervision_id"],
                0x0009,
                "dev-admin",
                "110",
            )

            r = await client.post(cmd, json={"command": "track", "timeout_s": 10})
            assert r.status_code == 200, r.text
            track = r.json()["reply"]
            assert track["status"] == "ok" and track["ack"] == "0x1205"
            assert track["position"]["lat"] == pytest.approx(LAT + 0.001, abs=1e-5)
            r = await client.post(cmd, json={"command": "track_stop", "timeout_s": 10})
            assert r.status_code == 200 and r.json()["reply"]["ack"] == "0x1206", r.text
            assert [s for s, _ in platform.requests] == [0x9401, 0x9205, 0x9206]

            r = await client.post(cmd, json={"command": "query_position"})
            assert r.status_code == 409, r.text  # a platform-forwarded vehicle has no single-position query

            # the platform answers the supervision again later (nobody waits for it any more): ingest-gps
            # puts it on devices.status and dispatch appends it to the vehicle's incident
            platform.send(
                p.UP_WARN_MSG,
                p.encode_vehicle(
                    PLATE,
                    COLOUR,
                    p.UP_WARN_MSG_URGE_TODO_ACK,
                    p.encode_1401(sup["supervision_id"], 1),
                ),
            )
            await writer.drain()
            late: list[dict[str, Any]] = []
            while not late and time.monotonic() - t0 < 30:
                timeline = (await client.get(f"/api/v1/incidents/{incident['id']}")).json()["timeline"]
                late = [e for e in timeline if "vehicle_command_answer" in (e["data"] or {})]
                if not late:
                    await asyncio.sleep(0.1)
            assert [
                (
                    e["actor"]["user"],
                    e["data"]["vehicle_command_answer"]["supervision_id"],
                    e["data"]["vehicle_command_answer"]["result_text"],
                )
                for e in late
            ] == [("system:ingest-gps", sup["supervision_id"], "handled")]

            timeline = (await client.get(f"/api/v1/incidents/{incident['id']}")).json()["timeline"]
            recorded = [
                e["data"]["vehicle_command"] for e in timeline if "vehicle_command" in (e["data"] or {})
            ]
            assert [(c["command"], c["reply"]["status"]) for c in recorded] == [
                ("supervise", "ok"),
                ("track", "ok"),
                ("track_stop", "ok"),
            ]
            assert recorded[0]["reply"]["result"] == 1 and recorded[0]["params"]["warn_type"] == 9
            # each request went to the gateway holding the link (owner:jt809:<user id>, found by the
            # platform's registry name), not to the configured URL
            lookups = {
                s.labels["outcome"]: s.value
                for m in services.dispatch.metrics.gps_owner_lookups.collect()
                for s in m.samples
                if s.name.endswith("_total")
            }
            assert lookups.get("routed") == 3 and not lookups.get("fallback"), lookups
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reading
            writer.close()
    print(f"\nJT/T 809 e2e: login → incident → three requests answered in {time.monotonic() - t0:.1f} s")
