"""Transport security settings: what is refused at start, and what reaches the clients.

Kafka: the dev broker (Tansu) has no TLS and no SASL, so Kafka's settings are checked by configuration
only — their validation, and the aiokafka producer, consumer and admin client objects built from them
(security protocol, SCRAM account, the TLS context). That TLS context then shakes hands with a local TLS
server that asks for a client certificate (a real handshake with this test's certificates, no broker).
Redis and PostgreSQL are tested over real TLS in test_redis_tls.py and test_postgres_tls.py.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from alarmhub_kafka import ConsumerPipeline, DurableProducer, KafkaMetrics, KafkaSecurity
from alarmhub_runtime import BaseServiceSettings
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

SECRET = "scram-pass-91c0d2"


class _Settings(BaseServiceSettings):
    group: str = "transport-test"


@pytest.fixture
def secret_files(tmp_path: Path) -> dict[str, str]:
    out = {}
    for name in ("kafka", "redis"):
        path = tmp_path / f"{name}-password"
        path.write_text(SECRET + "\n")
        path.chmod(0o600)
        out[name] = str(path)
    return out


def production(pki: Any, secrets: dict[str, str]) -> dict[str, Any]:
    """A complete production-mode setting: every backing connection over verified TLS."""
    return {
        "ALARMHUB_REQUIRE_TLS": True,
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_TLS_CA_FILE": str(pki.ca),
        "KAFKA_TLS_CERT_FILE": str(pki.client_cert),
        "KAFKA_TLS_KEY_FILE": str(pki.client_key),
        "KAFKA_SASL_USERNAME": "alarmhub-triage",
        "KAFKA_SASL_PASSWORD_FILE": secrets["kafka"],
        "REDIS_URL": "rediss://redis.core:6380/0",
        "REDIS_TLS_CA_FILE": str(pki.ca),
        "REDIS_USERNAME": "alarmhub",
        "REDIS_PASSWORD_FILE": secrets["redis"],
        "DATABASE_URL": "postgresql://alarmhub@pg.core:5432/alarmhub",
        "DATABASE_SSLMODE": "verify-full",
        "DATABASE_SSLROOTCERT": str(pki.ca),
        "DATABASE_SSLCERT": str(pki.client_cert),
        "DATABASE_SSLKEY": str(pki.client_key),
    }


def test_production_settings_are_accepted(pki: Any, secret_files: dict[str, str]) -> None:
    s = BaseServiceSettings(**production(pki, secret_files))
    assert s.database_url == (
        "postgresql://alarmhub@pg.core:5432/alarmhub?sslmode=verify-full"
        f"&sslrootcert={str(pki.ca).replace('/', '%2F')}&sslcert={str(pki.client_cert).replace('/', '%2F')}"
        f"&sslkey={str(pki.client_key).replace('/', '%2F')}"
    )
    assert s.kafka_sasl_password() == SECRET and s.redis_password() == SECRET
    assert SECRET not in repr(s) and SECRET not in repr(KafkaSecurity.from_settings(s))


# (what is changed from the production setting, the message that must name the mistake)
REFUSED = [
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_TLS_CA_FILE": None, "KAFKA_TLS_CERT_FILE": None,
      "KAFKA_TLS_KEY_FILE": None}, "KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT is not encrypted"),
    ({"KAFKA_SECURITY_PROTOCOL": "PLAINTEXT", "KAFKA_SASL_USERNAME": None, "KAFKA_SASL_PASSWORD_FILE": None},
     "KAFKA_TLS_CA_FILE, KAFKA_TLS_CERT_FILE, KAFKA_TLS_KEY_FILE set but KAFKA_SECURITY_PROTOCOL=PLAINTEXT"),
    ({"KAFKA_SASL_PASSWORD_FILE": None}, "SASL_SSL needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD_FILE"),
    ({"KAFKA_SASL_PASSWORD_FILE": "/nonexistent/kafka-pw"}, "KAFKA_SASL_PASSWORD_FILE=/nonexistent/kafka-pw: no such file"),
    ({"KAFKA_TLS_CA_FILE": "/nonexistent/ca.crt"}, "KAFKA_TLS_CA_FILE=/nonexistent/ca.crt: no such file"),
    ({"KAFKA_TLS_KEY_FILE": None}, "KAFKA_TLS_CERT_FILE and KAFKA_TLS_KEY_FILE go together"),
    ({"KAFKA_TLS_CHECK_HOSTNAME": False}, "KAFKA_TLS_CHECK_HOSTNAME=0 is refused"),
    ({"KAFKA_SECURITY_PROTOCOL": "SSL"}, "KAFKA_SASL_* set but KAFKA_SECURITY_PROTOCOL=SSL does not use SASL"),
    ({"REDIS_URL": "redis://redis.core:6379/0", "REDIS_TLS_CA_FILE": None},
     "REDIS_URL is redis:// (plain)"),
    ({"REDIS_URL": "redis://redis.core:6379/0"}, "REDIS_TLS_CA_FILE set but REDIS_URL is not rediss://"),
    ({"REDIS_URL": "rediss://:inline@redis.core:6380/0"}, "REDIS_PASSWORD_FILE set and REDIS_URL holds a password"),
    ({"REDIS_PASSWORD_FILE": None}, "REDIS_USERNAME needs a password"),
    ({"REDIS_TLS_CERT_FILE": "/nonexistent/c.crt", "REDIS_TLS_KEY_FILE": "/nonexistent/c.key"},
     "REDIS_TLS_CERT_FILE=/nonexistent/c.crt: no such file"),
    ({"DATABASE_SSLMODE": "require"}, "PostgreSQL sslmode is require; set DATABASE_SSLMODE=verify-full"),
    ({"DATABASE_SSLROOTCERT": None}, "sslmode verify-full needs DATABASE_SSLROOTCERT"),
    ({"DATABASE_SSLROOTCERT": "/nonexistent/root.crt"}, "DATABASE_SSLROOTCERT=/nonexistent/root.crt: no such file"),
    ({"DATABASE_URL": "postgresql://alarmhub@pg.core:5432/alarmhub?sslmode=verify-ca"},
     "DATABASE_URL has sslmode and DATABASE_SSLMODE is set too"),
    ({"DATABASE_SSLKEY": None}, "DATABASE_SSLCERT and DATABASE_SSLKEY go together"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "message"), REFUSED, ids=[m[:40] for _, m in REFUSED])
def test_invalid_combinations_are_refused_with_the_reason(
    pki: Any, secret_files: dict[str, str], change: dict[str, Any], message: str
) -> None:
    env = {**production(pki, secret_files), **change}
    with pytest.raises(ValidationError) as exc:
        BaseServiceSettings(**{k: v for k, v in env.items() if v is not None})
    assert message in str(exc.value)
    assert SECRET not in str(exc.value)


def test_password_files_only(pki: Any, secret_files: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", SECRET)
    with pytest.raises(ValidationError, match="KAFKA_SASL_PASSWORD is not read: put the password in a file"):
        BaseServiceSettings(**production(pki, secret_files))
    monkeypatch.delenv("KAFKA_SASL_PASSWORD")
    empty = Path(secret_files["kafka"])
    empty.write_text("\n")
    with pytest.raises(ValidationError, match=r"KAFKA_SASL_PASSWORD_FILE=.* is empty"):
        BaseServiceSettings(**production(pki, secret_files))


def test_dev_stack_settings_stay_plain() -> None:
    s = BaseServiceSettings()
    assert not s.require_tls and s.kafka_security_protocol == "PLAINTEXT"
    assert KafkaSecurity.from_settings(s).client_kwargs() == {"security_protocol": "PLAINTEXT"}
    assert "ssl" not in s.database_url


def _client_side(client: Any) -> Any:
    return client._client if hasattr(client, "_client") else client.client


async def test_kafka_settings_reach_the_aiokafka_clients(pki: Any, secret_files: dict[str, str]) -> None:
    s = _Settings(**production(pki, secret_files))
    metrics = KafkaMetrics(CollectorRegistry())
    producer = DurableProducer.from_settings(s, metrics=metrics, client_id="transport-test")
    consumer = ConsumerPipeline.from_settings(
        s, topics=["alarms.raw"], model=dict, handler=_nothing, producer=producer, metrics=metrics,
        client_id="transport-test",
    )  # fmt: skip
    built = [producer.new_client(), consumer.new_client()]
    built.append(
        AIOKafkaAdminClient(
            bootstrap_servers=s.kafka_bootstrap, **KafkaSecurity.from_settings(s).client_kwargs()
        )
    )
    try:
        for client in built:
            c = _client_side(client)
            assert c._security_protocol == "SASL_SSL"
            assert (c._sasl_mechanism, c._sasl_plain_username, c._sasl_plain_password) == (
                "SCRAM-SHA-512", "alarmhub-triage", SECRET,
            )  # fmt: skip
            ctx: ssl.SSLContext = c._ssl_context
            assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
            assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
            assert [dict(x[0] for x in ca["subject"]) for ca in ctx.get_ca_certs()] == [
                {"commonName": "alarmhub test CA"}
            ]
    finally:
        await built[0].stop()
        await built[1].stop()
        await built[2].close()


async def _nothing(_msgs: Any) -> None:
    return None


async def _handshake(ctx: ssl.SSLContext, server_ctx: ssl.SSLContext) -> str:
    """Shake hands with a local TLS server that requires a client certificate; the CN it saw."""
    seen: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        cert = writer.get_extra_info("peercert") or {}
        seen.append(dict(x[0] for x in cert.get("subject", ())).get("commonName", ""))
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="127.0.0.1"), 10
        )
        await asyncio.sleep(0.05)
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
    return seen[0] if seen else ""


async def test_kafka_tls_context_verifies_the_server_and_shows_our_certificate(
    pki: Any, secret_files: dict[str, str]
) -> None:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca))
    server_ctx.load_cert_chain(str(pki.server_cert), str(pki.server_key))
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    good = KafkaSecurity.from_settings(BaseServiceSettings(**production(pki, secret_files))).ssl_context()
    assert good is not None
    assert await _handshake(good, server_ctx) == "alarmhub"
    wrong = KafkaSecurity.from_settings(
        BaseServiceSettings(**{**production(pki, secret_files), "KAFKA_TLS_CA_FILE": str(pki.other_ca)})
    ).ssl_context()
    assert wrong is not None
    with pytest.raises(ssl.SSLCertVerificationError):
        await _handshake(wrong, server_ctx)
