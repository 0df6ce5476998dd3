"""Transport security in the deployments, proven without Docker or Kubernetes: compose.tls.yaml merged over
compose.yaml the way Compose merges files, and the Kubernetes rendering's ``transport_tls``.

Each alarmhub container's merged environment is handed to its own settings class with the secrets it
names present as files: it must pass production mode (ALARMHUB_REQUIRE_TLS), so the deployment and the
validation cannot drift apart. Redis and PostgreSQL TLS themselves are tested on real servers in
tests/transport; Kafka's there by configuration only (the dev broker has no TLS/SASL)."""

from __future__ import annotations

import copy
import importlib
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from alarmhub_runtime import BaseServiceSettings

from .conftest import ROOT, TEST_SECRETS, console_script, interpolate, service_dirs
from .test_k8s import K8S, _by_kind, _render_module

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "compose-spec.json").read_text())
_UNION = ("secrets", "volumes", "ports")  # Compose merges these sequences; others are replaced


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            if key in _UNION and isinstance(value, list) and isinstance(base.get(key), list):
                out[key] = base[key] + [v for v in value if v not in base[key]]
            else:
                out[key] = _merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(over)


@pytest.fixture(scope="module")
def overlay() -> dict[str, Any]:
    return interpolate(yaml.safe_load((ROOT / "compose.tls.yaml").read_text()), dict(TEST_SECRETS))


@pytest.fixture(scope="module")
def merged(compose: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    return _merge(compose, overlay)


def _settings_class(service: str) -> type[BaseServiceSettings]:
    if service == "init":
        module = importlib.import_module("alarmhub_admin.config")
    else:
        _, target = console_script(service)
        module = importlib.import_module(target.split(":")[0].rsplit(".", 1)[0] + ".config")
    return next(
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, BaseServiceSettings) and v is not BaseServiceSettings
    )


def test_overlay_and_the_merged_file_match_the_compose_specification(
    overlay: dict[str, Any], merged: dict[str, Any]
) -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for doc in (overlay, merged):
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
        assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)
    for name, svc in merged["services"].items():
        for secret in svc.get("secrets", []):
            source = secret["source"] if isinstance(secret, dict) else secret
            assert source in merged["secrets"], f"{name}: secret {source} is not defined"


def test_every_alarmhub_container_passes_production_mode_with_the_merged_settings(
    merged: dict[str, Any], overlay: dict[str, Any], tmp_path: Path
) -> None:
    ours = [*service_dirs(), "init"]
    assert set(ours) <= set(overlay["services"]), "an alarmhub container left without transport security"
    for name in ours:
        svc = merged["services"][name]
        env = {k: str(v) for k, v in svc["environment"].items()}
        secrets = svc.get("secrets", [])
        for key, value in env.items():
            m = re.fullmatch(r"/run/secrets/(\w+)", value)
            if m:
                assert m.group(1) in secrets, f"{name}: {key} names secret {m.group(1)} it does not mount"
                path = tmp_path / m.group(1)
                path.write_text(f"{m.group(1)}-test-value\n")
                env[key] = str(path)
        assert env["ALARMHUB_REQUIRE_TLS"] == "true"
        known = {f.alias for f in _settings_class(name).model_fields.values() if f.alias} | {"TZ"}
        assert not set(env) - known, f"{name}: settings it does not read: {set(env) - known}"
        settings = _settings_class(name)(**env)
        assert settings.require_tls and settings.kafka_security_protocol == "SASL_SSL"
        assert settings.redis_url.startswith("rediss://") and "sslmode=verify-full" in settings.database_url


def test_tls_servers_in_the_overlay(merged: dict[str, Any]) -> None:
    redis = merged["services"]["redis"]
    assert "--port" in redis["command"] and redis["command"][redis["command"].index("--port") + 1] == "0"
    assert "--aclfile" in redis["command"] and "--requirepass" not in redis["command"]
    for broker in ("kafka-1", "kafka-2", "kafka-3"):
        svc = merged["services"][broker]
        env = svc["environment"]
        assert "PLAINTEXT://" not in env["KAFKA_LISTENERS"].replace("CONTROLLER://", "")
        assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
        assert env["KAFKA_LISTENER_NAME_BROKER_SSL_CLIENT_AUTH"] == "required"
        # what the apache/kafka image's start script (docker/resources/common-scripts/configure) insists on
        # when an advertised listener is SSL/SASL: the keystore and its password files in /etc/kafka/secrets,
        # and KAFKA_OPTS naming a JAAS file
        targets = {s["target"] for s in svc["secrets"] if isinstance(s, dict)}
        for key in (
            "KAFKA_SSL_KEYSTORE_FILENAME",
            "KAFKA_SSL_KEYSTORE_CREDENTIALS",
            "KAFKA_SSL_KEY_CREDENTIALS",
        ):
            assert f"/etc/kafka/secrets/{env[key]}" in targets, f"{broker}: {key}"
        jaas = env["KAFKA_OPTS"].split("java.security.auth.login.config=")[1].split()[0]
        mounted = {v.split(":")[1]: v.split(":")[0] for v in svc["volumes"] if v.startswith("./")}
        assert "ScramLoginModule required" in (ROOT / mounted[jaas]).read_text()
    hba = (ROOT / "deploy" / "postgres" / "tls.sh").read_text()
    assert re.search(r"^hostssl", hba, re.M) and not re.search(r"^host\s", hba, re.M)


def test_k8s_transport_tls_reaches_every_pod(tmp_path: Path) -> None:
    mod = _render_module()
    site = yaml.safe_load((K8S / "site.example.yaml").read_text("utf-8"))
    docs = list(mod.render(site))
    config = _by_kind(docs, "ConfigMap")["alarmhub-config"]["data"]
    pods = [d["spec"]["template"]["spec"] for d in _by_kind(docs, "Deployment").values()]
    pods.append(_by_kind(docs, "Job")["alarmhub-init"]["spec"]["template"]["spec"])
    for pod in pods:
        mounts = pod["containers"][0]["volumeMounts"]
        assert {"name": "tls", "mountPath": mod.TLS_DIR, "readOnly": True} in mounts
        assert {"name": "tls", "secret": {"secretName": "alarmhub-tls", "defaultMode": 0o440}} in pod[
            "volumes"
        ]
        assert pod["securityContext"]["fsGroup"] == 10001
    env = {k: v.replace(mod.TLS_DIR, str(tmp_path)) for k, v in config.items()}
    for name in ("ca.crt", "kafka-password", "redis-password"):
        (tmp_path / name).write_text("test\n")
    env |= {
        "REDIS_URL": "rediss://redis.data.svc:6380/0",
        "DATABASE_URL": "postgresql://alarmhub@pg.data.svc/alarmhub",
    }
    settings = BaseServiceSettings(**env)
    assert settings.require_tls and settings.kafka_sasl_password() == "test"
    plain = mod.render({k: v for k, v in site.items() if k != "transport_tls"})
    assert "ALARMHUB_REQUIRE_TLS" not in _by_kind(plain, "ConfigMap")["alarmhub-config"]["data"]
