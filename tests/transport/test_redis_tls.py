"""Redis over TLS with an ACL user, reached through the services' own settings and client.

A private ``redis-server`` (Debian's, built with TLS) listens only on a TLS loopback port with this test's
certificates, asks every client for a certificate (``tls-auth-clients yes``), has the ``default`` user
switched off and one ACL user ``alarmhub``. The DC-09 receiver is built from ``ContactIdSettings`` with
``rediss://``, ``REDIS_TLS_*``, ``REDIS_USERNAME`` and ``REDIS_PASSWORD_FILE``, and its shared
retransmission memory (the dedup path two receivers share) claims a message on that server. A client
trusting another CA, one without a client certificate and one without the ACL password are refused.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.exceptions
from alarmhub_devstack import free_port
from alarmhub_redis import connect_redis, redis_address
from alarmhub_runtime import BaseServiceSettings
from prometheus_client import CollectorRegistry

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed")

PASSWORD = "acl-pass-7f3e9b"


@pytest.fixture(scope="module")
def tls_redis(pki: Any) -> Iterator[dict[str, Any]]:
    port = free_port()
    conf = pki.dir.parent / "redis.conf"
    conf.write_text(
        "\n".join(
            [
                "port 0",
                f"tls-port {port}",
                "bind 127.0.0.1",
                f"tls-cert-file {pki.server_cert}",
                f"tls-key-file {pki.server_key}",
                f"tls-ca-cert-file {pki.ca}",
                "tls-auth-clients yes",
                'save ""',
                "appendonly no",
                f"dir {pki.dir.parent}",
                "user default off",
                f"user alarmhub on >{PASSWORD} ~* &* +@all -@dangerous",
                "",
            ]
        )
    )
    log = (pki.dir.parent / "redis.log").open("wb")
    proc = subprocess.Popen(["redis-server", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                text = (pki.dir.parent / "redis.log").read_text()
                if "tls-port" in text:  # a build without TLS does not know the directive
                    pytest.skip(f"redis-server built without TLS: {text[-300:]}")
                raise RuntimeError(f"redis-server exited: {text[-800:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield {"port": port}
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "redis-password"
    path.write_text(PASSWORD + "\n")
    path.chmod(0o600)
    return path


def _env(pki: Any, port: int, password_file: Path, **over: Any) -> dict[str, Any]:
    env: dict[str, Any] = {
        "REDIS_URL": f"rediss://127.0.0.1:{port}/0",
        "REDIS_TLS_CA_FILE": str(pki.ca),
        "REDIS_TLS_CERT_FILE": str(pki.client_cert),
        "REDIS_TLS_KEY_FILE": str(pki.client_key),
        "REDIS_USERNAME": "alarmhub",
        "REDIS_PASSWORD_FILE": str(password_file),
    }
    env.update(over)
    return {k: v for k, v in env.items() if v is not None}


async def test_dc09_shared_memory_over_tls_with_acl_user(
    pki: Any, tls_redis: dict[str, Any], password_file: Path
) -> None:
    from alarmhub_ingest_contactid.app import ContactIdApp
    from alarmhub_ingest_contactid.config import ContactIdSettings

    settings = ContactIdSettings(
        **_env(pki, tls_redis["port"], password_file),
        ALARMHUB_DC09_REGISTRY=False,
        ALARMHUB_DC09_REDIS_PREFIX="tls-test:",
        ALARMHUB_DC09_REDIS_TIMEOUT_S=5,
    )
    app = ContactIdApp(settings, CollectorRegistry())
    shared = app.shared
    assert shared is not None
    try:
        key = shared.message_key("L1#1234", bytes.fromhex("00ff10"))
        # the first receiver to claim a message publishes it; a second claim finds it pending on Redis —
        # only a working Redis can say so (without it every claim answers "new" from local memory)
        assert await shared.claim([key]) == ["new"]
        assert await shared.claim([key]) == ["pending"]
        assert shared.available
        who = await shared.redis.execute_command("ACL", "WHOAMI")
        assert (who.decode() if isinstance(who, bytes) else who) == "alarmhub"
        assert await shared.redis.get(key) == f"pending:{shared.node}".encode()
    finally:
        await shared.close()


async def _ping(settings: BaseServiceSettings) -> Any:
    client = connect_redis(redis_address(settings), timeout_s=3)
    try:
        return await client.ping()
    finally:
        await client.aclose()


async def test_wrong_ca_no_client_cert_and_no_password_are_refused(
    pki: Any, tls_redis: dict[str, Any], password_file: Path
) -> None:
    port = tls_redis["port"]
    assert await _ping(BaseServiceSettings(**_env(pki, port, password_file))) is True

    # the server's certificate is not signed by the CA we trust: our side refuses the handshake
    wrong_ca = BaseServiceSettings(**_env(pki, port, password_file, REDIS_TLS_CA_FILE=str(pki.other_ca)))
    with pytest.raises(redis.exceptions.ConnectionError) as exc:
        await _ping(wrong_ca)
    assert isinstance(
        exc.value.__cause__ or exc.value.__context__, ssl.SSLError
    ) or "certificate verify failed" in str(exc.value)

    # alarmhub-admin check names the cause
    from alarmhub_admin.check import run_checks
    from alarmhub_admin.config import AdminSettings

    closed = free_port()
    lines = {
        r.what: r
        for r in await run_checks(
            AdminSettings(
                **_env(pki, port, password_file, REDIS_TLS_CA_FILE=str(pki.other_ca)),
                KAFKA_BOOTSTRAP=f"127.0.0.1:{closed}",
                DATABASE_URL=f"postgresql://x@127.0.0.1:{closed}/x",
                ALARMHUB_DISPATCH_URL=f"http://127.0.0.1:{closed}",
                ALARMHUB_GPS_COMMAND_URL=f"http://127.0.0.1:{closed}/commands",
            )
        )
    }
    assert (
        lines["Redis"].status == "FAIL"
        and "TLS: the server at REDIS_URL showed a certificate" in lines["Redis"].detail
    )

    # no client certificate: the server refuses (tls-auth-clients yes)
    no_cert = BaseServiceSettings(
        **_env(pki, port, password_file, REDIS_TLS_CERT_FILE=None, REDIS_TLS_KEY_FILE=None)
    )
    with pytest.raises((redis.exceptions.ConnectionError, ConnectionResetError, asyncio.IncompleteReadError)):
        await _ping(no_cert)

    # TLS fine but no ACL password: the default user is off, so nothing runs
    no_auth = BaseServiceSettings(
        **_env(pki, port, password_file, REDIS_USERNAME=None, REDIS_PASSWORD_FILE=None)
    )
    with pytest.raises(redis.exceptions.AuthenticationError):
        await _ping(no_auth)
