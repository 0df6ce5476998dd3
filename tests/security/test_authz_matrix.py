"""The authorization matrix (``authz_matrix.py``) against a running dispatch service over real sockets.

One dispatch service (real broker, Redis, PostgreSQL), one set of tokens and records per module, one HTTP
client; each route is one test that makes its call for every role, own record and other, and lists every
cell whose answer differs from the table. Calls that change something get a fresh record each (an
incident to close, a webhook to delete, a token to sign out).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pyotp
import pytest
import pytest_asyncio
from alarmhub_dispatch.accounts import hash_password
from alarmhub_dispatch.app import DispatchApp
from alarmhub_dispatch.config import DispatchSettings
from alarmhub_events import AlarmEvent, AlarmKind, Decision, Location, Protocol, Source, TriagedAlarm
from fastapi.routing import iter_route_contexts
from prometheus_client import CollectorRegistry

from .authz_matrix import MATRIX, ROLES

PASSWORD = "correct horse battery 9"


@dataclass
class Req:
    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    content: bytes | None = None
    probe: str | None = None  # a list route: the id whose presence is the answer (+/-)
    token: str | None = None  # instead of the role's token (a fresh one the call may revoke)
    stream: bool = False


@dataclass
class Side:
    """The records of one side (own: station A, company X, vehicle V; other: station B, company Y)."""

    city: str
    station: str
    district: str
    lon: float
    lat: float
    company: str
    account: str
    vehicle: str
    owner: str
    camera: str
    person: str
    login: str
    hook_url: str
    incident: str = ""  # an alarm panel's incident (company's)
    vehicle_incident: str = ""  # the vehicle's incident (owner's)


@dataclass
class Ctx:
    app: DispatchApp
    client: httpx.AsyncClient
    tokens: dict[str, str | None]
    own: Side
    other: Side
    tag: str
    n: int = 0
    pool: dict[tuple[bool, bool], list[str]] = field(default_factory=dict)
    minters: dict[bool, str] = field(default_factory=dict)  # station A's / B's supervisor
    password_hash: str = ""

    def side(self, own: bool) -> Side:
        return self.own if own else self.other

    def uid(self) -> str:
        self.n += 1
        return f"{self.tag}{self.n:04d}"

    async def as_city(self, method: str, path: str, **kw: Any) -> httpx.Response:
        r = await self.client.request(method, path, headers=_auth(self.tokens["city_sup"]), **kw)
        assert r.status_code < 300, (path, r.status_code, r.text)
        return r

    async def incident(self, own: bool, role: str) -> str:
        """A fresh open incident of that side (the owner's: its vehicle's; everyone else's: a panel's),
        made 20 at a time (one batch through the dispatcher is much cheaper than 20)."""
        key = (own, role == "owner")
        pool = self.pool.setdefault(key, [])
        if not pool:
            s = self.side(own)
            device = s.vehicle if role == "owner" else f"L7#{s.account}"
            batch = [_triaged(device, s.lon, s.lat) for _ in range(20)]
            assert self.app.dispatcher is not None
            await self.app.dispatcher.handle_triaged(batch)
            pool.extend(str(t.incident_id) for t in batch)
        return pool.pop()

    async def webhook(self, own: bool) -> int:
        s = self.side(own)
        r = await self.as_city("POST", "/api/v1/webhooks", json={"unit": s.station, "url": s.hook_url})
        return int(r.json()["id"])

    async def dead_letter(self, own: bool) -> int:
        hook = await self.webhook(own)
        assert self.app.dispatcher is not None
        return int(
            await self.app.dispatcher.store.p.fetchval(
                "INSERT INTO webhook_deliveries (webhook_id, idempotency_key, incident_id, payload, status,"
                " attempts, last_error) VALUES ($1, $2, $3, '{}', 'dead', 8, 'HTTP 500') RETURNING id",
                hook,
                self.uid(),
                uuid.UUID(self.side(own).incident),
            )
        )

    async def account(self, own: bool) -> str:
        s, acct = self.side(own), self.uid()[-8:].upper()
        await self.as_city(
            "POST",
            "/api/v1/registry/accounts",
            json={"line": "L9", "account": acct, "company": s.company, "unit": s.station},
        )
        return f"L9%23{acct}"

    async def person(self, own: bool) -> str:
        """A fresh dispatcher account of that side (stored with one hash made once: argon2 is slow)."""
        user = f"p{self.uid()}"
        assert self.app.dispatcher is not None
        if not self.password_hash:
            self.password_hash = hash_password(PASSWORD)
        s = self.side(own)
        await self.app.dispatcher.store.people.create(
            user, None, self.password_hash, "dispatcher", s.station, None, {}, "authz-matrix"
        )
        return user

    async def platform(self) -> int:
        body = _platform_body()
        await self.as_city("POST", "/api/v1/registry/platforms", json=body)
        return int(body["user_id"])

    async def minted(self, own: bool) -> str:
        """The id of a fresh token minted by station A's (own) or station B's (other) supervisor."""
        s = self.side(own)
        body = {"user": self.uid(), "role": "dispatcher", "unit": s.station}
        r = await self.client.post("/api/v1/tokens", json=body, headers=_auth(self.minters[own]))
        assert r.status_code == 201, r.text
        return hashlib.sha256(r.json()["token"].encode()).hexdigest()[:16]

    async def fresh_token(self, role: str) -> str:
        body = _token_body(role, self.own, self.uid())
        return str((await self.as_city("POST", "/api/v1/tokens", json=body)).json()["token"])


def _platform_body() -> dict[str, Any]:
    n = uuid.uuid4().int
    return {
        "user_id": n % 4_000_000_000 + 1,
        "password": "pw809",
        "gnss_center_id": (n >> 64) % 4_000_000_000,
    }


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _triaged(device: str, lon: float, lat: float) -> TriagedAlarm:
    now = datetime.now(UTC)
    account = device.split("#", 1)[1] if "#" in device else None
    ev = AlarmEvent(
        kind=AlarmKind.PANIC,
        source=Source(
            protocol=Protocol.DC09_CID, device_id=device, account=account, line="L7" if account else None
        ),
        code="E120",
        zone="001",
        occurred_at=now,
        received_at=now,
        location=Location(lat=lat, lon=lon),
    )
    return TriagedAlarm(
        incident_id=uuid.uuid4(),
        event=ev,
        decision=Decision.DISPATCH,
        score=90,
        priority=2,
        major_event=False,
        rule_version="authz-matrix",
        reasons=[],
        decided_at=now,
    )


def _token_body(role: str, own: Side, user: str) -> dict[str, Any]:
    unit = {"city": own.city, "dist": own.district, "stn": own.station}
    if role == "company":
        return {"user": user, "role": "alarm_company", "company": own.company}
    if role == "owner":
        return {"user": own.owner, "role": "vehicle_owner", "scope": {"vehicles": [own.vehicle]}}
    if role == "dept":
        return {"user": user, "role": "department", "unit": own.district}
    tier, kind = role.split("_")
    return {
        "user": user,
        "role": "supervisor" if kind == "sup" else "dispatcher",
        "unit": unit[tier],
    }


# -- the call each route makes: (ctx, role, own) → request ------------------------------------------
Build = Callable[[Ctx, str, bool], Awaitable[Req]]
CALLS: dict[tuple[str, str], Build] = {}


def call(method: str, path: str) -> Callable[[Build], Build]:
    def register(fn: Build) -> Build:
        CALLS[(method, path)] = fn
        return fn

    return register


def _incident_id(c: Ctx, role: str, own: bool) -> str:
    s = c.side(own)
    return s.vehicle_incident if role == "owner" else s.incident


def _read_incident(suffix: str) -> Build:
    async def build(c: Ctx, role: str, own: bool) -> Req:
        return Req("GET", f"/api/v1/incidents/{_incident_id(c, role, own)}{suffix}")

    return build


for _suffix in ("", "/track", "/site", "/cap", "/cameras"):
    call("GET", "/api/v1/incidents/{incident_id}" + _suffix)(_read_incident(_suffix))


def _action(action: str, body: dict[str, Any]) -> Build:
    async def build(c: Ctx, role: str, own: bool) -> Req:
        return Req("POST", f"/api/v1/incidents/{await c.incident(own, role)}/{action}", json=body)

    return build


for _act, _body in (
    ("ack", {}),
    ("on-scene", {}),
    ("escalate", {"note": "matrix"}),
    ("verify", {"outcome": "confirmed"}),
    ("handoff", {"service": "119"}),
    ("close", {"verdict": "false_alarm"}),
):
    call("POST", "/api/v1/incidents/{incident_id}/" + _act)(_action(_act, _body))


@call("POST", "/api/v1/incidents/{incident_id}/vehicle-command")
async def _vehicle_command(c: Ctx, role: str, own: bool) -> Req:
    return Req(
        "POST",
        f"/api/v1/incidents/{_incident_id(c, role, own)}/vehicle-command",
        json={"command": "query_position"},
    )


@call("GET", "/api/v1/incidents")
async def _incidents(c: Ctx, role: str, own: bool) -> Req:
    s = c.side(own)
    q = s.vehicle if role == "owner" else s.account
    return Req("GET", "/api/v1/incidents", params={"q": q}, probe=_incident_id(c, role, own))


def _plain(method: str, path: str, **kw: Any) -> Build:
    async def build(c: Ctx, role: str, own: bool) -> Req:
        return Req(method, path, **kw)

    return build


for _path in (
    "/api/v1/cap",
    "/api/v1/me",
    "/api/v1/reports/ack-times",
    "/api/v1/reports/false-alarms",
    "/api/v1/reports/cameras",
    "/api/v1/reports/devices",
    "/api/v1/audit",
    "/",
    "/console/console.js",
    "/map/config",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
):
    call("GET", _path.replace("console.js", "{name}"))(_plain("GET", _path))
call("GET", "/api/v1/stream")(_plain("GET", "/api/v1/stream", stream=True))
call("GET", "/media/{token}/{name}")(_plain("GET", "/media/ah_forged/index.m3u8"))
call("POST", "/media/{token}/close")(_plain("POST", "/media/ah_forged/close"))
call("GET", "/api/v1/login/oidc")(_plain("GET", "/api/v1/login/oidc"))
call("GET", "/api/v1/login/oidc/callback")(
    _plain("GET", "/api/v1/login/oidc/callback", params={"code": "c", "state": "s"})
)


@call("GET", "/api/v1/units")
async def _units(c: Ctx, role: str, own: bool) -> Req:
    return Req("GET", "/api/v1/units", probe=f'"{c.side(own).station}"')


@call("GET", "/api/v1/webhooks")
async def _hooks(c: Ctx, role: str, own: bool) -> Req:
    return Req("GET", "/api/v1/webhooks", probe=c.side(own).hook_url)


@call("POST", "/api/v1/webhooks")
async def _hook_create(c: Ctx, role: str, own: bool) -> Req:
    return Req("POST", "/api/v1/webhooks", json={"unit": c.side(own).station, "url": c.side(own).hook_url})


@call("DELETE", "/api/v1/webhooks/{hook_id}")
async def _hook_delete(c: Ctx, role: str, own: bool) -> Req:
    return Req("DELETE", f"/api/v1/webhooks/{await c.webhook(own)}")


@call("GET", "/api/v1/webhooks/dead-letters")
async def _dead_letters(c: Ctx, role: str, own: bool) -> Req:
    return Req("GET", "/api/v1/webhooks/dead-letters", params={"limit": 1000}, probe=c.side(own).hook_url)


@call("POST", "/api/v1/webhooks/dead-letters/{delivery_id}/retry")
async def _dead_letter_retry(c: Ctx, role: str, own: bool) -> Req:
    return Req("POST", f"/api/v1/webhooks/dead-letters/{await c.dead_letter(own)}/retry")


@call("POST", "/api/v1/tokens")
async def _mint(c: Ctx, role: str, own: bool) -> Req:
    return Req(
        "POST", "/api/v1/tokens", json={"user": c.uid(), "role": "dispatcher", "unit": c.side(own).station}
    )


@call("GET", "/api/v1/tokens")
async def _tokens(c: Ctx, role: str, own: bool) -> Req:
    return Req("GET", "/api/v1/tokens", probe=await c.minted(own))


@call("DELETE", "/api/v1/tokens/{token_id}")
async def _token_revoke(c: Ctx, role: str, own: bool) -> Req:
    return Req("DELETE", f"/api/v1/tokens/{await c.minted(own)}")


@call("GET", "/api/v1/registry/{kind}")
async def _registry_list(c: Ctx, role: str, own: bool) -> Req:
    acct = c.side(own).account
    return Req("GET", "/api/v1/registry/accounts", params={"limit": 100000}, probe=f'"L7#{acct}"')


def _registry_create(kind: str, body: Callable[[Side, str], dict[str, Any]]) -> Build:
    async def build(c: Ctx, role: str, own: bool) -> Req:
        return Req("POST", f"/api/v1/registry/{kind}", json=body(c.side(own), c.uid()))

    return build


call("POST", "/api/v1/registry/accounts")(
    _registry_create(
        "accounts", lambda s, u: {"line": "L8", "account": u[-8:], "company": s.company, "unit": s.station}
    )
)
call("POST", "/api/v1/registry/vehicles")(
    _registry_create(
        "vehicles", lambda s, u: {"device_id": f"0148{u}", "protocol": "jt808", "unit": s.station}
    )
)
call("POST", "/api/v1/registry/cameras")(
    _registry_create(
        "cameras", lambda s, u: {"id": f"cam-{u}", "lat": s.lat, "lon": s.lon, "unit": s.station}
    )
)
call("POST", "/api/v1/registry/{kind}")(_registry_create("sirens", lambda s, u: {"id": u}))


@call("PUT", "/api/v1/registry/{kind}/{item_id}")
async def _registry_put(c: Ctx, role: str, own: bool) -> Req:
    s = c.side(own)
    # own: the record kept in its unit; other: no unit named (a supervisor below the city writes into its own)
    body = {"company": s.company, **({"unit": s.station} if own else {})}
    return Req("PUT", f"/api/v1/registry/accounts/L7%23{s.account}", json=body)


@call("DELETE", "/api/v1/registry/{kind}/{item_id}")
async def _registry_delete(c: Ctx, role: str, own: bool) -> Req:
    return Req("DELETE", f"/api/v1/registry/accounts/{await c.account(own)}")


@call("POST", "/api/v1/registry/{kind}/import")
async def _registry_import(c: Ctx, role: str, own: bool) -> Req:
    s = c.side(own)
    csv = (
        f"line,account,company,unit\nL7,{s.account},{s.company},{s.station}\n"
        if own
        else (f"line,account,company\nL7,{s.account},{s.company}\n")
    )
    return Req("POST", "/api/v1/registry/accounts/import", content=csv.encode())


@call("POST", "/api/v1/registry/vehicles/{device_id}/reset-registration")
async def _reset(c: Ctx, role: str, own: bool) -> Req:
    return Req("POST", f"/api/v1/registry/vehicles/{c.side(own).vehicle}/reset-registration")


def _platform(method: str, suffix: str, body: dict[str, Any] | None = None) -> Build:
    async def build(c: Ctx, role: str, own: bool) -> Req:
        return Req(method, f"/api/v1/registry/platforms/{await c.platform()}{suffix}", json=body)

    return build


call("GET", "/api/v1/registry/platforms")(_plain("GET", "/api/v1/registry/platforms"))
call("GET", "/api/v1/login/options")(_plain("GET", "/api/v1/login/options"))
call("GET", "/api/v1/registry/platforms/{user_id}")(_platform("GET", ""))
call("PUT", "/api/v1/registry/platforms/{user_id}")(_platform("PUT", "", {"name": "matrix"}))
call("DELETE", "/api/v1/registry/platforms/{user_id}")(_platform("DELETE", ""))
call("POST", "/api/v1/registry/platforms/{user_id}/disable")(_platform("POST", "/disable"))
call("POST", "/api/v1/registry/platforms/{user_id}/enable")(_platform("POST", "/enable"))


@call("POST", "/api/v1/registry/platforms")
async def _platform_create(c: Ctx, role: str, own: bool) -> Req:
    return Req("POST", "/api/v1/registry/platforms", json=_platform_body())


def _vehicle(method: str, suffix: str, body: dict[str, Any] | None = None) -> Build:
    async def build(c: Ctx, role: str, own: bool) -> Req:
        return Req(method, f"/api/v1/vehicles/{c.side(own).vehicle}{suffix}", json=body)

    return build


call("POST", "/api/v1/vehicles/{device_id}/theft-report")(
    _vehicle("POST", "/theft-report", {"wait_s": 0, "note": "authz matrix"})
)
call("GET", "/api/v1/vehicles/{device_id}/state")(_vehicle("GET", "/state"))
call("POST", "/api/v1/vehicles/{device_id}/arm")(_vehicle("POST", "/arm"))
call("POST", "/api/v1/vehicles/{device_id}/disarm")(_vehicle("POST", "/disarm"))


@call("GET", "/api/v1/owner/vehicles")
async def _owner_vehicles(c: Ctx, role: str, own: bool) -> Req:
    return Req("GET", "/api/v1/owner/vehicles", probe=f'"{c.side(own).vehicle}"')


@call("POST", "/api/v1/login")
async def _login(c: Ctx, role: str, own: bool) -> Req:
    return Req("POST", "/api/v1/login", json={"user": c.own.login, "password": PASSWORD})


@call("POST", "/api/v1/logout")
async def _logout(c: Ctx, role: str, own: bool) -> Req:
    return Req("POST", "/api/v1/logout", token=None if role == "anon" else await c.fresh_token(role))


@call("GET", "/api/v1/people")
async def _people(c: Ctx, role: str, own: bool) -> Req:
    return Req("GET", "/api/v1/people", probe=f'"{c.side(own).person}"')


@call("POST", "/api/v1/people")
async def _person_create(c: Ctx, role: str, own: bool) -> Req:
    body = {"user": f"n{c.uid()}", "password": PASSWORD, "role": "dispatcher", "unit": c.side(own).station}
    return Req("POST", "/api/v1/people", json=body)


@call("POST", "/api/v1/people/{user}/password")
async def _person_password(c: Ctx, role: str, own: bool) -> Req:
    return Req("POST", f"/api/v1/people/{c.side(own).person}/password", json={"new_password": PASSWORD})


@call("POST", "/api/v1/people/{user}/disable")
async def _person_disable(c: Ctx, role: str, own: bool) -> Req:
    return Req("POST", f"/api/v1/people/{await c.person(own)}/disable")


@call("POST", "/api/v1/login/totp/enrol")
async def _totp_enrol(c: Ctx, role: str, own: bool) -> Req:
    return Req("POST", "/api/v1/login/totp/enrol", json={"user": await c.person(own), "password": PASSWORD})


@call("POST", "/api/v1/login/totp/confirm")
async def _totp_confirm(c: Ctx, role: str, own: bool) -> Req:
    user, secret = await c.person(own), pyotp.random_base32()
    assert c.app.dispatcher is not None
    await c.app.dispatcher.store.people.totp_begin(
        user, secret
    )  # as enrol would (no second rate-limited call)
    body = {"user": user, "password": PASSWORD, "code": pyotp.TOTP(secret).now()}
    return Req("POST", "/api/v1/login/totp/confirm", json=body)


@call("POST", "/api/v1/people/{user}/totp/reset")
async def _totp_reset(c: Ctx, role: str, own: bool) -> Req:
    return Req("POST", f"/api/v1/people/{await c.person(own)}/totp/reset")


@call("POST", "/api/v1/cameras/{camera_id}/live")
async def _live(c: Ctx, role: str, own: bool) -> Req:
    return Req("POST", f"/api/v1/cameras/{c.side(own).camera}/live")


@call("GET", "/api/v1/cameras/{camera_id}/snapshot")
async def _snapshot(c: Ctx, role: str, own: bool) -> Req:
    return Req("GET", f"/api/v1/cameras/{c.side(own).camera}/snapshot")


@call("GET", "/api/v1/cameras/{camera_id}/channels")
async def _channels(c: Ctx, role: str, own: bool) -> Req:
    return Req("GET", f"/api/v1/cameras/{c.side(own).camera}/channels")


# -- the service, its records and tokens (once per module) -------------------------------------------
def _sides(app: DispatchApp, tag: str) -> tuple[Side, Side]:
    d = app.dispatcher
    assert d is not None
    # the city is the root over the most units, as for the dev token (app.py): the shared test database
    # may hold stray roots that other tests imported (a city of their own), whose stations are not ours
    roots = [n for n in d.tree.nodes if d.tree.is_root(n)]
    city = max(roots, key=lambda n: (len(d.tree.subtree(n)), n))
    by_district: dict[str, Any] = {}
    for st in d.router.stations:
        if st.district and st.district not in by_district and d.tree.covers(city, st.id):
            p = st.geometry.representative_point()
            r = d.router.route(p.x, p.y)
            if r.station == st.id and r.district == st.district:
                by_district[st.district] = (st, p)
    (a, pa), (b, pb) = list(by_district.values())[:2]
    sides = []
    for name, st, p in (("own", a, pa), ("oth", b, pb)):
        sides.append(
            Side(
                city=city,
                station=st.id,
                district=st.district,
                lon=p.x,
                lat=p.y,
                company=f"co-{name}-{tag}",
                account=("A" if name == "own" else "B") + tag[:7].upper(),
                vehicle=f"0139{name}{tag[:6]}",
                owner=f"owner-{name}-{tag}",
                camera=f"cam-{name}-{tag}",
                person=f"{name}-{tag}",
                login=f"{name}-login-{tag}",
                hook_url=f"http://127.0.0.1:9/hook-{name}-{tag}",
            )
        )
    return sides[0], sides[1]


async def _records(c: Ctx) -> None:
    for s in (c.own, c.other):
        await c.as_city(
            "POST",
            "/api/v1/registry/accounts",
            json={
                "line": "L7",
                "account": s.account,
                "company": s.company,
                "unit": s.station,
                "lat": s.lat,
                "lon": s.lon,
            },
        )
        await c.as_city(
            "POST",
            "/api/v1/registry/vehicles",
            json={"device_id": s.vehicle, "protocol": "jt808", "owner": s.owner, "unit": s.station},
        )
        await c.as_city(
            "POST",
            "/api/v1/registry/cameras",
            json={"id": s.camera, "lat": s.lat, "lon": s.lon, "unit": s.station},
        )
        for user in (s.person, s.login):
            await c.as_city(
                "POST",
                "/api/v1/people",
                json={"user": user, "password": PASSWORD, "role": "dispatcher", "unit": s.station},
            )
        await c.as_city("POST", "/api/v1/webhooks", json={"unit": s.station, "url": s.hook_url})
    for own in (True, False):
        c.side(own).incident = await c.incident(own, "city_sup")
        c.side(own).vehicle_incident = await c.incident(own, "owner")
    await c.dead_letter(True)
    await c.dead_letter(False)


@pytest_asyncio.fixture(scope="module")
async def ctx(stack: Any) -> AsyncIterator[Ctx]:
    from alarmhub_devstack.testing import new_prefix
    from alarmhub_kafka import ensure_topics

    prefix = new_prefix()
    await ensure_topics(stack.kafka_bootstrap, prefix=prefix)
    dev = f"dev-{uuid.uuid4().hex}"
    settings = DispatchSettings(
        KAFKA_BOOTSTRAP=stack.kafka_bootstrap,
        DATABASE_URL=stack.database_url,
        REDIS_URL=stack.redis_url,
        ALARMHUB_TOPIC_PREFIX=prefix,
        ALARMHUB_HTTP_PORT=0,
        ALARMHUB_HTTP_HOST="127.0.0.1",
        ALARMHUB_HEALTH_PORT=0,
        ALARMHUB_DEV_TOKEN=dev,
        ALARMHUB_DEV_MODE=True,
        ALARMHUB_LIVE_MAX_STREAMS=0,
    )
    app = DispatchApp(settings, CollectorRegistry())
    await app.start()
    tag = uuid.uuid4().hex[:10]
    try:
        own, other = _sides(app, tag)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.http_port}", timeout=30) as client:
            c = Ctx(app, client, {"city_sup": dev, "anon": None}, own, other, tag)
            await _records(c)
            for role in ROLES:
                if role not in c.tokens:
                    c.tokens[role] = await c.fresh_token(role)
            c.minters[True] = str(c.tokens["stn_sup"])
            body = {"user": c.uid(), "role": "supervisor", "unit": other.station}
            c.minters[False] = str((await c.as_city("POST", "/api/v1/tokens", json=body)).json()["token"])
            yield c
    finally:
        await app.stop()


def _served(app: DispatchApp) -> set[tuple[str, str]]:
    """Every (method, path) the running app answers, by its route table (``{item_id:path}`` as ``{item_id}``)."""
    assert app.server is not None
    out: set[tuple[str, str]] = set()
    for r in iter_route_contexts(app.server.config.app.routes):
        for m in sorted((r.methods or set()) - {"HEAD"}):
            out.add((m, re.sub(r":[a-z]+}", "}", r.path)))
    return out


async def test_every_route_has_an_entry_and_every_entry_a_route(ctx: Ctx) -> None:
    from alarmhub_dispatch.openapi import document

    served = _served(ctx.app)
    documented = {(m.upper(), p) for p, ops in document()["paths"].items() for m in ops}
    assert documented <= served  # the OpenAPI is the served API's
    assert sorted(served - set(MATRIX)) == [], "routes without an entry in tests/security/authz_matrix.py"
    assert sorted(set(MATRIX) - served) == [], "entries for routes that no longer exist"
    assert set(MATRIX) == set(CALLS), "every entry has its call"
    assert all(len(v) == len(ROLES) for v in MATRIX.values())


async def _answer(c: Ctx, req: Req, role: str) -> str:
    headers = _auth(req.token if req.token is not None or role == "anon" else c.tokens[role])
    if req.stream:
        async with c.client.stream(req.method, req.path, params=req.params, headers=headers) as r:
            return str(r.status_code)
    r = await c.client.request(
        req.method, req.path, params=req.params, json=req.json, content=req.content, headers=headers
    )
    if req.probe is not None and r.status_code == 200:
        return "+" if req.probe in r.text else "-"
    return str(r.status_code)


def _expected(cell: str, own: bool) -> str:
    parts = cell.split("/")
    return parts[0] if own or len(parts) == 1 else parts[1]


@pytest.mark.parametrize("route", sorted(MATRIX), ids=lambda r: f"{r[0]} {r[1]}")
async def test_route_answers_every_role_as_the_matrix_says(ctx: Ctx, route: tuple[str, str]) -> None:
    build = CALLS[route]
    wrong = []
    for role, cell in zip(ROLES, MATRIX[route], strict=True):
        for own in (True, False) if "/" in cell else (True,):
            req = await build(ctx, role, own)
            got = await _answer(ctx, req, role)
            if got != _expected(cell, own):
                wrong.append(f"{role} {'own' if own else 'other'}: {got}, matrix says {_expected(cell, own)}")
    assert wrong == []
