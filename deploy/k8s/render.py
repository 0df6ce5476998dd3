"""Render alarmhub's Kubernetes manifests from a site file (no Helm: plain Python and PyYAML).

    python deploy/k8s/render.py deploy/k8s/site.example.yaml > alarmhub.yaml

What comes out, per service: a Deployment (probes on the health port: startup and readiness on
``/readyz``, liveness on ``/healthz``; requests and limits; non-root, read-only root filesystem, all
capabilities dropped; anti-affinity across nodes; a 30 s grace for the drain), a PodDisruptionBudget
(``maxUnavailable: 1``), a ClusterIP Service for the health/metrics port and internal APIs, and for the
ingest services a public Service per listener group with ``externalTrafficPolicy: Local`` so each peer's
source address reaches the pod (allow-lists, per-peer limits, the audit trail). Also the Namespace, the
ConfigMap of shared settings, and the ``alarmhub-init`` Job (``alarmhub-admin init``). Kafka, Redis and
PostgreSQL are external: their addresses are settings (Kafka in the ConfigMap; the Redis and PostgreSQL
URLs, which carry passwords, from the operator's Secret ``alarmhub-backing``). With the site's
``transport_tls`` section every service and the Job run in production mode (``ALARMHUB_REQUIRE_TLS``):
Kafka over SASL_SSL with SCRAM, Redis over TLS with an ACL user, PostgreSQL with ``verify-full``; the CA,
the passwords and the optional client certificate come from the operator's Secret ``alarmhub-tls``,
mounted read-only at ``/etc/alarmhub/tls``.
With the site file's ``postgres.pgbackrest``:
PostgreSQL's backups — the pgBackRest repository host's ConfigMap, the stanza Job and the
full/differential backup CronJobs (credentials from the Secrets ``alarmhub-pgbackrest`` and
``alarmhub-pgbackrest-tls``).

tests/deploy/test_k8s.py renders ``site.example.yaml``, compares it with ``rendered/example.yaml`` and
validates every object against the Kubernetes JSON schemas shipped by PyPI ``kubernetes-validate``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

__all__ = ["SERVICES", "render", "render_text"]

# service → (health port, [(port, protocol, name, public)], requests, limits, extra environment)
SERVICES: dict[str, dict[str, Any]] = {
    "ingest-contactid": {
        "health": 9101,
        "ports": [(7100, "TCP", "dc09-tcp", True), (7100, "UDP", "dc09-udp", True)],
        "resources": ({"cpu": "500m", "memory": "256Mi"}, {"cpu": "2", "memory": "512Mi"}),
        # one worker per pod: the probes, the scrape and the PDB see every process; scale with replicas
        "env": {"ALARMHUB_DC09_PORT": "7100", "ALARMHUB_DC09_WORKERS": "1"},
    },
    "ingest-gps": {
        "health": 9102,
        "ports": [
            (5015, "TCP", "jt808", True),
            (5023, "TCP", "gt06", True),
            (5013, "TCP", "h02", True),
            (5809, "TCP", "jt809", True),
            (9112, "TCP", "commands", False),
        ],
        "resources": ({"cpu": "1", "memory": "512Mi"}, {"cpu": "2", "memory": "1Gi"}),
        "env": {
            "ALARMHUB_GPS_UNREGISTERED": "reject",
            "ALARMHUB_GPS_WORKERS": "1",  # one worker per pod (as above): the pod is the unit of scale
            "ALARMHUB_GPS_COMMAND_HOST": "0.0.0.0",
            # each replica says where it is: dispatch sends a vehicle's command to the pod holding its session
            "ALARMHUB_GPS_ADVERTISED_COMMAND_URL": "http://$(POD_IP):9112/commands",
            "ALARMHUB_GPS_GATEWAY_ID": "$(POD_NAME)",
        },
        "secrets": {
            "ALARMHUB_GPS_AUTH_SECRET": "gps-auth-secret",
            "ALARMHUB_GPS_COMMAND_TOKEN": "gps-command-token",
        },
    },
    "ingest-camera": {
        "health": 9103,
        "ports": [
            (8081, "TCP", "http", True),
            (5060, "UDP", "sip-udp", True),
            (5060, "TCP", "sip-tcp", True),
            (9121, "TCP", "commands", False),
        ],
        "resources": ({"cpu": "500m", "memory": "256Mi"}, {"cpu": "2", "memory": "512Mi"}),
        # the GB/T 28181 Catalog endpoint dispatch calls, inside the cluster only (as in compose.yaml)
        "env": {"ALARMHUB_CAMERA_COMMAND_HOST": "0.0.0.0", "ALARMHUB_CAMERA_COMMAND_PORT": "9121"},
        "secrets": {
            "ALARMHUB_SIP_PASSWORD": "sip-password",
            "ALARMHUB_WEBHOOK_SECRET": "webhook-secret",
            "ALARMHUB_CAMERA_COMMAND_TOKEN": "camera-command-token",
        },
    },
    "triage": {
        "health": 9104,
        "ports": [],
        "resources": ({"cpu": "1", "memory": "512Mi"}, {"cpu": "2", "memory": "1Gi"}),
        "env": {},
    },
    "dispatch": {
        "health": 9105,
        "ports": [(8080, "TCP", "http", False)],
        "resources": ({"cpu": "1", "memory": "1Gi"}, {"cpu": "2", "memory": "2Gi"}),
        "env": {
            "ALARMHUB_HTTP_PORT": "8080",
            "ALARMHUB_MIGRATE": "false",
            "ALARMHUB_DEMO_GEOGRAPHY": "false",
            "ALARMHUB_GPS_COMMAND_URL": "http://ingest-gps:9112/commands",
            "ALARMHUB_CAMERA_COMMAND_URL": "http://ingest-camera:9121/gb28181/catalog",
        },
        # dispatch's credentials on the gateways' command ports (the same keys as ingest-gps's, ingest-camera's)
        "secrets": {
            "ALARMHUB_GPS_COMMAND_TOKEN": "gps-command-token",
            "ALARMHUB_CAMERA_COMMAND_TOKEN": "camera-command-token",
        },
    },
}


def _labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "alarmhub"}


def _meta(name: str, ns: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": ns, "labels": _labels(name), **extra}


def _image(site: dict[str, Any], name: str) -> str:
    img = site["image"]
    return f"{img['registry']}/{name}:{img['tag']}"


def _security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _env(site: dict[str, Any], spec: dict[str, Any]) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "ALARMHUB_HEALTH_PORT", "value": str(spec["health"])},
    ]
    for key in ("REDIS_URL", "DATABASE_URL"):
        env.append({"name": key, "valueFrom": {"secretKeyRef": {"name": "alarmhub-backing", "key": key}}})
    for key, secret_key in spec.get("secrets", {}).items():
        env.append(
            {"name": key, "valueFrom": {"secretKeyRef": {"name": "alarmhub-secrets", "key": secret_key}}}
        )
    env += [{"name": k, "value": v} for k, v in spec["env"].items()]
    return env


TLS_DIR = "/etc/alarmhub/tls"


def _tls_settings(site: dict[str, Any]) -> dict[str, str]:
    """The ConfigMap entries of the site's ``transport_tls`` (none without it): file paths and user names only;
    the files are the ``alarmhub-tls`` Secret's keys (``ca.crt``, ``kafka-password``, ``redis-password``,
    with ``client_certificate`` also ``client.crt`` and ``client.key``)."""
    tls = site.get("transport_tls")
    if not tls:
        return {}
    out = {
        "ALARMHUB_REQUIRE_TLS": "true",
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_TLS_CA_FILE": f"{TLS_DIR}/ca.crt",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": str(tls["kafka_user"]),
        "KAFKA_SASL_PASSWORD_FILE": f"{TLS_DIR}/kafka-password",
        "REDIS_TLS_CA_FILE": f"{TLS_DIR}/ca.crt",
        "REDIS_USERNAME": str(tls["redis_user"]),
        "REDIS_PASSWORD_FILE": f"{TLS_DIR}/redis-password",
        "DATABASE_SSLMODE": "verify-full",
        "DATABASE_SSLROOTCERT": f"{TLS_DIR}/ca.crt",
    }
    if tls.get("client_certificate"):
        for prefix in ("KAFKA_TLS_", "REDIS_TLS_"):
            out[prefix + "CERT_FILE"] = f"{TLS_DIR}/client.crt"
            out[prefix + "KEY_FILE"] = f"{TLS_DIR}/client.key"
        out["DATABASE_SSLCERT"] = f"{TLS_DIR}/client.crt"
        out["DATABASE_SSLKEY"] = f"{TLS_DIR}/client.key"
    return out


def _tls_volume(site: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumes, volumeMounts) of the ``alarmhub-tls`` Secret: group-readable (the pods' fsGroup 10001),
    0440 being what libpq accepts for a root-owned client key."""
    if not site.get("transport_tls"):
        return [], []
    volume = {"name": "tls", "secret": {"secretName": "alarmhub-tls", "defaultMode": 0o440}}
    return [volume], [{"name": "tls", "mountPath": TLS_DIR, "readOnly": True}]


