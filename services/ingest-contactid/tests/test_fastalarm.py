"""The hot path's events (built without validation, written without pydantic) equal the validated model
and its own JSON, on real frames. Frames: [CAP] PROSEC/Hikvision captures, [NODE] and [RUST] the frames
of independent DC-09 implementations' test suites, as listed with their sources in test_dc09.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from alarmhub_events import AlarmEvent, Location, Source, unescape_raw
from alarmhub_ingest_contactid.fastalarm import alarm_json
from alarmhub_ingest_contactid.session import Account, Dc09Session, SessionConfig

NOW = datetime(2024, 2, 20, 21, 0, 5, tzinfo=UTC)
FRAMES = [
    # [CAP] PROSEC Contact ID periodic test
    b'\nF68B003B"ADM-CID"0028L0#9757[#9757|1602 00 000]_20:59:45,02-20-2024\r',
    # [CAP] PROSEC SIA-DCS automatic test, account block without '#'
    b'\nB4330036"SIA-DCS"0442L000#36214[36214|NRP]_00:00:00,02-21-2024\r',
    # [CAP] PROSEC SIA-DCS phone line restoral with area modifier
    b'\n3F60003C"SIA-DCS"0001L0#51449[#51449|Nri0000/LR]_21:26:19,12-20-2023\r',
    # [CAP] PROSEC opening / burglary cancel
    b'\n7B620035"SIA-DCS"0005L000#3044[3044|NOP1]_00:03:31,12-21-2023\r',
    b'\n85340035"SIA-DCS"0004L000#3044[3044|NBC1]_00:03:31,12-21-2023\r',
    # [CAP] Hikvision with receiver number
    b'\n99820040"ADM-CID"1937R15L1#21401[#21401|1602 00 000]_20:59:59,02-20-2024\r',
    # [NODE] Contact ID with 4-digit receiver and line
    b'\nF92F0043"ADM-CID"0020R7896L7896#3456[#3456|1407 00 001]_17:01:14,07-26-2024\r',
    # [RUST] hex receiver, no timestamp; SIA text
    b'\nF4D20029"SIA-DCS"0001RF3L77#1234[#1234|NRR|Atest]\r',
]
ACCOUNTS = [
    Account(
        line="1",
        account="21401",
        company="Sécurité Nord",
        site_name='Depot "7"',
        lat=52.52,
        lon=13.405,
        zones={"0": "Tür / Eingang"},
    ),
    Account(line="7896", account="3456", company="acme", zones={"1": "hall"}, lat=-33.9, lon=151.2),
]


def validated(ev: AlarmEvent) -> AlarmEvent:
    """The same event through pydantic's validation, as the receiver built it before."""
    d = dict(ev.__dict__)
    d["source"] = Source(**ev.source.__dict__)
    if ev.location is not None:
        d["location"] = Location(**ev.location.__dict__)
    d["schema"] = d.pop("schema_")
    return AlarmEvent(**d)


@pytest.mark.parametrize("frame", FRAMES)
@pytest.mark.parametrize("with_registry", [False, True])
def test_fast_events_equal_the_validated_model(frame: bytes, with_registry: bool) -> None:
    accounts = {(a.line, a.account): a for a in ACCOUNTS} if with_registry else {}
    out = Dc09Session(SessionConfig(check_clear_timestamps=False), accounts).handle(
        frame, now=NOW, peer="10.0.0.1:4000", transport="tcp"
    )
    assert out.result == "ack" and out.events
    for ev in out.events:
        model = validated(ev)
        assert ev == model
        assert json.loads(alarm_json(ev)) == json.loads(model.to_bytes())
        assert AlarmEvent.from_bytes(alarm_json(ev)) == model


def test_registry_fields_reach_the_json() -> None:
    s = Dc09Session(SessionConfig(check_clear_timestamps=False), {(a.line, a.account): a for a in ACCOUNTS})
    ev = s.handle(FRAMES[5], now=NOW).events[0]
    doc = json.loads(alarm_json(ev))
    assert doc["location"] == {"lat": 52.52, "lon": 13.405, "crs": "WGS84", "source": "registry"}
    assert (
        doc["attributes"]["company"] == "Sécurité Nord" and doc["attributes"]["zone_name"] == "Tür / Eingang"
    )
    assert "Sécurité".encode() in alarm_json(ev)  # UTF-8 as pydantic writes it, not \\u escapes


def test_values_json_cannot_write_fall_back_to_pydantic() -> None:
    ev = Dc09Session(SessionConfig(check_clear_timestamps=False)).handle(FRAMES[0], now=NOW).events[0]
    ev.attributes["nan"] = float("nan")  # pydantic writes null; the fast writer refuses and falls back
    assert alarm_json(ev) == ev.to_bytes()


def test_a_nul_in_an_extended_block_is_escaped_and_the_frame_kept() -> None:
    """Poison pill (issue #13): a NUL in an ``[X…]`` block used to reach PostgreSQL, which refused the row.
    The frame is built by hand from a real one ([CAP] PROSEC burglary cancel) with an extended block."""
    body = b'"SIA-DCS"0004L000#3044[3044|NBC1][Xnote\x00\x01end]_00:03:31,12-21-2023'
    from alarmhub_ingest_contactid.protocols import dc09

    frame = dc09.encode_frame(body)
    out = Dc09Session(SessionConfig(check_clear_timestamps=False)).handle(frame, now=NOW)
    assert out.result == "ack" and len(out.events) == 1  # still an alarm, never refused
    ev = out.events[0]
    data = alarm_json(ev)
    assert b"\\u0000" not in data and b"\x00" not in data and b"\\u0001" not in data
    assert ev.attributes["extended"] == ["Xnote\\x00\\x01end"]
    assert ev.attributes["raw_escaped"] is True
    assert unescape_raw(ev.raw) == frame.decode().strip()
    model = validated(ev)
    assert ev == model and json.loads(data) == json.loads(model.to_bytes())
