"""Every image's command runs as a plain process: the console script that compose.yaml names, with the
environment compose gives it, pointed at the real test broker, Redis and PostgreSQL, on ephemeral ports,
must come up and answer ``/readyz`` — and stop cleanly on SIGTERM, as `docker stop` would ask."""

from __future__ import annotations

import importlib
import importlib.util
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from alarmhub_devstack.testing import SINGLE_WORKER, wait_http
from alarmhub_runtime import BaseServiceSettings

from .conftest import ROOT, console_script, service_dirs

BIN = Path(sys.executable).parent


def _settings_class(package: str) -> type[BaseServiceSettings]:
    module = importlib.import_module(f"{package}.config")
    found = [
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, BaseServiceSettings) and v is not BaseServiceSettings
    ]
    assert len(found) == 1, f"{package}.config should define one settings class, found {found}"
    return found[0]


def _listen_overrides(settings: type[BaseServiceSettings]) -> dict[str, str]:
    """Every ``*_PORT`` setting to a free loopback port (read back for /readyz), every ``*_HOST`` to loopback."""
    from alarmhub_devstack import free_port

    out: dict[str, str] = {}
    for field in settings.model_fields.values():
        alias = field.alias or ""
        if alias.endswith("_PORT"):
            out[alias] = str(free_port())
        elif alias.endswith("_HOST"):
            out[alias] = "127.0.0.1"
    return out


@pytest.mark.parametrize("folder", service_dirs())
def test_image_command_runs_as_a_process(
    folder: str, compose: dict[str, Any], stack: Any, topic_prefix: str
) -> None:
    script, target = console_script(folder)
    package = target.split(":")[0].split(".")[0]
    if importlib.util.find_spec(f"{package}.__main__") is None:
        pytest.skip(f"{package}.__main__ has not landed yet (service under construction)")
    svc = compose["services"][folder]
    assert svc["command"] == [script]
    exe = BIN / script
    assert exe.exists(), f"{script} is not installed in the workspace venv (uv sync --all-packages)"

    env = {k: v for k, v in os.environ.items() if not k.startswith("ALARMHUB_")}
    env.update({k: str(v) for k, v in svc["environment"].items()})
    env.update(
        {
            "KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
            "REDIS_URL": stack.redis_url,
            "DATABASE_URL": stack.database_url,
            "ALARMHUB_TOPIC_PREFIX": topic_prefix,
            # the dev broker (Tansu) does not implement idempotent producers; production keeps it on
            "ALARMHUB_KAFKA_IDEMPOTENCE": "false",
        }
    )
    env.update(_listen_overrides(_settings_class(package)))
    env.update(SINGLE_WORKER)  # the command as one process (workers: services/*/tests/test_*workers.py)
    log_dir = ROOT / "artifacts" / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"deploy-{script}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(exe), *svc["command"][1:]],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            url = f"http://127.0.0.1:{env['ALARMHUB_HEALTH_PORT']}"
            try:
                wait_http(url + "/readyz", timeout=60, proc=proc)
            except (RuntimeError, TimeoutError) as exc:
                raise AssertionError(f"{script} not ready: {exc}\n{log_path.read_text()[-3000:]}") from exc
            wait_http(url + "/healthz", timeout=5, proc=proc)
            with urllib.request.urlopen(url + "/metrics", timeout=5) as resp:
                body = resp.read().decode()
            assert "alarmhub_" in body, f"{script} /metrics exports no alarmhub metric"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0, (
                f"{script} did not exit cleanly on SIGTERM:\n{log_path.read_text()[-3000:]}"
            )
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)


def test_init_command_runs_with_compose_environment(
    compose: dict[str, Any], stack: Any, topic_prefix: str, tmp_path: Path
) -> None:
    """compose's one-shot ``init`` as a process: its command and environment, the secret as a file, an
    empty database; run twice (every `docker compose up` runs it), the second changing nothing."""
    import uuid

    svc = compose["services"]["init"]
    exe = BIN / svc["command"][0]
    assert exe.exists(), "alarmhub-admin is not installed in the workspace venv"
    secret = tmp_path / "admin_password"
    secret.write_text("first-supervisor-pw\n")
    db = stack.admin_database_url.rsplit("/", 1)[0] + f"/alarmhub_init_{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALARMHUB_")}
    env.update({k: str(v) for k, v in svc["environment"].items()})
    env.update(
        {
            "KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
            "REDIS_URL": stack.redis_url,
            "DATABASE_URL": db,
            "ALARMHUB_TOPIC_PREFIX": topic_prefix,
            "ALARMHUB_TOPIC_REPLICATION": "1",  # one test broker (compose: 3)
            "ALARMHUB_ADMIN_PASSWORD_FILE": str(secret),
        }
    )
    try:
        first = subprocess.run(
            [str(exe), *svc["command"][1:]], env=env, capture_output=True, text=True, timeout=120
        )
        assert first.returncode == 0, first.stdout + first.stderr
        assert "city unit: 440300 (示范市) created" in first.stdout
        assert "city supervisor: admin created" in first.stdout
        second = subprocess.run(
            [str(exe), *svc["command"][1:]], env=env, capture_output=True, text=True, timeout=120
        )
        assert second.returncode == 0 and "admin present (nothing to do)" in second.stdout
        assert "first-supervisor-pw" not in first.stdout + first.stderr + second.stdout + second.stderr
    finally:
        from alarmhub_store import sqlalchemy_url
        from sqlalchemy import create_engine, text

        engine = create_engine(sqlalchemy_url(stack.admin_database_url), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{db.rsplit("/", 1)[1]}" WITH (FORCE)'))
        finally:
            engine.dispose()
