"""Attack: webhooks as a way into internal services (docs/security.md, "Webhook targets").

Before: a supervisor could register ``http://127.0.0.1:<port>/…`` (or a name that resolves there) and
dispatch posted to it, and the first 500 characters of the answer came back through the dead-letter list.
Now the target's addresses are checked when the connection is made, the request goes to the address that
was checked, and only the status of a failed answer is kept.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

import httpx
from alarmhub_dispatch.config import DispatchSettings
from alarmhub_dispatch.webhooks import TargetPolicy, WebhookSender

NOW = datetime(2026, 12, 6, 23, 0, tzinfo=UTC)


class _Recorder:
    def __init__(self, status: int = 200, body: bytes = b"") -> None:
        self.requests: list[httpx.Request] = []
        self.status, self.body = status, body

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, content=self.body)


async def test_loopback_private_and_names_resolving_there_are_refused_at_connect_time() -> None:
    seen = _Recorder()
    sender = WebhookSender(transport=httpx.MockTransport(seen), policy=TargetPolicy())
    try:
        for url in (
            "http://127.0.0.1:9105/metrics",
            "http://localhost:8080/api/v1/units",  # a name: resolved now, not when it was saved
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://10.1.2.3/",
            "http://169.254.169.254/latest/meta-data/",
            "http://100.64.0.1/",
        ):
            a = await sender.send(url, "s" * 20, "1:x", {"n": 1}, NOW)
            assert (a.delivered, a.retry) == (False, False), url
            assert a.error is not None and a.error.startswith("target refused"), (url, a.error)
    finally:
        await sender.aclose()
    assert seen.requests == []  # nothing left the process


async def test_allowed_network_is_reached_at_the_checked_address_with_the_name_kept() -> None:
    seen = _Recorder()
    sender = WebhookSender(transport=httpx.MockTransport(seen), policy=TargetPolicy("127.0.0.0/8"))
    try:
        a = await sender.send("http://localhost:8999/hook", "s" * 20, "1:x", {"n": 1}, NOW)
    finally:
        await sender.aclose()
    assert a.delivered
    (req,) = seen.requests
    assert req.url.host in ("127.0.0.1", "::1") and req.headers["host"] == "localhost:8999"


async def test_the_answer_body_is_not_echoed() -> None:
    secret_page = b"internal admin console: password=hunter2"
    sender = WebhookSender(transport=httpx.MockTransport(_Recorder(500, secret_page)))
    try:
        a = await sender.send("http://203.0.113.10/hook", "s" * 20, "1:x", {}, NOW)
    finally:
        await sender.aclose()
    assert a.status == 500 and a.error == "HTTP 500" and "hunter2" not in (a.error or "")


def test_production_default_allows_no_internal_network() -> None:
    assert DispatchSettings().webhook_allow_networks == ""
    policy = TargetPolicy(DispatchSettings().webhook_allow_networks)
    assert not policy.permits(ipaddress.ip_address("192.168.1.10"))
    assert policy.permits(ipaddress.ip_address("203.0.113.10")) is False  # documentation range: not global
    assert policy.permits(ipaddress.ip_address("8.8.8.8"))
