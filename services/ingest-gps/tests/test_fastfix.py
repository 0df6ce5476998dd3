"""The hot path cleans text as the model does (issue #13, poison pills): a NUL in a plate or terminal id
from a frame never reaches Kafka, so never PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from alarmhub_events import GpsFix, Protocol
from alarmhub_ingest_gps.fastfix import fast_fix, fix_json

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def test_fast_fix_cleans_like_the_model() -> None:
    attrs = {
        "alarm_bits": 0,
        "status_bits": 0,
        "vec2_kmh": 0,
        "mileage_km": 0,
        "platform": "plat\x00",
        "plate": "粤B\x0012345",
        "plate_colour": 1,
    }
    kw = dict(lat=22.5, lon=114.0, altitude_m=None, valid=True, occurred_at=NOW, received_at=NOW)
    fix = fast_fix(device_id="粤B\x0012345", speed_kmh=10.0, heading_deg=90.0, attributes=dict(attrs), **kw)  # type: ignore[arg-type]
    model = GpsFix(
        device_id="粤B\x0012345",
        protocol=Protocol.JT809,
        speed_kmh=10.0,
        heading_deg=90.0,
        attributes=dict(attrs),
        **kw,  # type: ignore[arg-type]
    )
    assert fix.device_id == model.device_id == "粤B\\x0012345"
    assert fix.attributes == model.attributes
    data = fix_json(fix)
    assert b"\\u0000" not in data and b"\x00" not in data
    assert json.loads(data) | {"event_id": ""} == json.loads(model.to_bytes()) | {"event_id": ""}
    other = fast_fix(device_id="t1", speed_kmh=0.0, heading_deg=None, attributes={"note": "\x01"}, **kw)  # type: ignore[arg-type]
    assert b"\\u0001" not in fix_json(other) and other.attributes == {"note": "\\x01"}