def _affinity(name: str, mode: str) -> dict[str, Any]:
    term = {"labelSelector": {"matchLabels": _labels(name)}, "topologyKey": "kubernetes.io/hostname"}
    if mode == "required":
        return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
    return {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": term}]
        }
    }


def _deployment(site: dict[str, Any], name: str, spec: dict[str, Any]) -> dict[str, Any]:
    ns = site["namespace"]
    health = spec["health"]
    requests, limits = spec["resources"]
    probe = {"httpGet": {"path": "/readyz", "port": "health"}, "periodSeconds": 5, "timeoutSeconds": 2}
    tls_volumes, tls_mounts = _tls_volume(site)
    container = {
        "name": name,
        "image": _image(site, name),
        "imagePullPolicy": site["image"].get("pull_policy", "IfNotPresent"),
        "command": [f"alarmhub-{name}"],
        "envFrom": [{"configMapRef": {"name": "alarmhub-config"}}],
        "env": _env(site, spec),
        "ports": [{"name": "health", "containerPort": health, "protocol": "TCP"}]
        + [
            {"name": pname, "containerPort": port, "protocol": proto}
            for port, proto, pname, _ in spec["ports"]
        ],
        "startupProbe": {**probe, "failureThreshold": 60},
        "readinessProbe": {**probe, "failureThreshold": 2},
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "health"},
            "periodSeconds": 10,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        "resources": {"requests": requests, "limits": limits},
        "securityContext": _security(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, *tls_mounts],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, ns),
        "spec": {
            "replicas": int(site["replicas"][name]),
            "selector": {"matchLabels": _labels(name)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {
                    "labels": _labels(name),
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(health),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    "terminationGracePeriodSeconds": 30,
                    "automountServiceAccountToken": False,
                    "securityContext": {"fsGroup": 10001},
                    "affinity": _affinity(name, site.get("anti_affinity", "preferred")),
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}, *tls_volumes],
                },
            },
        },
    }


