"""docs/contract.md stays true to the code: its ports, topics and routes are checked against the settings'
defaults, ``alarmhub_events.TOPICS`` and the committed ``proto/openapi.json``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from alarmhub_events import TOPICS

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs/contract.md").read_text("utf-8")


def _rows(heading: str) -> list[list[str]]:
    """The table rows (cells stripped) of the section under ``## heading``."""
    section = DOC.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("|")
    ]
    return rows[2:]  # header and rule


def _settings() -> list[tuple[str, type]]:
    from alarmhub_dispatch.config import DispatchSettings
    from alarmhub_ingest_camera.config import CameraSettings
    from alarmhub_ingest_contactid.config import ContactIdSettings
    from alarmhub_ingest_gps.config import GpsSettings
    from alarmhub_triage.config import TriageSettings

    return [
        ("ingest-contactid", ContactIdSettings),
        ("ingest-gps", GpsSettings),
        ("ingest-camera", CameraSettings),
        ("triage", TriageSettings),
        ("dispatch", DispatchSettings),
    ]


def test_every_listen_port_default_is_in_the_table() -> None:
    table = {
        (r[0], int(r[1].split()[0]), r[2].strip("`"))
        for r in _rows("Listen addresses (defaults; each overridable by its variable)")
    }
    expected = set()
    for service, cls in _settings():
        for name, field in cls.model_fields.items():
            if name.endswith("_port") and isinstance(field.default, int):
                expected.add((service, field.default, field.alias))
    assert expected == table, (
        f"missing from docs/contract.md: {expected - table}; not in the code: {table - expected}"
    )


def test_every_topic_with_its_key_and_schema_is_in_the_table() -> None:
    table = {(r[0].strip("`"), r[1], r[3].strip("`")) for r in _rows("Topics")}
    expected = {(t.name, t.key, str(t.model.model_fields["schema_"].default)) for t in TOPICS}
    assert expected == table


def test_every_route_of_the_openapi_document_is_listed() -> None:
    spec = json.loads((ROOT / "proto/openapi.json").read_text("utf-8"))
    listed: set[tuple[str, str]] = set()
    for methods, paths, _ in _rows("Dispatch API"):
        ms = [m.strip() for m in methods.split(",")]
        full = re.findall(r"`([^`]+)`", paths)
        base = full[0]
        for p in full:
            path = p if p.startswith("/api/") else base.rsplit("/", 1)[0] + p  # `/on-scene` after a full path
            listed.update((m, path) for m in ms)
    expected = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    missing = expected - listed
    assert not missing, f"routes of proto/openapi.json missing from docs/contract.md: {sorted(missing)}"
    assert not listed - expected, f"listed but not in the API: {sorted(listed - expected)}"


@pytest.mark.parametrize("path", ["README.md", "docs"])
def test_nothing_cites_the_old_contract_file(path: str) -> None:
    files = [ROOT / path] if path.endswith(".md") else sorted((ROOT / path).rglob("*.md"))
    cited = [str(f.relative_to(ROOT)) for f in files if "CONTRACT.md" in f.read_text("utf-8")]
    assert not cited, f"cite docs/contract.md instead: {cited}"
