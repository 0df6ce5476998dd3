"""The Kubernetes manifests (deploy/k8s): rendered from the example site file, identical to the committed
rendering, valid against the Kubernetes JSON schemas (PyPI kubernetes-validate, offline, strict), and
holding what a city's cluster needs — probes, resources, disruption budgets, anti-affinity, the
contract's ingest ports with source-address preservation, external backing services as settings."""

from __future__ import annotations

import copy
import importlib
import importlib.util
import re
from typing import Any

import kubernetes_validate
import pytest
import yaml
from alarmhub_runtime import BaseServiceSettings

from .conftest import CONTRACT, ROOT, console_script, service_dirs

K8S = ROOT / "deploy" / "k8s"
# the oldest release still commonly run by cities' platform teams, and the newest the package ships
VERSIONS = ("1.29.0", kubernetes_validate.latest_version())


def _render_module() -> Any:
    spec = importlib.util.spec_from_file_location("alarmhub_k8s_render", K8S / "render.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    site = yaml.safe_load((K8S / "site.example.yaml").read_text("utf-8"))
    return list(_render_module().render(site))


def _by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_committed_rendering_is_current() -> None:
    site = yaml.safe_load((K8S / "site.example.yaml").read_text("utf-8"))
    assert (K8S / "rendered" / "example.yaml").read_text("utf-8") == _render_module().render_text(site), (
        "deploy/k8s/rendered/example.yaml is stale: python deploy/k8s/render.py deploy/k8s/site.example.yaml"
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_every_object_validates_against_the_kubernetes_schemas(
    docs: list[dict[str, Any]], version: str
) -> None:
    for d in docs:
        kubernetes_validate.validate(d, version, strict=True)


def test_validation_has_teeth(docs: list[dict[str, Any]]) -> None:
    dep = copy.deepcopy(_by_kind(docs, "Deployment")["dispatch"])
    dep["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "eighty"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(dep, VERSIONS[0], strict=True)
    dep = copy.deepcopy(_by_kind(docs, "Deployment")["dispatch"])
    dep["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(dep, VERSIONS[0], strict=True)


def test_every_service_is_deployed_with_probes_resources_pdb_and_anti_affinity(
    docs: list[dict[str, Any]],
) -> None:
    deps, pdbs = _by_kind(docs, "Deployment"), _by_kind(docs, "PodDisruptionBudget")
    assert set(deps) == set(service_dirs()) == set(pdbs)
    for name, dep in deps.items():
        pod = dep["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        script, _ = console_script(name)
        assert c["command"] == [script]
        health = CONTRACT[name][0]
        assert {"name": "health", "containerPort": health, "protocol": "TCP"} in c["ports"]
        assert (
            c["readinessProbe"]["httpGet"]["path"] == "/readyz"
            and c["startupProbe"]["httpGet"]["path"] == "/readyz"
        )
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert set(c["resources"]["requests"]) == set(c["resources"]["limits"]) == {"cpu", "memory"}
        assert c["securityContext"]["runAsNonRoot"] and c["securityContext"]["readOnlyRootFilesystem"]
        assert dep["spec"]["replicas"] >= 2
        assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        terms = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert terms[0]["topologyKey"] == "kubernetes.io/hostname"
        assert terms[0]["labelSelector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
        assert (
            pdbs[name]["spec"]["selector"] == dep["spec"]["selector"]
            and pdbs[name]["spec"]["maxUnavailable"] == 1
        )


def test_ingest_ports_are_public_with_source_addresses_preserved(docs: list[dict[str, Any]]) -> None:
    services = _by_kind(docs, "Service")
    for name, (_, published) in CONTRACT.items():
        if name == "dispatch" or not published:
            continue
        pub = services[f"{name}-public"]["spec"]
        assert pub["type"] == "LoadBalancer" and pub["externalTrafficPolicy"] == "Local"
        assert {f"{p['port']}/{p['protocol'].lower()}" for p in pub["ports"]} == set(published), name
    # dispatch and the GPS command endpoint stay inside the cluster
    assert services["dispatch"]["spec"]["type"] == "ClusterIP" and "dispatch-public" not in services
    assert 9112 not in [p["port"] for p in services["ingest-gps-public"]["spec"]["ports"]]


def test_dispatch_reaches_the_gps_command_endpoint(docs: list[dict[str, Any]]) -> None:
    deps, services = _by_kind(docs, "Deployment"), _by_kind(docs, "Service")
    env = {e["name"]: e for e in deps["dispatch"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    m = re.fullmatch(r"http://([a-z0-9-]+):(\d+)/commands", env["ALARMHUB_GPS_COMMAND_URL"]["value"])
    assert m, env["ALARMHUB_GPS_COMMAND_URL"]
    assert int(m.group(2)) in [p["port"] for p in services[m.group(1)]["spec"]["ports"]]
    gps = {e["name"]: e for e in deps["ingest-gps"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert gps["ALARMHUB_GPS_COMMAND_HOST"]["value"] == "0.0.0.0"
    assert gps["ALARMHUB_GPS_ADVERTISED_COMMAND_URL"]["value"] == "http://$(POD_IP):9112/commands"


def test_dispatch_reaches_the_camera_catalog_endpoint(docs: list[dict[str, Any]]) -> None:
    """As in compose.yaml: dispatch's ALARMHUB_CAMERA_COMMAND_URL names ingest-camera's Service on a port it
    carries (not public), ingest-camera listens beyond loopback there, both hold the same token Secret key
    (the rendering had none of it: dispatch called 127.0.0.1:9121, where nothing of ingest-camera listens)."""
    deps, services = _by_kind(docs, "Deployment"), _by_kind(docs, "Service")
    env = {e["name"]: e for e in deps["dispatch"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    m = re.fullmatch(
        r"http://([a-z0-9-]+):(\d+)/gb28181/catalog", env["ALARMHUB_CAMERA_COMMAND_URL"]["value"]
    )
    assert m and m.group(1) == "ingest-camera", env["ALARMHUB_CAMERA_COMMAND_URL"]
    assert int(m.group(2)) in [p["port"] for p in services["ingest-camera"]["spec"]["ports"]]
    assert int(m.group(2)) not in [p["port"] for p in services["ingest-camera-public"]["spec"]["ports"]]
    cam = {e["name"]: e for e in deps["ingest-camera"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert cam["ALARMHUB_CAMERA_COMMAND_HOST"]["value"] == "0.0.0.0"
    assert cam["ALARMHUB_CAMERA_COMMAND_PORT"]["value"] == m.group(2)
    assert (
        cam["ALARMHUB_CAMERA_COMMAND_TOKEN"]["valueFrom"] == env["ALARMHUB_CAMERA_COMMAND_TOKEN"]["valueFrom"]
    )


def _settings_aliases(folder: str) -> set[str]:
    _, target = console_script(folder)
    module = importlib.import_module(target.split(":")[0].rsplit(".", 1)[0] + ".config")
    cls = next(
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, BaseServiceSettings) and v is not BaseServiceSettings
    )
    return {f.alias for f in cls.model_fields.values() if f.alias}


def test_every_setting_is_one_the_service_reads_and_no_secret_is_literal(docs: list[dict[str, Any]]) -> None:
    config = _by_kind(docs, "ConfigMap")["alarmhub-config"]["data"]
    for name, dep in _by_kind(docs, "Deployment").items():
        known = _settings_aliases(name) | {"POD_IP", "POD_NAME", "TZ"}
        c = dep["spec"]["template"]["spec"]["containers"][0]
        names = [e["name"] for e in c["env"]] + list(config)
        assert not set(names) - known, f"{name}: settings it does not read: {set(names) - known}"
        for e in c["env"]:
            if re.search(r"PASSWORD|SECRET|TOKEN|DATABASE_URL|REDIS_URL", e["name"]):
                assert "secretKeyRef" in e.get("valueFrom", {}), f"{name}: {e['name']} is not from a Secret"
    job = _by_kind(docs, "Job")["alarmhub-init"]["spec"]["template"]["spec"]["containers"][0]
    assert job["command"] == ["alarmhub-admin", "init"]
    assert "DEV_TOKEN" not in (K8S / "rendered" / "example.yaml").read_text()
