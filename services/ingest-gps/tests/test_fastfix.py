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


def test_direct_fix_writes_what_fix_json_writes_of_fast_fix() -> None:
    """``direct_fix`` (the JT/T 808 hot path) against ``fix_json(fast_fix(...))``, byte for byte but the event
    id: text cleaned, optional members left out, -0.0 and a heading beyond 360° as the model path has them,
    the receive time as occurred time; a value plain JSON cannot carry gives the model; bad input raises."""
    import pytest
    from alarmhub_ingest_gps.fastfix import RawFix, direct_fix

    later = datetime(2026, 12, 1, 8, 0, 1, 250_000, tzinfo=UTC)
    cases = [
        dict(
            device_id="t\x001",
            speed_kmh=0.0,
            heading_deg=-0.0,
            altitude_m=-12.0,
            occurred_at=NOW,
            attributes={"s": "a\x01"},
        ),
        dict(
            device_id="019900000001",
            speed_kmh=None,
            heading_deg=361.0,
            altitude_m=None,
            occurred_at=later,
            attributes={},
        ),
        dict(
            device_id="019900000001",
            speed_kmh=3.5,
            heading_deg=359.0,
            altitude_m=8.0,
            occurred_at=NOW,
            attributes={"alarms": ["sos"], "items": {"f0": "00"}},
        ),
    ]
    for case in cases:
        kw = dict(lat=-22.5, lon=114.25, valid=False, received_at=later, protocol=Protocol.JT808, **case)
        new = direct_fix(**kw)  # type: ignore[arg-type]
        assert type(new) is RawFix
        old = fast_fix(**kw)  # type: ignore[arg-type]
        want = fix_json(old).replace(str(old.event_id).encode(), json.loads(new.value)["event_id"].encode())
        assert new.value == want and new.device_id == old.device_id
        assert GpsFix.from_bytes(new.value).model_dump(exclude={"event_id"}) == old.model_dump(
            exclude={"event_id"}
        )
    plain: dict[str, object] = dict(
        device_id="t1",
        lat=1.0,
        lon=2.0,
        speed_kmh=0.0,
        heading_deg=None,
        altitude_m=None,
        valid=True,
        occurred_at=NOW,
        received_at=NOW,
        attributes={},
        protocol=Protocol.JT808,
    )
    odd = direct_fix(**{**plain, "attributes": {"big": 1 << 70}})  # type: ignore[arg-type]
    assert type(odd) is GpsFix and odd.attributes == {"big": 1 << 70}  # orjson: 64-bit integers only
    with pytest.raises(ValueError):
        direct_fix(**{**plain, "lat": 91.0})  # type: ignore[arg-type]
