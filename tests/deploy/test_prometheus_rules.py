"""Alerting rules: ``promtool check rules`` and ``promtool test rules`` (Debian's prometheus package,
installed by scripts/install-system.sh), plus a cross-check that every alarmhub metric named in the
rules and the dashboard is really exported by the code that owns it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import ROOT

RULES = sorted((ROOT / "deploy/prometheus/rules").glob("*.yml"))
RULE_TESTS = sorted((ROOT / "deploy/prometheus/tests").glob("*.yml"))


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None and shutil.which("apt-get"):
        subprocess.run(["bash", str(ROOT / "scripts/install-system.sh")], capture_output=True, timeout=600)
        found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is absent and scripts/install-system.sh could not install it")
    return found


def test_rules_exist() -> None:
    assert RULES and RULE_TESTS


def test_promtool_check_rules() -> None:
    res = subprocess.run(
        [_promtool(), "check", "rules", *map(str, RULES)], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_promtool_check_config() -> None:
    res = subprocess.run(
        [_promtool(), "check", "config", "--syntax-only", str(ROOT / "deploy/prometheus/prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_promtool_test_rules() -> None:
    res = subprocess.run(
        [_promtool(), "test", "rules", *map(str, RULE_TESTS)], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_every_alert_is_unit_tested() -> None:
    alerts = set(re.findall(r"^\s*- alert: (\w+)", "".join(p.read_text() for p in RULES), re.M))
    tested = set(re.findall(r"alertname: (\w+)", "".join(p.read_text() for p in RULE_TESTS)))
    assert alerts == tested, f"alerts without a promtool test: {alerts - tested}"


# owner of each metric family prefix → the module that must define it
_OWNERS = {
    "alarmhub_kafka_": ROOT / "libs/kafka/src/alarmhub_kafka/_metrics.py",
    "alarmhub_event_loop_": ROOT / "libs/runtime/src/alarmhub_runtime/_stalls.py",
    "alarmhub_gc_": ROOT / "libs/runtime/src/alarmhub_runtime/_stalls.py",
    "alarmhub_ingest_contactid_": ROOT / "services/ingest-contactid/src/alarmhub_ingest_contactid/metrics.py",
    "alarmhub_ingest_gps_": ROOT / "services/ingest-gps/src/alarmhub_ingest_gps/metrics.py",
    "alarmhub_ingest_camera_": ROOT / "services/ingest-camera/src/alarmhub_ingest_camera/metrics.py",
    "alarmhub_triage_": ROOT / "services/triage/src/alarmhub_triage/metrics.py",
    "alarmhub_dispatch_": ROOT / "services/dispatch/src/alarmhub_dispatch/metrics.py",
}


def _referenced() -> set[str]:
    texts = [p.read_text() for p in RULES]
    for f in (ROOT / "deploy/grafana/dashboards").glob("*.json"):
        texts += [t["expr"] for p in json.loads(f.read_text())["panels"] for t in p.get("targets", [])]
    names = set()
    for name in re.findall(r"\balarmhub_[a-z0-9_]+", "\n".join(texts)):
        names.add(re.sub(r"_(bucket|sum|count)$", "", name))
    return names


def _defined(module: Path) -> set[str]:
    """Metric names a metrics module declares, whether written out or built from an f-string prefix."""
    text = module.read_text()
    names = set(re.findall(r"\"(alarmhub_[a-z0-9_]+)\"", text))
    prefix = re.search(r"p = \"(alarmhub_[a-z0-9_]+)\"", text)
    if prefix:
        names |= {prefix.group(1) + s for s in re.findall(r"f\"\{p\}(_[a-z0-9_]+)\"", text)}
    return names


@pytest.mark.parametrize("prefix", sorted(_OWNERS))
def test_metrics_named_in_rules_and_dashboard_exist(prefix: str) -> None:
    module = _OWNERS[prefix]
    wanted = {n for n in _referenced() if n.startswith(prefix)}
    if not wanted:
        pytest.skip(f"nothing references {prefix}*")
    if not module.exists():
        pytest.skip(f"{module.relative_to(ROOT)} has not landed yet; expected: {sorted(wanted)}")
    defined = _defined(module)
    missing = {n for n in wanted if n not in defined and re.sub(r"_total$", "", n) not in defined}
    assert not missing, f"{module.relative_to(ROOT)} does not define {sorted(missing)}"