def _pdb(site: dict[str, Any], name: str) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(name, site["namespace"]),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": _labels(name)}},
    }


def _services(site: dict[str, Any], name: str, spec: dict[str, Any]) -> list[dict[str, Any]]:
    ns = site["namespace"]
    internal = [{"name": "health", "port": spec["health"], "targetPort": "health", "protocol": "TCP"}]
    internal += [
        {"name": pname, "port": port, "targetPort": pname, "protocol": proto}
        for port, proto, pname, public in spec["ports"]
        if not public
    ]
    out = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(name, ns),
            "spec": {"type": "ClusterIP", "selector": _labels(name), "ports": internal},
        }
    ]
    if name == "dispatch" and site.get("dispatch_service", {}).get("type", "ClusterIP") != "ClusterIP":
        out[0]["spec"]["type"] = site["dispatch_service"]["type"]
    public = [(port, proto, pname) for port, proto, pname, pub in spec["ports"] if pub]
    if public:
        ing = site.get("ingest_service") or {}
        svc_spec: dict[str, Any] = {
            "type": ing.get("type", "LoadBalancer"),
            "externalTrafficPolicy": "Local",  # no SNAT: the pod sees the peer's own address
            "selector": _labels(name),
            "ports": [
                {"name": pname, "port": port, "targetPort": pname, "protocol": proto}
                for port, proto, pname in public
            ],
        }
        if ing.get("source_ranges"):
            svc_spec["loadBalancerSourceRanges"] = list(ing["source_ranges"])
        meta = _meta(f"{name}-public", ns)
        if ing.get("annotations"):
            meta["annotations"] = dict(ing["annotations"])
        out.append({"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": svc_spec})
    return out


def _config(site: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta("alarmhub-config", site["namespace"]),
        "data": {
            "KAFKA_BOOTSTRAP": str(site["kafka_bootstrap"]),
            "ALARMHUB_KAFKA_IDEMPOTENCE": "true",
            "ALARMHUB_LOG_LEVEL": "INFO",
            "ALARMHUB_HEALTH_HOST": "0.0.0.0",
            "ALARMHUB_KAFKA_SESSION_TIMEOUT_MS": "10000",
            "TZ": "UTC",
            **_tls_settings(site),
        },
    }


