"""compose.yaml, proven without a Docker engine: the Compose Specification schema (vendored, see
schemas/README.md) plus the checks `docker compose config` cannot make — the contract's ports, one
Dockerfile per service, Kafka durability settings, Prometheus targets, and no default secrets."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from alarmhub_events import TOPICS

from .conftest import (
    CONTRACT,
    ROOT,
    TEST_SECRETS,
    MissingVariable,
    console_script,
    interpolate,
    required_variables,
    service_dirs,
)

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "compose-spec.json").read_text())
KAFKA_BROKERS = ("kafka-1", "kafka-2", "kafka-3")


def _ports(svc: dict[str, Any]) -> set[str]:
    """Published container ports as "port/proto" (short syntax "host:container[/proto]" or long syntax)."""
    out = set()
    for p in svc.get("ports", []):
        if isinstance(p, dict):
            out.add(f"{p['target']}/{p.get('protocol', 'tcp')}")
            continue
        spec, _, proto = str(p).partition("/")
        out.add(f"{spec.rsplit(':', 1)[-1]}/{proto or 'tcp'}")
    return out


def test_compose_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_schema_rejects_a_broken_file(compose: dict[str, Any]) -> None:
    """The vendored schema is really applied: a misspelt key and a bad type are caught."""
    broken = json.loads(json.dumps(compose))
    broken["services"]["triage"]["restart_policy"] = "always"
    broken["services"]["dispatch"]["ports"] = "8080"
    assert len(list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(broken))) >= 2


def test_production_secrets_have_no_defaults(compose_raw: dict[str, Any], compose_text: str) -> None:
    """Without the operator's secrets, compose refuses to start (``${VAR:?}``), like `docker compose config`."""
    required = required_variables(json.dumps(compose_raw))  # values only, not the comments
    assert {
        "REDIS_PASSWORD",
        "POSTGRES_PASSWORD",
        "GRAFANA_ADMIN_PASSWORD",
        "ALARMHUB_GPS_AUTH_SECRET",
        "ALARMHUB_GPS_COMMAND_TOKEN",
        "ALARMHUB_CAMERA_COMMAND_TOKEN",
        "ALARMHUB_SIP_PASSWORD",
        "KAFKA_CLUSTER_ID",
    } <= required
    assert required <= set(TEST_SECRETS), f"add test values for {required - set(TEST_SECRETS)}"
    with pytest.raises(MissingVariable):
        interpolate(compose_raw, {})
    # no literal secret anywhere: every PASSWORD/SECRET/TOKEN variable is interpolated from the operator's env
    for name, svc in compose_raw["services"].items():
        for key, val in (svc.get("environment") or {}).items():
            if key.endswith("_FILE") and str(val).startswith("/run/secrets/"):
                continue  # the path of a compose secret, not the secret
            if re.search(r"PASSWORD|SECRET|TOKEN", key):
                assert "${" in str(val), f"{name}: {key} has a literal value"
    assert "DEV_TOKEN" not in compose_text and "DEV_MODE" not in compose_text
    for value in ("dev-city-admin", "12345678", "alarmhub-dev-secret"):
        assert value not in compose_text, f"a development default ({value}) leaked into production"


