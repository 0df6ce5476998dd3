"""``alarmhub-admin check``: connect to everything the settings name and say what is wrong in plain words.

Each check is one line: ``ok``, ``WARN`` or ``FAIL``, what was tried and, when it failed, the likely
cause and what to do. The exit code is 1 when any check failed, so it fits a deployment pipeline.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import asyncpg
import httpx
from aiokafka.admin import AIOKafkaAdminClient
from alarmhub_events import TOPICS
from alarmhub_kafka import KafkaSecurity
from alarmhub_redis import connect_redis, redis_address

from .config import AdminSettings

__all__ = ["Result", "run_checks"]

TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Result:
    status: str  # ok | WARN | FAIL
    what: str
    detail: str

    def line(self) -> str:
        return f"{self.status:4}  {self.what}: {self.detail}"


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(out) < 10:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def _why(exc: BaseException, where: str) -> str:
    """An exception as the operator's next step (the client libraries wrap the socket error: look inside)."""
    chain = _chain(exc)
    text = " / ".join(f"{type(e).__name__}: {e}".strip() for e in chain)
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "All connection attempts failed" in text:
        return f"nothing listens at {where} (service down, wrong port, or bound to 127.0.0.1 only)"
    if "InvalidCatalogNameError" in text:
        return f"the database named in {where} does not exist: run `alarmhub-admin init`"
    if "certificate verify failed" in text.lower() or "CERTIFICATE_VERIFY_FAILED" in text:
        return (
            f"TLS: the server at {where} showed a certificate not signed by the CA this side trusts, or "
            f"not for that name ({text[-160:]}); check the *_CA_FILE / DATABASE_SSLROOTCERT setting and the "
            "host name in the address"
        )
    if "Unable to bootstrap" in text:
        return f"no Kafka broker answers at {where} (brokers down, wrong address, or an advertised listener it cannot reach)"
    if any(isinstance(e, socket.gaierror) for e in chain):
        return f"the host name in {where} does not resolve (DNS, /etc/hosts, or a typo)"
    if (
        isinstance(exc, socket.gaierror)
        or "Name or service not known" in text
        or "nodename nor servname" in text
    ):
        return f"the host name in {where} does not resolve (DNS, /etc/hosts, or a typo)"
    if (
        isinstance(exc, ConnectionRefusedError)
        or "Connect call failed" in text
        or "Connection refused" in text
    ):
        return f"nothing listens at {where} (service down, wrong port, or bound to 127.0.0.1 only)"
    if isinstance(exc, TimeoutError | asyncio.TimeoutError) or "timed out" in text.lower():
        return f"no answer from {where} within {TIMEOUT_S:.0f} s (firewall, wrong network, or overloaded)"
    if "password" in text.lower() or "auth" in text.lower():
        return f"{where} refused the credentials ({text})"
    return text


def _redact(url: str) -> str:
    p = urlsplit(url)
    if p.password:
        return url.replace(f":{p.password}@", ":***@")
    return url


async def _postgres(s: AdminSettings) -> list[Result]:
    where = _redact(s.database_url)
    try:
        conn = await asyncio.wait_for(asyncpg.connect(s.database_url), TIMEOUT_S)
    except Exception as exc:
        return [Result("FAIL", "PostgreSQL", f"{where}: {_why(exc, 'DATABASE_URL')}")]
    out = [Result("ok", "PostgreSQL", f"{where}: connected")]
    try:
        has = await conn.fetchval("SELECT to_regclass('public.alembic_version') IS NOT NULL")
        if not has:
            return [*out, Result("FAIL", "schema", "no schema: run `alarmhub-admin init`")]
        heads = [r[0] for r in await conn.fetch("SELECT version_num FROM alembic_version ORDER BY 1")]
        out.append(Result("ok", "schema", f"at {', '.join(heads)}"))
        n = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE tier = 1 AND kind = 'police') AS cities,"
            " count(*) FILTER (WHERE tier = 2 AND kind = 'police') AS districts,"
            " count(*) FILTER (WHERE tier = 3 AND kind = 'police' AND geometry IS NOT NULL) AS stations,"
            " count(*) FILTER (WHERE tier = 4) AS sites,"
            " count(*) FILTER (WHERE parent_id IS NULL AND kind <> 'police') AS external,"
            " count(*) FILTER (WHERE synthetic) AS synthetic FROM units"
        )
        if n["stations"] == 0:
            out.append(
                Result("FAIL", "units", "no station has an area: `alarmhub-admin import units <file>`")
            )
        elif n["synthetic"]:
            out.append(
                Result("WARN", "units", f"{n['synthetic']} synthetic demo units: this is the demo geography")
            )
        else:
            out.append(
                Result(
                    "ok",
                    "units",
                    f"{n['districts']} districts, {n['stations']} stations with areas, {n['sites']} sites",
                )
            )
        if n["external"] == 0:
            out.append(
                Result(
                    "WARN",
                    "external units",
                    "no 119/120 hand-off unit: `alarmhub-admin import external-units`",
                )
            )
        sup = await conn.fetchval(
            "SELECT count(*) FROM people p JOIN units u ON u.id = p.unit"
            " WHERE p.role = 'supervisor' AND p.active AND u.parent_id IS NULL AND u.kind = 'police'"
        )
        out.append(
            Result("ok", "people", f"{sup} active city supervisor(s)")
            if sup
            else Result("FAIL", "people", "no active city supervisor: run `alarmhub-admin init`")
        )
    finally:
        await conn.close()
    return out