def _init_job(site: dict[str, Any]) -> dict[str, Any]:
    ns = site["namespace"]
    env = [
        {"name": key, "valueFrom": {"secretKeyRef": {"name": "alarmhub-backing", "key": key}}}
        for key in ("REDIS_URL", "DATABASE_URL")
    ] + [
        {"name": "ALARMHUB_TOPIC_REPLICATION", "value": str(site.get("topic_replication", 3))},
        {"name": "ALARMHUB_TOPIC_MIN_INSYNC", "value": str(site.get("topic_min_insync", 2))},
        {"name": "ALARMHUB_CITY_ID", "value": str(site["city"]["id"])},
        {"name": "ALARMHUB_CITY_NAME", "value": str(site["city"]["name"])},
        {"name": "ALARMHUB_ADMIN_PASSWORD_FILE", "value": "/run/secrets/alarmhub/admin-password"},
        # what `alarmhub-admin check` in this image reaches, as the services reach it (docs/deployment.md)
        {"name": "ALARMHUB_DISPATCH_URL", "value": "http://dispatch:8080"},
        {
            "name": "ALARMHUB_GPS_COMMAND_URL",
            "value": SERVICES["dispatch"]["env"]["ALARMHUB_GPS_COMMAND_URL"],
        },
        {
            "name": "ALARMHUB_GPS_COMMAND_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "alarmhub-secrets", "key": "gps-command-token"}},
        },
        {
            "name": "ALARMHUB_CHECK_HEALTH_URLS",
            "value": ",".join(f"http://{n}:{spec['health']}/readyz" for n, spec in SERVICES.items()),
        },
    ]
    tls_volumes, tls_mounts = _tls_volume(site)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta("alarmhub-init", ns),
        "spec": {
            "backoffLimit": 10,
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {"labels": _labels("alarmhub-init")},
                "spec": {
                    "restartPolicy": "OnFailure",
                    "automountServiceAccountToken": False,
                    "securityContext": {"fsGroup": 10001},
                    "containers": [
                        {
                            "name": "init",
                            "image": _image(site, "admin"),
                            "command": ["alarmhub-admin", "init"],
                            "envFrom": [{"configMapRef": {"name": "alarmhub-config"}}],
                            "env": env,
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "256Mi"},
                                "limits": {"cpu": "1", "memory": "512Mi"},
                            },
                            "securityContext": _security(),
                            "volumeMounts": [
                                {"name": "secrets", "mountPath": "/run/secrets/alarmhub", "readOnly": True},
                                {"name": "tmp", "mountPath": "/tmp"},
                                *tls_mounts,
                            ],
                        }
                    ],
                    "volumes": [
                        {
                            "name": "secrets",
                            "secret": {
                                "secretName": "alarmhub-secrets",
                                "items": [{"key": "admin-password", "path": "admin-password"}],
                                "defaultMode": 0o400,
                            },
                        },
                        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                        *tls_volumes,
                    ],
                },
            },
        },
    }


#: the PostgreSQL majors Debian bookworm's pgBackRest (2.45) supports
PGBACKREST_MAJORS = (12, 13, 14, 15)


def _pgbackrest_conf(pg: dict[str, Any]) -> str:
    """The repository host's pgbackrest.conf: the repository in an object store, the database host over
    pgBackRest's TLS protocol (its ``pgbackrest server``, port 8432)."""
    b = pg["pgbackrest"]
    repo = b["repo_s3"]
    return "\n".join(
        [
            "# rendered by deploy/k8s/render.py from the site file's `postgres` section",
            "[global]",
            "repo1-type=s3",
            f"repo1-path={b.get('repo_path', '/alarmhub')}",
            f"repo1-s3-bucket={repo['bucket']}",
            f"repo1-s3-endpoint={repo['endpoint']}",
            f"repo1-s3-region={repo['region']}",
            f"repo1-retention-full={int(b.get('retention_full', 4))}",
            "repo1-cipher-type=aes-256-cbc",
            "# repo1-cipher-pass, repo1-s3-key, repo1-s3-key-secret: PGBACKREST_* from Secret alarmhub-pgbackrest",
            "process-max=2",
            "start-fast=y",
            "compress-type=zst",
            "log-level-console=info",
            "log-level-file=off",
            "",
            "[alarmhub]",
            f"pg1-host={pg['host']}",
            "pg1-host-type=tls",
            "pg1-host-ca-file=/etc/pgbackrest/tls/ca.crt",
            "pg1-host-cert-file=/etc/pgbackrest/tls/tls.crt",
            "pg1-host-key-file=/etc/pgbackrest/tls/tls.key",
            f"pg1-path={pg['data_path']}",
            "",
        ]
    )


