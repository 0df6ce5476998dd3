"""Text cleaning at the model boundary (issue #13, poison pills): never refused, never unstorable."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alarmhub_events import (
    AlarmEvent,
    DlqRecord,
    GpsFix,
    IncidentEvent,
    Source,
    TriagedAlarm,
    clean_text,
    unescape_raw,
)

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
UNSAFE = "\x00\x01\x08\x0b\x0c\x0e\x1b\x1f\x7f\x80\x9f"


def _alarm(**kw: object) -> AlarmEvent:
    base: dict[str, object] = {
        "kind": "panic",
        "source": {"protocol": "dc09-sia", "device_id": "L1#1234"},
        "occurred_at": NOW,
        "received_at": NOW,
    }
    return AlarmEvent.model_validate({**base, **kw})


def _has_unsafe(text: str) -> bool:
    return any(c in text for c in UNSAFE) or any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def test_clean_text_escapes_control_characters_and_keeps_clean_text() -> None:
    assert clean_text("L1#1234 Tür 门") == "L1#1234 Tür 门"
    assert clean_text("a\tb\r\nc") == "a\tb\r\nc"  # whitespace stays
    assert clean_text("cam\x001") == "cam\\x001"
    assert clean_text("\x1b[31m") == "\\x1b[31m"
    assert clean_text(b"id\xff".decode("utf-8", "surrogateescape")) == "id\\xff"
    for c in UNSAFE:
        assert not _has_unsafe(clean_text(f"x{c}y"))
    once = clean_text("a\x00b\\x00")
    assert clean_text(once) == once  # idempotent: a downstream validation changes nothing


def test_an_sos_with_a_nul_everywhere_is_still_an_sos() -> None:
    ev = _alarm(
        source={"protocol": "onvif", "device_id": "cam\x001", "account": "\x00", "peer": "1.2.3.4:5\x07"},
        code="E1\x0020",
        zone="0\x001",
        attributes={"extended": ["X\x00note"], "k\x00": {"nested": ["\x01", 1, None, True]}},
        raw='"SIA-DCS"0001L0#1234[#1234|NPA\x00]',
    )
    assert ev.kind == "panic"
    data = ev.to_bytes()
    assert b"\\u0000" not in data and b"\\u0001" not in data and b"\\u0007" not in data
    assert ev.source.device_id == "cam\\x001" and ev.code == "E1\\x0020"
    assert ev.attributes["k\\x00"] == {"nested": ["\\x01", 1, None, True]}
    assert ev.attributes["raw_escaped"] is True
    assert unescape_raw(ev.raw) == '"SIA-DCS"0001L0#1234[#1234|NPA\x00]'
    again = AlarmEvent.from_bytes(data)
    assert again.raw == ev.raw and again.attributes == ev.attributes and again.source == ev.source


def test_raw_escape_is_reversible_with_backslashes_and_absent_when_clean() -> None:
    frame = "a\\x00b\x00c\\\\d\x7f"
    ev = _alarm(raw=frame)
    assert unescape_raw(ev.raw) == frame and not _has_unsafe(ev.raw)
    clean = _alarm(raw='"SIA-DCS"0001L0#1234[#1234|NPA]\\')
    assert clean.raw == '"SIA-DCS"0001L0#1234[#1234|NPA]\\' and "raw_escaped" not in clean.attributes


def test_json_with_escaped_nul_is_cleaned_on_the_way_in() -> None:
    """A record written by a producer that did not clean (``\\u0000`` in its JSON) is cleaned when read."""
    data = _alarm().to_bytes().replace(b'"L1#1234"', b'"L1#12\\u000034"')
    assert AlarmEvent.from_bytes(data).source.device_id == "L1#12\\x0034"
    triaged = TriagedAlarm.model_validate(
        {
            "incident_id": "0d3c4a8e-1b5c-4d7e-9f00-000000000001",
            "event": {**_alarm().model_dump(mode="json"), "zone": "\x00"},
            "decision": "dispatch",
            "score": 90,
            "rule_version": "r\x001",
            "reasons": [{"code": "c\x00", "text": "t\x00", "text_zh": "中\x00"}],
            "decided_at": NOW,
        }
    )
    assert not _has_unsafe(triaged.model_dump_json())


def test_every_event_model_cleans_its_text() -> None:
    fix = GpsFix(
        device_id="\x00013800138000",
        protocol="jt808",
        lat=22.5,
        lon=114.0,
        occurred_at=NOW,
        received_at=NOW,
        attributes={"plate": "粤B\x0012345"},
    )
    inc = IncidentEvent.model_validate(
        {
            "incident_id": "0d3c4a8e-1b5c-4d7e-9f00-000000000001",
            "type": "opened",
            "status": "opened",
            "actor": {"user": "u\x00", "address": "a\x01"},
            "station": "s\x00",
            "at": NOW,
            "source_device_id": "d\x00",
            "data": {"note": "\x00"},
        }
    )
    dlq = DlqRecord(
        service="x", stage="process", source_id="t/0/1", error="bad \x00", raw_b64="", occurred_at=NOW
    )
    for m in (fix, inc, dlq):
        assert not _has_unsafe(m.model_dump_json()), m


@pytest.mark.parametrize("device_id", ["", "x" * 129])
def test_identity_limits_still_hold(device_id: str) -> None:
    with pytest.raises(ValueError):
        Source(protocol="onvif", device_id=device_id)