async def _unresolved(bootstrap: str) -> str | None:
    """aiokafka words every failed bootstrap alike ("Unable to bootstrap"): name a host that does not resolve."""
    loop = asyncio.get_running_loop()
    for addr in filter(None, (a.strip() for a in bootstrap.split(","))):
        host = addr.rsplit(":", 1)[0].strip("[]")
        try:
            await asyncio.wait_for(loop.getaddrinfo(host, None), TIMEOUT_S)
        except (OSError, TimeoutError):
            return f"the host name {host} in KAFKA_BOOTSTRAP does not resolve (DNS, /etc/hosts, or a typo)"
    return None


async def _kafka(s: AdminSettings) -> list[Result]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=s.kafka_bootstrap,
        client_id="alarmhub-admin-check",
        request_timeout_ms=int(TIMEOUT_S * 1000),
        **KafkaSecurity.from_settings(s).client_kwargs(),
    )
    try:
        await asyncio.wait_for(admin.start(), TIMEOUT_S)
        topics = set(await asyncio.wait_for(admin.list_topics(), TIMEOUT_S))
    except Exception as exc:
        why = await _unresolved(s.kafka_bootstrap) or _why(exc, "KAFKA_BOOTSTRAP")
        return [Result("FAIL", "Kafka", f"{s.kafka_bootstrap}: {why}")]
    finally:
        await admin.close()
    out = [Result("ok", "Kafka", f"{s.kafka_bootstrap}: connected")]
    missing = [s.topic_prefix + t.name for t in TOPICS if s.topic_prefix + t.name not in topics]
    out.append(
        Result("FAIL", "topics", f"missing {', '.join(missing)}: run `alarmhub-admin init`")
        if missing
        else Result("ok", "topics", f"all {len(TOPICS)} present")
    )
    return out


async def _redis(s: AdminSettings) -> list[Result]:
    r = connect_redis(redis_address(s), timeout_s=TIMEOUT_S)  # Sentinel, TLS and ACL user as the services
    try:
        await r.ping()
        return [Result("ok", "Redis", f"{_redact(s.redis_url)}: PONG")]
    except Exception as exc:
        return [Result("FAIL", "Redis", f"{_redact(s.redis_url)}: {_why(exc, 'REDIS_URL')}")]
    finally:
        await r.aclose()


async def _http(
    name: str,
    url: str,
    setting: str,
    *,
    ok_codes: tuple[int, ...] = (200,),
    headers: dict[str, str] | None = None,
    refused: str | None = None,
) -> list[Result]:
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_S, headers=headers) as c:
            r = await c.get(url)
    except Exception as exc:
        return [Result("FAIL", name, f"{url}: {_why(exc, setting)}")]
    if r.status_code in ok_codes:
        return [Result("ok", name, f"{url}: HTTP {r.status_code}")]
    if r.status_code == 401 and refused:
        return [Result("FAIL", name, f"{url}: HTTP 401: {refused}")]
    return [Result("FAIL", name, f"{url}: HTTP {r.status_code} {r.text[:120]!r}")]


def transport(s: AdminSettings) -> Result:
    """Whether the backing connections are encrypted and the servers verified (docs/deployment.md)."""
    plain = []
    if s.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        plain.append(f"Kafka {s.kafka_security_protocol}")
    if urlsplit(s.redis_url).scheme == "redis":
        plain.append("Redis redis://")
    mode = dict(parse_qsl(urlsplit(s.database_url).query)).get("sslmode")
    if mode != "verify-full":
        plain.append(f"PostgreSQL sslmode {mode or 'unset'}")
    if s.require_tls:
        return Result("ok", "transport", "production mode: every backing connection on verified TLS")
    if plain:
        return Result(
            "WARN", "transport", f"not verified TLS: {', '.join(plain)} (ALARMHUB_REQUIRE_TLS unset)"
        )
    return Result("ok", "transport", "verified TLS everywhere (set ALARMHUB_REQUIRE_TLS to enforce it)")


async def run_checks(s: AdminSettings) -> list[Result]:
    checks: list[Callable[[], Awaitable[list[Result]]]] = [
        lambda: _postgres(s),
        lambda: _kafka(s),
        lambda: _redis(s),
        lambda: _http(
            "dispatch",
            s.dispatch_url.rstrip("/") + "/api/v1/units",
            "ALARMHUB_DISPATCH_URL",
            ok_codes=(200, 401),
        ),
        # the command endpoint only takes POST and answers anyone without dispatch's token 401: a GET with
        # the token (404/405) proves dispatch reaches it and the gateway takes dispatch's credential
        lambda: _http(
            "ingest-gps commands",
            s.gps_command_url,
            "ALARMHUB_GPS_COMMAND_URL",
            ok_codes=(200, 404, 405, 422),
            headers={"Authorization": f"Bearer {s.gps_command_token.get_secret_value()}"},
            refused="the gateway refused ALARMHUB_GPS_COMMAND_TOKEN: give this tool, dispatch and ingest-gps "
            "the same value, or dispatch's vehicle commands are refused too",
        ),
    ]
    for url in filter(None, (u.strip() for u in s.health_urls.split(","))):
        checks.append(lambda url=url: _http("health", url, "ALARMHUB_CHECK_HEALTH_URLS"))  # type: ignore[misc]
    results = await asyncio.gather(*(c() for c in checks))
    return [transport(s), *(r for rs in results for r in rs)]
