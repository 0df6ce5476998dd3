"""``alarmhub-admin check`` says what is wrong in plain words (real sockets: closed ports, bad names)."""

from __future__ import annotations

from typing import Any

from alarmhub_admin.check import run_checks
from alarmhub_admin.config import AdminSettings
from alarmhub_devstack._backing import free_port


async def test_everything_wrong_is_named(stack: Any) -> None:
    closed = free_port()  # nothing listens there
    s = AdminSettings(
        KAFKA_BOOTSTRAP=f"127.0.0.1:{closed}",
        REDIS_URL=f"redis://127.0.0.1:{closed}/0",
        DATABASE_URL=stack.admin_database_url.rsplit("/", 1)[0] + "/alarmhub_no_such_db",
        ALARMHUB_DISPATCH_URL="http://no-such-host.invalid:8080",
        ALARMHUB_GPS_COMMAND_URL=f"http://127.0.0.1:{closed}/commands",
    )
    lines = {r.what: (r.status, r.detail) for r in await run_checks(s)}
    assert (
        lines["PostgreSQL"][0] == "FAIL"
        and "does not exist: run `alarmhub-admin init`" in lines["PostgreSQL"][1]
    )
    assert lines["Kafka"][0] == "FAIL" and "no Kafka broker answers at KAFKA_BOOTSTRAP" in lines["Kafka"][1]
    assert lines["Redis"][0] == "FAIL" and "nothing listens at REDIS_URL" in lines["Redis"][1]
    assert "does not resolve" in lines["dispatch"][1]
    assert "nothing listens at ALARMHUB_GPS_COMMAND_URL" in lines["ingest-gps commands"][1]
    s = AdminSettings(KAFKA_BOOTSTRAP=f"127.0.0.1:{closed},kafka-1.invalid:9092", DATABASE_URL=s.database_url)
    kafka = next(r for r in await run_checks(s) if r.what == "Kafka")
    assert "the host name kafka-1.invalid in KAFKA_BOOTSTRAP does not resolve" in kafka.detail


async def test_the_running_stack_answers(stack: Any) -> None:
    s = AdminSettings(
        KAFKA_BOOTSTRAP=stack.kafka_bootstrap, REDIS_URL=stack.redis_url, DATABASE_URL=stack.database_url
    )
    lines = {r.what: (r.status, r.detail) for r in await run_checks(s)}
    assert lines["PostgreSQL"][0] == "ok" and lines["Kafka"][0] == "ok" and lines["Redis"][0] == "ok"
    # the dev stack is plain: said as a warning, naming each connection
    assert lines["transport"] == (
        "WARN",
        "not verified TLS: Kafka PLAINTEXT, Redis redis://, PostgreSQL sslmode unset (ALARMHUB_REQUIRE_TLS unset)",
    )
    assert lines["schema"][0] == "ok"


async def test_the_gps_command_endpoint_is_checked_with_dispatchs_token(stack: Any) -> None:
    """ingest-gps answers 401 to anyone without dispatch's command token: ``check`` presents the token it
    is given, so ok means dispatch (holding the same value) is taken, and a 401 names the token."""
    import asyncio

    from alarmhub_ingest_gps.app import GpsApp
    from alarmhub_ingest_gps.config import GpsSettings
    from prometheus_client import CollectorRegistry

    gps = GpsApp(
        GpsSettings(
            KAFKA_BOOTSTRAP=stack.kafka_bootstrap,
            REDIS_URL=stack.redis_url,
            DATABASE_URL=stack.database_url,
            ALARMHUB_GPS_COMMAND_TOKEN="the-citys-command-token",
        ),
        CollectorRegistry(),
    )
    server = await asyncio.start_server(gps._http, "127.0.0.1", 0)  # the gateway's own command handler
    port = server.sockets[0].getsockname()[1]
    try:
        results = {}
        for token in ("the-citys-command-token", "another-token"):
            s = AdminSettings(
                KAFKA_BOOTSTRAP=stack.kafka_bootstrap,
                REDIS_URL=stack.redis_url,
                DATABASE_URL=stack.database_url,
                ALARMHUB_GPS_COMMAND_URL=f"http://127.0.0.1:{port}/commands",
                ALARMHUB_GPS_COMMAND_TOKEN=token,
            )
            results[token] = next(r for r in await run_checks(s) if r.what == "ingest-gps commands")
    finally:
        server.close()
        await server.wait_closed()
    assert results["the-citys-command-token"].status == "ok", results
    bad = results["another-token"]
    assert bad.status == "FAIL" and "HTTP 401: the gateway refused ALARMHUB_GPS_COMMAND_TOKEN" in bad.detail
    assert "another-token" not in bad.detail
