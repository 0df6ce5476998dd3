"""Shared readers for the static deployment checks: compose.yaml (interpolated as Compose does), the
Dockerfiles, and the contract's service table. Nothing here needs a Docker engine."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

# docs/contract.md: service folder → (health/metrics port, published ports "port/proto")
CONTRACT: dict[str, tuple[int, frozenset[str]]] = {
    "ingest-contactid": (9101, frozenset({"7100/tcp", "7100/udp"})),
    "ingest-gps": (9102, frozenset({"5015/tcp", "5023/tcp", "5013/tcp", "5809/tcp"})),
    "ingest-camera": (9103, frozenset({"8081/tcp", "5060/udp", "5060/tcp"})),
    "triage": (9104, frozenset()),
    "dispatch": (9105, frozenset({"8080/tcp"})),
}

_VAR = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?])?(?P<arg>[^}]*)\})")


class MissingVariable(KeyError):
    """A ``${VAR:?msg}`` whose variable is unset: Compose refuses to start, and so do we."""


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose-style interpolation of every string in a loaded YAML tree (``$$``, ``${V}``, ``${V:-d}``, ``${V:?e}``)."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group("name"), m.group("op"), m.group("arg")
        cur = env.get(name)
        unset = cur is None or (cur == "" and op is not None and op.startswith(":"))
        if op in (":?", "?") and unset:
            raise MissingVariable(f"{name}: {arg}")
        if op in (":-", "-") and unset:
            return arg
        return cur or ""

    return _VAR.sub(repl, value)


def required_variables(text: str) -> set[str]:
    return {m.group("name") for m in _VAR.finditer(text) if m.group("op") in (":?", "?")}


@dataclass(frozen=True)
class Dockerfile:
    path: Path
    instructions: list[tuple[str, str]]  # (INSTRUCTION, arguments), continuation lines joined

    @classmethod
    def read(cls, path: Path) -> Dockerfile:
        out: list[tuple[str, str]] = []
        buf = ""
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if not buf and (not stripped or stripped.startswith("#")):
                continue
            if stripped.startswith("#"):
                continue
            if stripped.endswith("\\"):
                buf += stripped[:-1] + " "
                continue
            buf += stripped
            word, _, rest = buf.partition(" ")
            out.append((word.upper(), rest.strip()))
            buf = ""
        return cls(path, out)

    def args(self, name: str) -> list[str]:
        return [a for i, a in self.instructions if i == name]

    def stages(self) -> list[list[tuple[str, str]]]:
        stages: list[list[tuple[str, str]]] = []
        for ins in self.instructions:
            if ins[0] == "FROM":
                stages.append([])
            if stages:
                stages[-1].append(ins)
        return stages


def service_dirs() -> list[str]:
    return sorted(p.name for p in (ROOT / "services").iterdir() if (p / "pyproject.toml").exists())


def console_script(service_dir: str) -> tuple[str, str]:
    """(script name, "module:function") from the service's pyproject."""
    data = tomllib.loads((ROOT / "services" / service_dir / "pyproject.toml").read_text())
    scripts = data["project"].get("scripts", {})
    assert len(scripts) == 1, f"{service_dir} should declare exactly one console script, has {scripts}"
    return next(iter(scripts.items()))


TEST_SECRETS = {
    "KAFKA_CLUSTER_ID": "MkU3OEVBNTcwNTJENDM2Qk",
    "REDIS_PASSWORD": "redis-test-secret",
    "POSTGRES_PASSWORD": "pg-test-secret",
    "ALARMHUB_GPS_AUTH_SECRET": "gps-test-secret",
    "ALARMHUB_GPS_COMMAND_TOKEN": "gps-command-test-token",
    "ALARMHUB_CAMERA_COMMAND_TOKEN": "camera-command-test-token",
    "ALARMHUB_SIP_PASSWORD": "sip-test-secret",
    "ALARMHUB_WEBHOOK_SECRET": "webhook-test-secret",
    "GRAFANA_ADMIN_USER": "sre",
    "ALARMHUB_CITY_ID": "440300",
    "ALARMHUB_CITY_NAME": "示范市",
    "GRAFANA_ADMIN_PASSWORD": "grafana-test-secret",
    "ALARMHUB_SECRETS_DIR": "/run/alarmhub-secrets",
}


@pytest.fixture(scope="session")
def compose_text() -> str:
    return (ROOT / "compose.yaml").read_text()


@pytest.fixture(scope="session")
def compose_raw(compose_text: str) -> dict[str, Any]:
    return yaml.safe_load(compose_text)


@pytest.fixture(scope="session")
def compose(compose_raw: dict[str, Any]) -> dict[str, Any]:
    """compose.yaml as ``docker compose config`` would see it with the operator's secrets set."""
    return interpolate(compose_raw, dict(TEST_SECRETS))