def _pgbackrest_pod(site: dict[str, Any], args: list[str]) -> dict[str, Any]:
    b = site["postgres"]["pgbackrest"]
    secret = {"secretKeyRef": {"name": "alarmhub-pgbackrest"}}
    env = [
        {"name": name, "valueFrom": {"secretKeyRef": {**secret["secretKeyRef"], "key": key}}}
        for name, key in (
            ("PGBACKREST_REPO1_CIPHER_PASS", "cipher-pass"),
            ("PGBACKREST_REPO1_S3_KEY", "s3-key"),
            ("PGBACKREST_REPO1_S3_KEY_SECRET", "s3-key-secret"),
        )
    ]
    return {
        "metadata": {"labels": _labels("alarmhub-pgbackrest")},
        "spec": {
            "restartPolicy": "OnFailure",
            "automountServiceAccountToken": False,
            "containers": [
                {
                    "name": "pgbackrest",
                    "image": str(b["image"]),
                    "command": ["pgbackrest", "--stanza=alarmhub", *args],
                    "env": env,
                    "resources": {
                        "requests": {"cpu": "500m", "memory": "256Mi"},
                        "limits": {"cpu": "2", "memory": "1Gi"},
                    },
                    "securityContext": {**_security(), "runAsUser": 999, "runAsGroup": 999},
                    "volumeMounts": [
                        {
                            "name": "conf",
                            "mountPath": "/etc/pgbackrest/pgbackrest.conf",
                            "subPath": "pgbackrest.conf",
                        },
                        {"name": "tls", "mountPath": "/etc/pgbackrest/tls", "readOnly": True},
                        {"name": "tmp", "mountPath": "/tmp"},
                    ],
                }
            ],
            "volumes": [
                {"name": "conf", "configMap": {"name": "alarmhub-pgbackrest"}},
                {"name": "tls", "secret": {"secretName": "alarmhub-pgbackrest-tls", "defaultMode": 0o400}},
                {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
            ],
        },
    }


def _pgbackrest(site: dict[str, Any]) -> list[dict[str, Any]]:
    """pgBackRest for the external PostgreSQL: the repository host's configuration, the stanza Job and the
    full (weekly) and differential (daily) backup CronJobs. The database host archives its WAL to the same
    repository (archive_command, docs/operations.md) and runs ``pgbackrest server`` for these pods."""
    pg = site.get("postgres")
    if not pg or "pgbackrest" not in pg:
        return []
    if int(pg["major"]) not in PGBACKREST_MAJORS:
        raise ValueError(f"postgres.major {pg['major']}: pgBackRest 2.45 supports {PGBACKREST_MAJORS}")
    ns, b = site["namespace"], pg["pgbackrest"]
    out: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta("alarmhub-pgbackrest", ns),
            "data": {"pgbackrest.conf": _pgbackrest_conf(pg)},
        },
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": _meta("alarmhub-pgbackrest-stanza", ns),
            "spec": {"backoffLimit": 10, "template": _pgbackrest_pod(site, ["stanza-create"])},
        },
    ]
    for kind in ("full", "diff"):
        out.append(
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": _meta(f"alarmhub-pgbackrest-{kind}", ns),
                "spec": {
                    "schedule": str(b["schedule"][kind]),
                    "concurrencyPolicy": "Forbid",  # one backup at a time (pgBackRest locks the stanza too)
                    "successfulJobsHistoryLimit": 3,
                    "failedJobsHistoryLimit": 3,
                    "jobTemplate": {
                        "spec": {
                            "backoffLimit": 2,
                            "template": _pgbackrest_pod(site, [f"--type={kind}", "backup"]),
                        }
                    },
                },
            }
        )
    return out


def render(site: dict[str, Any]) -> list[dict[str, Any]]:
    ns = site["namespace"]
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"app.kubernetes.io/part-of": "alarmhub"}},
        },
        _config(site),
        _init_job(site),
    ]
    for name, spec in SERVICES.items():
        docs.append(_deployment(site, name, spec))
        docs.append(_pdb(site, name))
        docs.extend(_services(site, name, spec))
    docs.extend(_pgbackrest(site))
    return docs


def render_text(site: dict[str, Any]) -> str:
    head = "# Rendered by deploy/k8s/render.py — do not edit; change the site file and render again.\n"
    return head + yaml.safe_dump_all(render(site), sort_keys=False, allow_unicode=True)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    site = yaml.safe_load(Path(argv[1]).read_text("utf-8"))
    sys.stdout.write(render_text(site))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
