"""Webhooks: signature, retry classification (MockTransport), and delivery to a real local receiver."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import uvicorn
from alarmhub_devstack.testing import wait_until
from alarmhub_dispatch.app import DispatchApp, _Server
from alarmhub_dispatch.webhooks import WebhookSender, backoff, sign, verify

from .conftest import triaged
from .test_service import _client, _publish

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def test_signature_covers_timestamp_and_body() -> None:
    body = b'{"a":1}'
    h = sign("s3cret-s3cret-s3cret", body, 1_700_000_000)
    assert h.startswith("t=1700000000,v1=") and len(h.split("v1=")[1]) == 64
    assert verify("s3cret-s3cret-s3cret", body, h, 1_700_000_100)
    assert not verify("s3cret-s3cret-s3cret", body + b" ", h, 1_700_000_100)
    assert not verify("other-secret-other", body, h, 1_700_000_100)
    assert not verify("s3cret-s3cret-s3cret", body, h, 1_700_001_000)  # too old: replay refused
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 10, 20)] == [1, 2, 4, 300, 300]


async def test_retry_classification() -> None:
    codes = iter([200, 503, 429, 400, 404])
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(next(codes), text="x")

    sender = WebhookSender(transport=httpx.MockTransport(handler))
    try:
        results = [
            await sender.send("http://127.0.0.1:9/hook", "k" * 20, "7:abc", {"n": i}, NOW) for i in range(5)
        ]
    finally:
        await sender.aclose()
    assert [(r.delivered, r.retry) for r in results] == [
        (True, False),
        (False, True),
        (False, True),
        (False, False),
        (False, False),
    ]
    assert seen[0].headers["Idempotency-Key"] == "7:abc"
    assert verify("k" * 20, seen[0].content, seen[0].headers["X-Alarmhub-Signature"], int(NOW.timestamp()))

    def boom(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    sender = WebhookSender(transport=httpx.MockTransport(boom))
    try:
        r = await sender.send("http://127.0.0.1:9/hook", "k" * 20, "1:x", {}, NOW)
    finally:
        await sender.aclose()
    assert (r.delivered, r.retry, r.status) == (False, True, None)


class Receiver:
    """A real HTTP server on loopback that records requests; fails the first ``fail_first`` with 503
    (of those ``match`` accepts, when given)."""

    def __init__(
        self, fail_first: int = 0, always: int | None = None, match: Callable[[bytes], bool] | None = None
    ) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_first = fail_first
        self.match = match
        self.matched = 0
        self.always = always
        self.server: uvicorn.Server | None = None
        self.task: asyncio.Task[None] | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.requests.append({"path": scope["path"], "headers": headers, "body": body})
        counted = self.match is None or self.match(body)
        self.matched += counted
        status = self.always or (503 if counted and self.matched <= self.fail_first else 200)
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": b"ok"})

    async def start(self) -> str:
        self.server = _Server(uvicorn.Config(self, host="127.0.0.1", port=0, log_config=None, lifespan="off"))
        self.task = asyncio.create_task(self.server.serve())
        await wait_until(lambda: self.server is not None and self.server.started, timeout=10)
        return f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}/hook"

    async def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.task is not None:
            await asyncio.wait_for(self.task, 5)


async def test_station_and_company_webhooks_with_retry_and_dead_letters(
    dispatch: tuple[DispatchApp, str], stack: Any, topic_prefix: str
) -> None:
    app, token = dispatch
    station = app.dispatcher.router.route(114.0550, 22.5410).station  # type: ignore[union-attr]
    t = triaged(device="L3#7777")
    # the escalation timer also sweeps incidents other tests left due at this station in the shared
    # database, and the station's hook hears of those too: only this incident's deliveries count
    flaky = Receiver(
        fail_first=1, match=lambda body: json.loads(body)["incident"]["id"] == str(t.incident_id)
    )
    broken = Receiver(always=410)
    url, broken_url = await flaky.start(), await broken.start()
    try:
        async with _client(app, token) as c:
            r = await c.post(
                "/api/v1/webhooks", json={"unit": station, "url": url, "secret": "station-secret-0001"}
            )
            assert r.status_code == 201, r.text
            r = await c.post(
                "/api/v1/webhooks",
                json={"company": "gone-security", "url": broken_url, "secret": "company-secret-0001"},
            )
            assert r.status_code == 201
            await c.post(
                "/api/v1/registry/accounts",
                json={
                    "line": "L3",
                    "account": "7777",
                    "company": "gone-security",
                    "site": {"name": "x", "address": "y", "lat": 22.5410, "lon": 114.0550},
                },
            )
            await _publish(stack, topic_prefix, [t])

            # the station receives opened + routed, the first attempt failing with 503 and being retried
            def mine() -> list[dict[str, Any]]:
                return [
                    q for q in flaky.requests if json.loads(q["body"])["incident"]["id"] == str(t.incident_id)
                ]

            await wait_until(lambda: len(mine()) >= 3, timeout=20)  # 2 events + 1 retry (backoff 1 s)
            keys = [q["headers"]["idempotency-key"] for q in mine()]
            assert len(keys) == len(set(keys)) + 1  # exactly one key sent twice (the retry)
            now = int(time.time())
            for q in flaky.requests:
                assert verify("station-secret-0001", q["body"], q["headers"]["x-alarmhub-signature"], now)
            bodies = [json.loads(q["body"]) for q in mine()]
            assert {b["event"]["type"] for b in bodies} == {"opened", "routed"}
            assert all(b["incident"]["station"] == station for b in bodies)

            # the company's endpoint answers 410: permanent, straight to the dead-letter list
            async def dead() -> list[dict[str, Any]]:
                items = (await c.get("/api/v1/webhooks/dead-letters")).json()["items"]
                return [i for i in items if i["target"] == "gone-security"]

            letters = await wait_until(dead, timeout=20)
            assert letters[0]["last_status"] == 410 and letters[0]["attempts"] == 1
            assert letters[0]["incident_id"] == str(t.incident_id)
            r = await c.post(f"/api/v1/webhooks/dead-letters/{letters[0]['id']}/retry")
            assert r.status_code == 200
            n = len(broken.requests)
            await wait_until(lambda: len(broken.requests) > n, timeout=10)
    finally:
        await flaky.stop()
        await broken.stop()
