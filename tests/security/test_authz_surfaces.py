"""The matrix's surfaces outside dispatch's OpenAPI (``authz_matrix.py``): ingest-camera's HTTP intake, the
GPS gateway's command port and the health port of every service, against the services started in-process
as ``serve()`` starts them (real broker, Redis, PostgreSQL), over real sockets.

Each surface's route table is compared with the matrix: a route served without an entry fails here, as a
dispatch route does in ``test_authz_matrix.py``. Camera pushes come through a trusted proxy (the test's
own address) so that the sender's address is the one the call names: a stranger's, or the camera's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from alarmhub_dispatch.app import DispatchApp
from alarmhub_dispatch.config import DispatchSettings
from alarmhub_ingest_camera.app import CameraApp
from alarmhub_ingest_camera.config import CameraSettings
from alarmhub_ingest_camera.intake_tokens import new_intake_token
from alarmhub_ingest_camera.protocols.webhook import sign
from alarmhub_ingest_contactid.app import ContactIdApp
from alarmhub_ingest_contactid.config import ContactIdSettings
from alarmhub_ingest_gps.app import COMMAND_ROUTES, GpsApp
from alarmhub_ingest_gps.config import GpsSettings
from alarmhub_runtime import HealthServer
from alarmhub_triage.app import TriageApp
from alarmhub_triage.config import TriageSettings
from fastapi.routing import iter_route_contexts
from prometheus_client import CollectorRegistry

from .authz_matrix import (
    CAMERA_CALLERS,
    CAMERA_COMMAND_CALLERS,
    CAMERA_COMMAND_PORT,
    CAMERA_INTAKE,
    GPS_COMMAND_CALLERS,
    GPS_COMMAND_PORT,
    HEALTH_CALLERS,
    HEALTH_PORT,
    HEALTH_SERVICES,
)

ROOT = Path(__file__).resolve().parents[2]
STRANGER = "203.0.113.66"  # documentation address: registered to no camera
ALPHA, BRAVO = "alpha-matrix-secret", "bravo-matrix-secret"
ISAPI_XML = (
    '<EventNotificationAlert version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">'
    "<ipAddress>{ip}</ipAddress><portNo>80</portNo><protocol>HTTP</protocol><macAddress>{mac}</macAddress>"
    "<channelID>1</channelID><dateTime>2026-07-16T13:48:26+08:00</dateTime><activePostCount>1</activePostCount>"
    "<eventType>VMD</eventType><eventState>active</eventState><eventDescription>Motion alarm</eventDescription>"
    "</EventNotificationAlert>"
)
ONVIF_NOTIFY = b"""<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2"
 xmlns:tt="http://www.onvif.org/ver10/schema"><s:Body><wsnt:Notify><wsnt:NotificationMessage>
<wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">tns1:RuleEngine/CellMotionDetector/Motion</wsnt:Topic>
<wsnt:Message><tt:Message UtcTime="2026-07-16T05:48:26Z" PropertyOperation="Changed">
<tt:Source><tt:SimpleItem Name="VideoSourceConfigurationToken" Value="vsc1"/></tt:Source>
<tt:Data><tt:SimpleItem Name="IsMotion" Value="true"/></tt:Data></tt:Message></wsnt:Message>
</wsnt:NotificationMessage></wsnt:Notify></s:Body></s:Envelope>"""


@dataclass
class Camera:
    id: str
    ip: str
    mac: str
    token: str


@dataclass
class Surfaces:
    camera: CameraApp
    gps: GpsApp
    dispatch: DispatchApp
    health: dict[str, HealthServer]
    user_token: str  # a dispatch city supervisor's token
    own: Camera  # registered to integrator alpha
    other: Camera  # registered to integrator bravo
    n: int = 0

    def key(self) -> str:
        self.n += 1
        return f"matrix-{self.own.id}-{self.n}"


def _camera(tag: str, name: str) -> Camera:
    r = random.Random(f"{tag}{name}")
    mac = "02:" + ":".join(f"{r.randrange(256):02x}" for _ in range(5))
    return Camera(
        f"authz-{name}-{tag}", f"10.250.{r.randrange(256)}.{r.randrange(1, 255)}", mac, new_intake_token()
    )


async def _register(database_url: str, cams: list[tuple[Camera, str]]) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        for cam, integrator in cams:
            await conn.execute(
                "INSERT INTO cameras (id, name, lat, lon, mac, ip, channel, integrator, intake_token_sha256)"
                " VALUES ($1, $1, 22.5, 114.0, $2, $3, 1, $4, encode(sha256($5::bytea), 'hex'))",
                cam.id,
                cam.mac,
                cam.ip,
                integrator,
                cam.token.encode(),
            )
    finally:
        await conn.close()


class _Services:
    """Services started as ``alarmhub_runtime.serve`` starts them: the health server, its checks, the app."""

    def __init__(self, stack: contextlib.AsyncExitStack) -> None:
        self.stack = stack
        self.health: dict[str, HealthServer] = {}

    async def start(self, name: str, build: Callable[[CollectorRegistry], Any]) -> Any:
        registry = CollectorRegistry()
        health = HealthServer(registry, "127.0.0.1", 0)
        app = build(registry)
        app.add_checks(health)
        await health.start()
        self.stack.push_async_callback(health.stop)
        await app.start()
        self.stack.push_async_callback(app.stop)
        self.health[name] = health
        return app


@pytest_asyncio.fixture(scope="module")
async def surfaces(stack: Any) -> AsyncIterator[Surfaces]:
    from alarmhub_devstack.testing import new_prefix
    from alarmhub_kafka import ensure_topics

    prefix = new_prefix()
    await ensure_topics(stack.kafka_bootstrap, prefix=prefix)
    tag = uuid.uuid4().hex[:10]
    own, other = _camera(tag, "own"), _camera(tag, "other")
    await _register(stack.database_url, [(own, "alpha"), (other, "bravo")])
    base = {
        "KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
        "DATABASE_URL": stack.database_url,
        "REDIS_URL": stack.redis_url,
        "ALARMHUB_TOPIC_PREFIX": prefix,
        "ALARMHUB_HEALTH_PORT": 0,
    }
    command_token, dev = f"cmd-{uuid.uuid4().hex}", f"dev-{uuid.uuid4().hex}"
    async with contextlib.AsyncExitStack() as es:
        svc = _Services(es)
        gps = await svc.start("ingest-gps", lambda reg: GpsApp(
            GpsSettings(**base, ALARMHUB_GPS_HOST="127.0.0.1", ALARMHUB_JT808_PORT=0, ALARMHUB_GT06_PORT=0,
                        ALARMHUB_H02_PORT=0, ALARMHUB_JT809_PORT=0, ALARMHUB_GPS_COMMAND_PORT=0,
                        ALARMHUB_GPS_COMMAND_TOKEN=command_token), reg))  # fmt: skip
        dispatch = await svc.start("dispatch", lambda reg: DispatchApp(
            DispatchSettings(**base, ALARMHUB_HTTP_PORT=0, ALARMHUB_HTTP_HOST="127.0.0.1",
                             ALARMHUB_DEV_TOKEN=dev, ALARMHUB_DEV_MODE=True,
                             ALARMHUB_GPS_COMMAND_URL=f"http://127.0.0.1:{gps.ports['command']}/commands",
                             ALARMHUB_GPS_COMMAND_TOKEN=command_token), reg))  # fmt: skip
        camera = await svc.start("ingest-camera", lambda reg: CameraApp(
            CameraSettings(**base, ALARMHUB_CAMERA_HOST="127.0.0.1", ALARMHUB_CAMERA_HTTP_PORT=0,
                           ALARMHUB_SIP_HOST="127.0.0.1", ALARMHUB_SIP_PORT=0, ALARMHUB_ONVIF_MODE="off",
                           ALARMHUB_CAMERA_COMMAND_PORT=0, ALARMHUB_CAMERA_COMMAND_TOKEN=command_token,
                           ALARMHUB_WEBHOOK_SECRETS=f"alpha={ALPHA},bravo={BRAVO}",
                           ALARMHUB_CAMERA_TRUSTED_PROXIES="127.0.0.1"), reg))  # fmt: skip
        await svc.start("ingest-contactid", lambda reg: ContactIdApp(
            ContactIdSettings(**base, ALARMHUB_DC09_HOST="127.0.0.1", ALARMHUB_DC09_PORT=0), reg))  # fmt: skip
        await svc.start("triage", lambda reg: TriageApp(TriageSettings(**base), reg))
        yield Surfaces(camera, gps, dispatch, svc.health, dev, own, other)


def _check(callers: tuple[str, ...], expected: tuple[str, ...], got: dict[str, str]) -> list[str]:
    return [f"{c}: {got[c]}, matrix says {e}" for c, e in zip(callers, expected, strict=True) if got[c] != e]


# -- ingest-camera -----------------------------------------------------------------------------------
def _camera_headers(s: Surfaces, caller: str, body: bytes, key: str) -> dict[str, str]:
    sender = s.own.ip if caller == "camera_address" else STRANGER
    headers = {"X-Forwarded-For": sender, "Idempotency-Key": key}
    bearer = {"other_camera": s.other.token, "camera_token": s.own.token, "user": s.user_token}.get(caller)
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    if caller in ("integrator", "other_integrator"):
        name, secret = ("alpha", ALPHA) if caller == "integrator" else ("bravo", BRAVO)
        ts = int(time.time())
        headers |= {
            "X-Alarmhub-Integrator": name,
            "X-Alarmhub-Timestamp": str(ts),
            "X-Alarmhub-Signature": sign(secret.encode(), ts, body, key),
        }
    return headers


def _camera_request(s: Surfaces, path: str) -> tuple[str, bytes, str]:
    """(path with query, body, content type) of a push that names the own camera."""
    if path == "/events/isapi":
        return path, ISAPI_XML.format(ip=s.own.ip, mac=s.own.mac).encode(), "application/xml"
    if path == "/events/onvif":
        return f"{path}?camera={s.own.id}", ONVIF_NOTIFY, "application/soap+xml"
    body = json.dumps({"camera_id": s.own.id, "event": "intrusion", "rule": "fence"}).encode()
    return path, body, "application/json"


async def test_camera_intake_routes_are_the_matrix(surfaces: Surfaces) -> None:
    assert surfaces.camera._uvicorn is not None
    app = surfaces.camera._uvicorn.config.app
    served = {(m, r.path) for r in iter_route_contexts(app.routes) for m in (r.methods or set()) - {"HEAD"}}
    assert served == set(CAMERA_INTAKE), "ingest-camera routes without an entry, or entries without a route"


@pytest.mark.parametrize("route", sorted(CAMERA_INTAKE), ids=lambda r: f"{r[0]} {r[1]}")
async def test_camera_intake_answers_every_caller_as_the_matrix_says(
    surfaces: Surfaces, route: tuple[str, str]
) -> None:
    got = {}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{surfaces.camera.http_port}", timeout=20) as c:
        for caller in CAMERA_CALLERS:
            path, body, ctype = _camera_request(surfaces, route[1])
            headers = _camera_headers(surfaces, caller, body, surfaces.key()) | {"Content-Type": ctype}
            got[caller] = str((await c.request(route[0], path, content=body, headers=headers)).status_code)
    assert _check(CAMERA_CALLERS, CAMERA_INTAKE[route], got) == []


# -- ingest-camera's command port --------------------------------------------------------------------
async def test_camera_command_port_answers_every_caller_as_the_matrix_says(surfaces: Surfaces) -> None:
    assert surfaces.camera._commands is not None
    app = surfaces.camera._commands.config.app
    served = {(m, r.path) for r in iter_route_contexts(app.routes) for m in (r.methods or set()) - {"HEAD"}}
    assert served == set(CAMERA_COMMAND_PORT), "command routes without an entry, or the reverse"
    assert surfaces.camera.settings.command_token is not None
    tokens = {
        "anon": None,
        "user": surfaces.user_token,
        "wrong_token": f"cmd-{uuid.uuid4().hex}",
        "dispatch": surfaces.camera.settings.command_token.get_secret_value(),
    }
    body = {"device_id": "34020000001320009999", "timeout_s": 1}
    wrong = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{surfaces.camera.command_port}") as c:
        for (method, path), cells in CAMERA_COMMAND_PORT.items():
            got = {}
            for caller, token in tokens.items():
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                got[caller] = str((await c.request(method, path, json=body, headers=headers)).status_code)
            wrong += _check(CAMERA_COMMAND_CALLERS, cells, got)
        # what is not a route, or a body that does not parse: nothing (401) for anyone without the token
        assert (await c.post("/admin", json=body)).status_code == 401
        assert (await c.post("/gb28181/catalog", content=b"{")).status_code == 401
    assert wrong == []


# -- the GPS gateway's command port ------------------------------------------------------------------
async def test_gps_command_port_answers_every_caller_as_the_matrix_says(surfaces: Surfaces) -> None:
    assert set(COMMAND_ROUTES) == set(GPS_COMMAND_PORT), "command routes without an entry, or the reverse"
    tokens = {
        "anon": None,
        "user": surfaces.user_token,
        "wrong_token": f"cmd-{uuid.uuid4().hex}",
        "dispatch": surfaces.dispatch.settings.gps_command_token.get_secret_value(),
    }
    body = {"device_id": "013900000000", "command": "query_position", "timeout_s": 1}
    wrong = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{surfaces.gps.ports['command']}") as c:
        for (method, path), cells in GPS_COMMAND_PORT.items():
            got = {}
            for caller, token in tokens.items():
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                got[caller] = str((await c.request(method, path, json=body, headers=headers)).status_code)
            wrong += _check(GPS_COMMAND_CALLERS, cells, got)
        # what is not a route: 404 for dispatch, and nothing (401) for anyone else
        other = {"Authorization": f"Bearer {tokens['dispatch']}"}
        assert (await c.get("/commands", headers=other)).status_code == 404
        assert (await c.post("/admin", json=body)).status_code == 401
    assert wrong == []
    # and dispatch's own client carries the credential: the gateway answers it (the terminal is offline)
    assert surfaces.dispatch.dispatcher is not None and surfaces.dispatch.dispatcher.commands is not None
    reply = await surfaces.dispatch.dispatcher.commands.send("013900000000", "query_position", {}, 1.0)
    assert reply["status"] == "not_connected", reply


# -- the health port of every service ----------------------------------------------------------------
async def test_health_port_of_every_service_as_the_matrix_says(surfaces: Surfaces) -> None:
    services = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "pyproject.toml").exists())
    assert sorted(HEALTH_SERVICES) == services == sorted(surfaces.health), "a service without its health port"
    assert set(HealthServer.PATHS) == {p for _, p in HEALTH_PORT}, "health paths without an entry"
    tokens = {"anon": None, "user": surfaces.user_token}
    wrong = []
    for name, health in surfaces.health.items():
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{health.port}", timeout=10) as h:
            for _ in range(300):  # readiness: the consumers' groups joined, bounded (~30 s)
                if (await h.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.1)
            for (method, path), cells in HEALTH_PORT.items():
                got = {}
                for caller, token in tokens.items():
                    headers = {"Authorization": f"Bearer {token}"} if token else {}
                    got[caller] = str((await h.request(method, path, headers=headers)).status_code)
                wrong += [f"{name} {path} {w}" for w in _check(HEALTH_CALLERS, cells, got)]
            assert (await h.get("/api/v1/incidents")).status_code == 404, name
            assert (await h.post("/metrics")).status_code == 405, name
    assert wrong == []
