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
