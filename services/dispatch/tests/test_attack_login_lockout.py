"""Attack: locking a dispatcher out by failing their logins (docs/security.md, "Login").

Before: five wrong passwords from anyone locked the account for 15 minutes, so a stranger who knew (or
guessed) a user name could keep a dispatcher out during a surge; every attempt cost an argon2 hash with no
rate limit. Now failures slow down only the source that makes them (exponential backoff per user and
source), each source has a rate limit that refuses before hashing, and no account is ever locked.
"""

from __future__ import annotations

import uuid

import httpx
from alarmhub_dispatch.app import DispatchApp
from alarmhub_dispatch.login_guard import LoginGuard

PASSWORD = "correct horse battery staple"


def _from(app: DispatchApp, source: str) -> httpx.AsyncClient:
    """A client whose connections leave from ``source`` (a loopback address): two real sources."""
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{app.http_port}",
        transport=httpx.AsyncHTTPTransport(local_address=source),
        timeout=20,
    )


async def test_a_stranger_cannot_lock_a_dispatcher_out(dispatch: tuple[DispatchApp, str]) -> None:
    app, admin = dispatch
    d = app.dispatcher
    assert d is not None
    station = d.router.route(114.0550, 22.5410).station
    user = f"wang.{uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{app.http_port}", headers={"Authorization": f"Bearer {admin}"}, timeout=20
    ) as c:
        r = await c.post(
            "/api/v1/people", json={"user": user, "password": PASSWORD, "role": "dispatcher", "unit": station}
        )
        assert r.status_code == 201
    statuses = []
    async with _from(app, "127.0.0.2") as stranger:
        for _ in range(12):
            r = await stranger.post("/api/v1/login", json={"user": user, "password": "guess"})
            statuses.append(r.status_code)
    # the first failures are plain 401s, then the stranger is made to wait (429 with Retry-After)
    assert statuses[:3] == [401, 401, 401] and 429 in statuses
    async with _from(app, "127.0.0.1") as dispatcher:
        r = await dispatcher.post("/api/v1/login", json={"user": user, "password": PASSWORD})
    assert r.status_code == 200, r.text  # the dispatcher at their own desk signs in at once


def test_backoff_doubles_and_the_source_rate_refuses_before_hashing() -> None:
    g = LoginGuard(free_failures=3, max_delay_s=60, per_source_per_min=30)
    t = 1000.0
    for _ in range(3):
        assert g.check("u", "s", t) is None
        g.failed("u", "s", t)
    assert g.check("u", "s", t) == 1.0  # three free failures, then 1 s, 2 s, 4 s …
    assert g.check("u", "s", t + 1) is None
    g.failed("u", "s", t + 1)
    assert g.check("u", "s", t + 1.5) == 1.5 and g.check("u", "s", t + 3.01) is None
    g.failed("u", "s", t + 3.01)
    assert g.check("u", "other-source", t + 3.02) is None  # the same user elsewhere is not slowed
    for i in range(40):
        g.failed("u", "s", t + 3 + i)
    assert g.check("u", "s", t + 44) is not None and g.check("u", "s", t + 44) <= 60  # capped, no lock
    spray = LoginGuard(per_source_per_min=30)
    answers = [spray.check(f"user{i}", "x", t + i * 0.01) for i in range(31)]
    assert answers[:30] == [None] * 30 and answers[30] is not None