def test_every_service_has_its_image_built_from_its_own_dockerfile(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for folder in service_dirs():
        assert folder in services, f"services/{folder} is not deployed by compose.yaml"
        build = services[folder]["build"]
        assert build["context"] == "."
        assert build["dockerfile"] == f"services/{folder}/Dockerfile"
        assert (ROOT / build["dockerfile"]).is_file()
    for name, svc in services.items():
        if "build" in svc:
            assert (ROOT / svc["build"].get("context", ".") / svc["build"]["dockerfile"]).is_file(), name


def test_service_commands_are_their_console_scripts(compose: dict[str, Any]) -> None:
    for folder in service_dirs():
        script, _ = console_script(folder)
        assert compose["services"][folder]["command"] == [script]
    assert compose["services"]["init"]["command"] == ["alarmhub-admin", "init"]


def test_ports_match_the_contract(compose: dict[str, Any]) -> None:
    for folder, (health, published) in CONTRACT.items():
        svc = compose["services"][folder]
        assert _ports(svc) == set(published), folder
        assert svc["environment"]["ALARMHUB_HEALTH_PORT"] == str(health)
        assert str(health) in [str(p) for p in svc.get("expose", [])], f"{folder} does not expose {health}"
        # metrics stay inside: never published to the host
        assert not any(p.startswith(f"{health}/") for p in _ports(svc))


def test_services_get_the_contract_environment(compose: dict[str, Any]) -> None:
    bootstrap = ",".join(f"{b}:9092" for b in KAFKA_BROKERS)
    for folder in service_dirs():
        env = compose["services"][folder]["environment"]
        assert env["KAFKA_BOOTSTRAP"] == bootstrap
        assert env["REDIS_URL"].startswith("redis://:redis-test-secret@redis:6379/")
        assert env["DATABASE_URL"] == "postgresql://alarmhub:pg-test-secret@postgres:5432/alarmhub"
        assert env["ALARMHUB_KAFKA_IDEMPOTENCE"] == "true"
        deps = compose["services"][folder]["depends_on"]
        assert deps["init"]["condition"] == "service_completed_successfully"
        assert deps["kafka-topics"]["condition"] == "service_completed_successfully"


def test_kafka_is_a_three_node_kraft_cluster_with_durable_defaults(compose: dict[str, Any]) -> None:
    services = compose["services"]
    node_ids = set()
    for b in KAFKA_BROKERS:
        env = services[b]["environment"]
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"] == "false"
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{b}:9092"
        assert services[b]["volumes"], f"{b} keeps its log on a volume"
        node_ids.add(env["KAFKA_NODE_ID"])
    assert node_ids == {"1", "2", "3"}
    assert not any(k.startswith("zookeeper") for k in services)


def test_topic_script_creates_every_contract_topic_with_rf3_min_isr2() -> None:
    text = (ROOT / "deploy/kafka/create-topics.sh").read_text()
    assert re.search(r"^REPLICATION=3$", text, re.M) and re.search(r"^MIN_INSYNC=2$", text, re.M)
    assert '--replication-factor "$REPLICATION"' in text and "min.insync.replicas=${MIN_INSYNC}" in text
    planned = dict(re.findall(r'^\s*"([a-z.]+):(\d+):\d+"$', text, re.M))
    assert set(planned) == {t.name for t in TOPICS}
    for t in TOPICS:
        assert int(planned[t.name]) >= t.partitions, f"{t.name}: fewer partitions than the dev stack"


def _workers(compose: dict[str, Any], folder: str) -> int:
    """The worker count compose pins for a service (1 without ``ALARMHUB_*_WORKERS``); auto (0) is refused:
    it follows the host's CPUs, and Prometheus and the admin check need every worker's port named."""
    env = compose["services"][folder].get("environment", {})
    counts = [int(v) for k, v in env.items() if k.startswith("ALARMHUB_") and k.endswith("_WORKERS")]
    assert all(c >= 1 for c in counts), f"{folder}: pin the worker count in compose.yaml, not auto (0)"
    return counts[0] if counts else 1


def test_prometheus_scrapes_every_service_on_its_contract_port(compose: dict[str, Any]) -> None:
    prom = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    jobs = {
        j["job_name"]: [t for sc in j["static_configs"] for t in sc["targets"]]
        for j in prom["scrape_configs"]
    }
    for folder, (health, _) in CONTRACT.items():
        # a service with SO_REUSEPORT workers has one health/metrics port per worker (base + index)
        assert jobs.get(folder) == [f"{folder}:{health + i}" for i in range(_workers(compose, folder))], (
            folder
        )
    for job, targets in jobs.items():
        for target in targets:
            host, port = target.rsplit(":", 1)
            if host == "localhost":
                continue
            assert host in compose["services"], f"job {job} scrapes {host}, which compose does not define"
            svc = compose["services"][host]
            assert port in [str(p) for p in svc.get("expose", [])], f"{host} does not expose {port}"
            assert set(svc["networks"]) & set(compose["services"]["prometheus"]["networks"]), host
    mounts = " ".join(compose["services"]["prometheus"]["volumes"])
    assert "./deploy/prometheus/rules:/etc/prometheus/rules" in mounts
    assert prom["rule_files"] == ["/etc/prometheus/rules/*.yml"]


def test_network_zones_keep_backing_services_private(compose: dict[str, Any]) -> None:
    """MLPS zoning (docs/deployment.md): ingest faces the Internet, dispatch the police network, the rest is core."""
    services = compose["services"]
    assert compose["networks"]["core"]["internal"] is True
    for name in (*KAFKA_BROKERS, "redis", "postgres", "prometheus"):
        assert services[name]["networks"] == ["core"], name
        assert "ports" not in services[name], f"{name} must not be published"
    for name in ("ingest-contactid", "ingest-gps", "ingest-camera"):
        assert set(services[name]["networks"]) == {"ingest", "core"}
    assert set(services["dispatch"]["networks"]) == {"core", "police"}
    assert "ingest" not in services["dispatch"]["networks"]


def test_grafana_is_provisioned_with_the_dashboard(compose: dict[str, Any]) -> None:
    ds = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    uid = ds["datasources"][0]["uid"]
    assert ds["datasources"][0]["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/alarmhub.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{path}:ro" in mounts
    dashboards = list((ROOT / "deploy/grafana/dashboards").glob("*.json"))
    assert dashboards
    for f in dashboards:
        dash = json.loads(f.read_text())
        panels = [p for p in dash["panels"] if p["type"] != "row"]
        assert panels and dash["uid"]
        for p in panels:
            assert p["datasource"]["uid"] == uid, p["title"]
            assert p["targets"] and all(t["expr"] for t in p["targets"]), p["title"]


def test_alertmanager_routes_to_defined_receivers() -> None:
    am = yaml.safe_load((ROOT / "deploy/alertmanager/alertmanager.yml").read_text())
    names = {r["name"] for r in am["receivers"]}
    routes = [am["route"], *am["route"].get("routes", [])]
    assert all(r["receiver"] in names for r in routes)
    for r in am["receivers"]:
        for hook in r.get("webhook_configs", []):
            assert "url" not in hook, "webhook URLs are secrets: use url_file"


def _listens_on_wildcard(svc: dict[str, Any], port: int) -> bool:
    """Whether the service binds ``port`` on every interface (a ``*_HOST`` of 0.0.0.0 next to a matching
    ``*_PORT`` setting, or the service's default listeners, which bind 0.0.0.0 unless told otherwise)."""
    env = svc.get("environment") or {}
    for key, value in env.items():
        if key.endswith("_HOST") and str(value) not in ("0.0.0.0", "::"):
            port_key = key[: -len("_HOST")] + "_PORT"
            if str(env.get(port_key, "")) == str(port) or (port_key not in env and port in (9112, 9121)):
                return False
    return True


def test_every_internal_url_reaches_a_listening_service(compose: dict[str, Any]) -> None:
    """A service told to call http://<name>:<port>/… finds <name> on a shared network, exposing that port
    and listening on it beyond loopback (compose.yaml had dispatch calling ingest-gps's command endpoint
    at 127.0.0.1, where in a container nothing of ingest-gps listens)."""
    from urllib.parse import urlsplit

    services = compose["services"]
    checked = 0
    for name, svc in services.items():
        urls = [
            (key, url.strip())
            for key, value in (svc.get("environment") or {}).items()
            if key.endswith(("_URL", "_URLS"))
            for url in str(value).split(",")
            if url.strip().startswith("http")
        ]
        for key, value in urls:
            u = urlsplit(str(value))
            host, port = u.hostname or "", u.port or 80
            assert host not in ("127.0.0.1", "localhost"), (
                f"{name}: {key}={value} points at the container itself"
            )
            target = services.get(host)
            assert target is not None, f"{name}: {key} names {host}, which is not a service"
            shared = set(svc.get("networks") or []) & set(target.get("networks") or [])
            assert shared or host == name, f"{name} and {host} share no network ({key})"
            assert str(port) in [str(p) for p in target.get("expose", [])], f"{host} does not expose {port}"
            assert _listens_on_wildcard(target, port), f"{host} binds {port} to loopback only"
            checked += 1
    # dispatch → ingest-gps commands, ingest-gps's advertised URL, dispatch → ingest-camera's Catalog
    assert checked >= 3
    gps = services["ingest-gps"]["environment"]
    assert (
        services["dispatch"]["environment"]["ALARMHUB_GPS_COMMAND_URL"]
        == gps["ALARMHUB_GPS_ADVERTISED_COMMAND_URL"]
    )


def test_admin_check_from_the_init_image_reaches_every_service(
    compose: dict[str, Any], compose_text: str
) -> None:
    """`docker compose run --rm init alarmhub-admin check` (docs/deployment.md) checks dispatch, the GPS
    command endpoint with dispatch's own token, and every service's /readyz — not 127.0.0.1, where in the
    init container nothing listens (its environment named none of them: check reported them all down)."""
    env = compose["services"]["init"]["environment"]
    assert env["ALARMHUB_DISPATCH_URL"] == "http://dispatch:8080"
    assert (
        env["ALARMHUB_GPS_COMMAND_URL"]
        == compose["services"]["dispatch"]["environment"]["ALARMHUB_GPS_COMMAND_URL"]
    )
    assert "ALARMHUB_GPS_COMMAND_TOKEN: ${ALARMHUB_GPS_COMMAND_TOKEN:?" in compose_text
    assert (
        env["ALARMHUB_GPS_COMMAND_TOKEN"]
        == compose["services"]["dispatch"]["environment"]["ALARMHUB_GPS_COMMAND_TOKEN"]
    )
    health = set(env["ALARMHUB_CHECK_HEALTH_URLS"].split(","))
    assert health == {
        f"http://{folder}:{int(compose['services'][folder]['environment']['ALARMHUB_HEALTH_PORT']) + i}/readyz"
        for folder in service_dirs()
        for i in range(_workers(compose, folder))
    }


def test_first_start_runs_admin_init_before_the_services(compose: dict[str, Any]) -> None:
    init = compose["services"]["init"]
    assert init["command"] == ["alarmhub-admin", "init"]
    assert (
        init["build"]["dockerfile"] == "tools/admin/Dockerfile"
        and (ROOT / "tools/admin/Dockerfile").is_file()
    )
    assert init["environment"]["ALARMHUB_ADMIN_PASSWORD_FILE"] == "/run/secrets/admin_password"
    assert "admin_password" in init["secrets"] and "admin_password" in compose["secrets"]
    assert init["environment"]["ALARMHUB_TOPIC_REPLICATION"] == "3"
    assert init["depends_on"]["kafka-topics"]["condition"] == "service_completed_successfully"
    for folder in service_dirs():
        assert (
            compose["services"][folder]["depends_on"]["init"]["condition"] == "service_completed_successfully"
        )
