"""proto/ is generated from the models; this fails when the committed files drift from them."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from alarmhub_events import TOPICS, AlarmEvent, Location, Source, utcnow
from alarmhub_events.proto import render

PROTO = Path(__file__).resolve().parents[3] / "proto"


def test_committed_proto_matches_models() -> None:
    rendered = render()
    stale = [
        rel
        for rel, text in rendered.items()
        if not (PROTO / rel).exists() or (PROTO / rel).read_text() != text
    ]
    assert not stale, f"run `make proto`: {stale} differ from the models"
    on_disk = {str(p.relative_to(PROTO)) for p in PROTO.rglob("*.json")}
    assert on_disk == set(rendered), (
        f"files in proto/ that the models do not produce: {on_disk - set(rendered)}"
    )


def test_every_topic_has_a_schema_and_a_channel() -> None:
    asyncapi = json.loads((PROTO / "asyncapi.json").read_text())
    assert asyncapi["asyncapi"].startswith("3.")
    addresses = {ch["address"] for ch in asyncapi["channels"].values()}
    assert (
        addresses
        == {t.name for t in TOPICS}
        == {
            "alarms.raw",
            "telemetry.gps",
            "devices.status",
            "alarms.triaged",
            "incidents.events",
            "alarms.dlq",
        }
    )


def test_contract_example_validates_against_the_schema() -> None:
    # The example of docs/contract.md "Event shapes", verbatim.
    example = {
        "event_id": "7b0e4a1c-3f55-4a53-9c2c-1d2a8e1f0b11",
        "schema": "alarmhub.alarm.v1",
        "kind": "panic",
        "qualifier": "new",
        "source": {
            "protocol": "dc09-cid",
            "device_id": "L1#1234",
            "account": "1234",
            "receiver": "R1",
            "line": "L1",
            "path": "primary",
            "peer": "127.0.0.1:50000",
        },
        "code": "E120",
        "zone": "001",
        "occurred_at": "2026-01-01T08:00:00Z",
        "received_at": "2026-01-01T08:00:00.120Z",
        "location": {"lat": 22.5431, "lon": 114.0579, "crs": "WGS84"},
        "attributes": {},
        "raw": "original frame, hex or text",
    }
    schema = json.loads((PROTO / "schemas/alarmhub.alarm.v1.schema.json").read_text())
    jsonschema.validate(example, schema)
    event = AlarmEvent.model_validate(example)
    assert event.source.device_id == "L1#1234"
    assert event.received_at.microsecond == 120_000
    # and what we serialize validates too, with the contract's field names
    out = json.loads(event.to_bytes())
    jsonschema.validate(out, schema)
    assert out["schema"] == "alarmhub.alarm.v1" and out["received_at"] == "2026-01-01T08:00:00.120Z"


def test_unknown_kind_and_naive_timestamps_are_rejected() -> None:
    import pytest
    from pydantic import ValidationError

    src = Source(protocol="dc09-cid", device_id="L0#1")
    with pytest.raises(ValidationError):
        AlarmEvent(kind="alien", source=src, occurred_at=utcnow(), received_at=utcnow())  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        AlarmEvent.model_validate(
            {
                "kind": "panic",
                "source": src.model_dump(),
                "occurred_at": "2026-01-01T08:00:00",
                "received_at": "2026-01-01T08:00:00Z",
            }
        )
    with pytest.raises(ValidationError):
        Location(lat=91, lon=0)
