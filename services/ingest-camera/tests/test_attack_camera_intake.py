"""Attack: forged camera pushes (docs/security.md, "Camera intake").

Before: ISAPI and ONVIF accepted any sender; an ISAPI body naming a registered camera's MAC, or
``/events/onvif?camera=<id>``, inherited that camera's place in the registry, so anyone could raise an
alarm "at" any camera. The webhook's idempotency key was not signed (a captured request replayed under a
fresh key made a second event) and one secret served every integrator. Now (the production default
``ALARMHUB_CAMERA_INTAKE_AUTH=registered``) a push speaks for a camera only with the camera's intake
token or from its registered address, and webhooks are signed per integrator over the key too.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest_asyncio
from alarmhub_ingest_camera import intake_tokens
from alarmhub_ingest_camera.app import CameraApp
from alarmhub_ingest_camera.config import CameraSettings
from alarmhub_ingest_camera.protocols.webhook import sign
from alarmhub_kafka import DurableProducer, KafkaMetrics
from prometheus_client import CollectorRegistry

from .test_camera_service import ISAPI_CAMERA, _seed
from .test_isapi import LIVE_BLOCK
from .test_onvif import NOTIFY_CELL_MOTION

LOCAL_CAMERA = "44030500001320000177"  # registered at 127.0.0.1, the test's own address
ALPHA_CAMERA, BRAVO_CAMERA = "44030500001320000178", "44030500001320000179"  # webhook cameras, one each
ALPHA, BRAVO = "alpha-integrator-secret", "bravo-integrator-secret"


@pytest_asyncio.fixture
async def camera(stack: Any, topic_prefix: str) -> AsyncIterator[CameraApp]:
    await _seed(stack.database_url)
    conn = await asyncpg.connect(stack.database_url)
    try:
        await conn.execute(
            "INSERT INTO cameras (id, name, lat, lon, ip, unit) VALUES ($1, 'Local', 22.5, 114.0, '127.0.0.1',"
            " 'T-s1') ON CONFLICT (id) DO UPDATE SET ip = '127.0.0.1'",
            LOCAL_CAMERA,
        )
        await conn.executemany(
            "INSERT INTO cameras (id, name, lat, lon, unit, integrator) VALUES ($1, $1, 22.5, 114.0, 'T-s1', $2)"
            " ON CONFLICT (id) DO UPDATE SET integrator = $2",
            [(ALPHA_CAMERA, "alpha"), (BRAVO_CAMERA, "bravo")],
        )
    finally:
        await conn.close()
    settings = CameraSettings(
        KAFKA_BOOTSTRAP=stack.kafka_bootstrap,
        DATABASE_URL=stack.database_url,
        REDIS_URL=stack.redis_url,
        ALARMHUB_TOPIC_PREFIX=topic_prefix,
        ALARMHUB_CAMERA_HOST="127.0.0.1",
        ALARMHUB_CAMERA_HTTP_PORT=0,
        ALARMHUB_SIP_HOST="127.0.0.1",
        ALARMHUB_SIP_PORT=0,
        ALARMHUB_HEALTH_PORT=0,
        ALARMHUB_WEBHOOK_SECRETS=f"alpha={ALPHA},bravo={BRAVO}",
        ALARMHUB_ONVIF_MODE="off",
        ALARMHUB_CAMERA_REGISTRY_CACHE_S=0.01,
    )
    registry = CollectorRegistry()
    producer = DurableProducer.from_settings(settings, metrics=KafkaMetrics(registry), client_id="cam-attack")
    app = CameraApp(settings, registry, producer=producer)
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


async def test_forged_isapi_and_onvif_pushes_are_refused(
    camera: CameraApp, stack: Any, topic_prefix: str, consume_topic: Any, capsys: Any
) -> None:
    xml = {"Content-Type": "multipart/form-data; boundary=boundary"}  # LIVE_BLOCK is a multipart part
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{camera.http_port}") as client:
        # the body names a registered camera (MAC d4:e8:53:87:c0:5c, at 192.168.0.7): we are not it
        forged = await client.post("/events/isapi", content=LIVE_BLOCK, headers=xml)
        # ?camera= claims the same camera; and a made-up token
        claimed = await client.post(f"/events/onvif?camera={ISAPI_CAMERA}", content=NOTIFY_CELL_MOTION)
        bad_token = await client.post("/events/isapi?token=cam_guess", content=LIVE_BLOCK, headers=xml)
        # the camera at our own address may push, but may not claim another camera's id
        local = await client.post(f"/events/onvif?camera={LOCAL_CAMERA}", content=NOTIFY_CELL_MOTION)
        assert await intake_tokens.run(stack.database_url, "issue", LOCAL_CAMERA) == 0
        local_token = capsys.readouterr().out.strip().splitlines()[-1].splitlines()[-1]
        cross = await client.post(
            f"/events/onvif?camera={ISAPI_CAMERA}",
            content=NOTIFY_CELL_MOTION,
            headers={"Authorization": f"Bearer {local_token}"},
        )
        # the real camera, behind NAT, with its own token
        assert await intake_tokens.run(stack.database_url, "issue", ISAPI_CAMERA) == 0
        token = capsys.readouterr().out.strip().splitlines()[-1]
        real = await client.post(f"/events/isapi?token={token}", content=LIVE_BLOCK, headers=xml)
    assert [r.status_code for r in (forged, claimed, bad_token, cross)] == [403, 403, 403, 403]
    assert local.status_code == 200 and real.status_code == 200
    events = await consume_topic(topic_prefix, "alarms.raw", 2, timeout=20)
    assert sorted(e["source"]["device_id"] for e in events) == sorted([LOCAL_CAMERA, ISAPI_CAMERA])


def _signed(secret: str, body: bytes, key: str, integrator: str) -> dict[str, str]:
    ts = int(time.time())
    return {
        "Content-Type": "application/json",
        "X-Alarmhub-Integrator": integrator,
        "X-Alarmhub-Timestamp": str(ts),
        "X-Alarmhub-Signature": sign(secret.encode(), ts, body, key),
        "Idempotency-Key": key,
    }


async def test_webhook_replay_under_a_fresh_key_and_cross_integrator_keys(
    camera: CameraApp, topic_prefix: str, consume_topic: Any
) -> None:
    body = json.dumps({"camera_id": ALPHA_CAMERA, "event": "intrusion", "rule": "fence"}).encode()
    key = f"{topic_prefix}evt"
    headers = _signed(ALPHA, body, key, "alpha")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{camera.http_port}") as client:
        ok = await client.post("/events/webhook", content=body, headers=headers)
        replayed = await client.post(
            "/events/webhook", content=body, headers={**headers, "Idempotency-Key": key + "-again"}
        )
        # bravo signing with alpha's name, and an integrator nobody configured
        wrong_secret = await client.post(
            "/events/webhook", content=body, headers=_signed(BRAVO, body, key + "-b", "alpha")
        )
        nobody = await client.post(
            "/events/webhook", content=body, headers=_signed(BRAVO, body, key + "-c", "charlie")
        )
        # bravo's event under the same key as alpha's is bravo's own, not a "duplicate" of alpha's
        other = body.replace(ALPHA_CAMERA.encode(), BRAVO_CAMERA.encode())
        bravo = await client.post(
            "/events/webhook", content=other, headers=_signed(BRAVO, other, key, "bravo")
        )
    assert ok.status_code == 200 and ok.json()["published"] == 1
    assert (replayed.status_code, wrong_secret.status_code, nobody.status_code) == (401, 401, 401)
    assert bravo.status_code == 200 and bravo.json()["published"] == 1
    events = await consume_topic(topic_prefix, "alarms.raw", 2, timeout=20)
    assert sorted(e["attributes"]["integrator"] for e in events) == ["alpha", "bravo"]


async def test_webhook_integrator_speaks_only_for_its_own_cameras(
    camera: CameraApp, topic_prefix: str, consume_topic: Any
) -> None:
    """Before: any integrator's valid signature pushed events for any camera id it named in the body, so
    integrator A could raise alarms at integrator B's (or the police network's) cameras."""

    def body(camera_id: str, rule: str) -> bytes:
        return json.dumps({"camera_id": camera_id, "event": "intrusion", "rule": rule}).encode()

    refused_before = camera.metrics.requests.labels("webhook", "unauthorized")._value.get()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{camera.http_port}") as client:

        async def push(camera_id: str, n: int) -> httpx.Response:
            b = body(camera_id, f"{topic_prefix}r{n}")
            return await client.post(
                "/events/webhook", content=b, headers=_signed(ALPHA, b, f"{topic_prefix}k{n}", "alpha")
            )

        on_bravos = await push(BRAVO_CAMERA, 1)  # alpha's signature, bravo's camera
        on_unbound = await push(ISAPI_CAMERA, 2)  # a registered camera no integrator was given
        on_unknown = await push(f"{topic_prefix}nocam", 3)  # not registered at all
        own = await push(ALPHA_CAMERA, 4)
    for r, cam in (
        (on_bravos, BRAVO_CAMERA),
        (on_unbound, ISAPI_CAMERA),
        (on_unknown, f"{topic_prefix}nocam"),
    ):
        assert r.status_code == 403
        assert r.json()["error"] == f"camera {cam!r} is not registered to integrator 'alpha'"
    assert own.status_code == 200 and own.json()["published"] == 1
    assert camera.metrics.requests.labels("webhook", "unauthorized")._value.get() - refused_before == 3
    (ev,) = await consume_topic(topic_prefix, "alarms.raw", 1, timeout=20)
    assert ev["source"]["device_id"] == ALPHA_CAMERA and ev["attributes"]["integrator"] == "alpha"
