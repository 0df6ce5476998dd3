"""Triage's rules name only what ingest writes (signals, attribute keys and values, kinds, event codes).

The words are collected by running the ingest code itself — not by reading a list: ingest-gps's JT/T 808,
GT06 and H02 sessions fed the vehicle cases' frames in each protocol (and alarm frames), the JT/T 809
intake's link session fed a position and every warning type, dispatch's owner theft report,
ingest-contactid's DC-09 session with a zone registry written through dispatch's registry body, and the
camera intake's event builder. Every signal, attribute key (with a value of the type the rule compares) and
kind that a rule in ``rules/default.yaml`` names must be among them; and every vehicle signal a sequence
names must be one ingest-gps actually produced from frames. A rule naming anything else — the drift of
issue 20, ``ignition: true, authorized: false`` that no gateway ever wrote — fails here.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alarmhub_events import ALARMS_RAW, SENSOR, AlarmEvent, Sensor, VehicleAttr, VehicleSignal
from alarmhub_ingest_gps.sessions import (
    DictDirectory,
    Gt06Session,
    H02Session,
    Jt808Session,
    SessionConfig,
    VehicleInfo,
)
from alarmhub_ingest_gps.signals import SIGNALS
from alarmhub_sim.vehicle_cases import CASES, PROTOCOLS, build_case, run_case
from alarmhub_triage import load_rules
from alarmhub_triage.model import Record

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
S = VehicleSignal


class Seen:
    """What ingest published on alarms.raw: every event's kind and attributes, and the words by key."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        #: the same events as triage keeps them for its rules (``Record.of``: the attributes it reads)
        self.kept: list[tuple[str, dict[str, Any]]] = []
        self.attrs: dict[str, set[type]] = defaultdict(set)
        self.values: dict[str, set[Any]] = defaultdict(set)

    @property
    def kinds(self) -> set[str]:
        return {k for k, _ in self.events}

    def add(self, ev: AlarmEvent) -> None:
        self.events.append((ev.kind.value, dict(ev.attributes)))
        self.kept.append((ev.kind.value, Record.of(ev).attrs))
        for k, v in ev.attributes.items():
            self.attrs[k].add(type(v))
            if isinstance(v, str | bool):
                self.values[k].add(v)


def problems(rules: Any, seen: Seen) -> list[str]:
    """Why each vehicle pattern of ``rules`` could never fire on what ingest wrote (empty: all can)."""
    out = []
    min_speed = rules.vehicle.parked_speed_kmh
    for pat in rules.vehicle.patterns:
        for n, step in enumerate(pat.sequence):
            for sig in step:
                if sig.value not in seen.values[VehicleAttr.SIGNAL]:
                    out.append(f"{pat.name}: signal {sig.value!r} is written by no ingest path")
            if pat.moving and n == len(pat.sequence) - 1:
                fast = any(
                    a.get(VehicleAttr.SIGNAL) in step and (a.get(VehicleAttr.SPEED_KMH) or 0) >= min_speed
                    for _, a in seen.kept
                )
                if not fast:
                    out.append(f"{pat.name}: no {[s.value for s in step]} is ever written with speed_kmh")
        if pat.kinds:
            kinds = {k.value for k in pat.kinds}
            for key in pat.attributes:
                if key not in seen.attrs:
                    out.append(f"{pat.name}: attribute {key!r} is written by no ingest path")
                elif not any(key in a for _, a in seen.kept):
                    out.append(f"{pat.name}: attribute {key!r} is dropped by triage before its rules")
            if not any(
                kind in kinds and all(key in a and a[key] == v for key, v in pat.attributes.items())
                for kind, a in seen.kept
            ):
                out.append(f"{pat.name}: no {sorted(kinds)} alarm is ever written with {pat.attributes}")
        for kind in pat.all_of:
            if kind.value not in seen.kinds:
                out.append(f"{pat.name}: kind {kind.value!r} is published by no ingest path")
    return out


def _jt808_cases(seen: Seen) -> None:
    from alarmhub_ingest_gps.protocols import jt808

    # an armed car leaving its area: alarm bit 20 with item 0x12 (area 7, direction 1: out), as a JT/T 808
    # terminal reports it
    phone = "013500009999"
    s = Jt808Session(DictDirectory({phone: VehicleInfo(phone, "jt808", armed=True)}), SessionConfig())
    reply = jt808.decode(bytes(s.feed(jt808.encode(0x0100, phone, 1, bytes(37)), NOW).reply).strip(b"~"))
    s.feed(jt808.encode(0x0102, phone, 2, reply.body[3:]), NOW)
    item = bytes([0x12, 6, 1]) + (7).to_bytes(4, "big") + b"\x01"
    body = jt808.encode_location_body(
        lat=22.54,
        lon=114.05,
        alarm_bits=1 << 20,
        speed_kmh=30,
        local_time=datetime(2026, 12, 1, 10),
        extra=item,
    )
    for ev in _session_alarms(s, [jt808.encode(0x0200, phone, 3, body)]):
        seen.add(ev)

    # the labelled cases as each tracker protocol reports them, through that protocol's own session: every
    # one writes the watch's signals (the same vehicle watch behind JT/T 808, GT06 and H02)
    watch = {S.ARMED_IGNITION.value, S.ARMED_MOVEMENT.value, S.PARKED_DISPLACEMENT.value}
    for proto in PROTOCOLS:
        rng = random.Random(20)
        written: set[Any] = set()
        for i, name in enumerate(CASES):
            for j in range(3):
                case = build_case(name, f"0135{i:04d}{j:04d}", rng, 22.54, 114.05)
                for ev in run_case(case, NOW, proto):
                    written.add(ev.attributes.get(VehicleAttr.SIGNAL))
                    seen.add(ev)
        assert watch | {S.SOS.value, S.POWER_CUT.value} <= written, (proto, written)


def _session_alarms(session: Any, frames: list[bytes]) -> list[AlarmEvent]:
    out = []
    for n, frame in enumerate(frames):
        o = session.feed(frame, NOW + timedelta(seconds=n))
        out += [ev for topic, ev in o.publish if topic == ALARMS_RAW]
    return out


# traccar Gt06ProtocolDecoderTest / H02ProtocolDecoderTest frames (as in services/ingest-gps/tests)
GT06_LOGIN = "78780D01086471700328358100093F040D0A"
GT06_ALARM_VIBRATION = "787825160F0C1D0A2B21C8027AC8040C46581000146F0901CC00287D001F714804040301001C84CF0D0A"
GT06_ALARM_REMOVAL = "7878251613020C12141AC5027951430C2A16F60014000900000000001A00007C550300020002F1E70D0A"
H02_BINARY_SOS = "24410600082621532131081504419390060740418306000000fffffbfdff0015060000002c02dc0c000000001f"


def _gt06(seen: Seen) -> None:
    imei = "864717003283581"
    s = Gt06Session(DictDirectory({imei: VehicleInfo(imei, "gt06", armed=True)}), SessionConfig())
    frames = [bytes.fromhex(h) for h in (GT06_LOGIN, GT06_ALARM_VIBRATION, GT06_ALARM_REMOVAL)]
    alarms = _session_alarms(s, frames)
    assert {a.attributes.get(VehicleAttr.SIGNAL) for a in alarms} >= {"vibration", "tamper"}
    for ev in alarms:
        seen.add(ev)


def _h02(seen: Seen) -> None:
    s = H02Session(DictDirectory(), SessionConfig())
    alarms = _session_alarms(s, [bytes.fromhex(H02_BINARY_SOS)])
    assert [a.attributes.get(VehicleAttr.SIGNAL) for a in alarms] == ["sos"]
    for ev in alarms:
        seen.add(ev)


# SmallChi/JT809 JT809_0x1001PackageTest.cs Test2 (login, 2011: user 20180920, password "20180920"), and the
# published 0x1202 (alarm word 257: emergency + power cut) and 0x1402 (2011) bodies, as in
# services/ingest-gps/tests/test_jt809.py
JT809_LOGIN = (
    "5B000000480000008510010133EFB8010000000000270F0133EFB832303138303932303132372E302E302E31"
    "000000000000000000000000000000000000000000000003296A915D"
)
JT809_1202 = "00130707DC0F0F0F07EF4D80017018400032003300000096002D002D0000000300000101"
JT809_1402 = "01000B000000005BAA5B8000000D100000000A67666466343534353533"


def _jt809(seen: Seen) -> None:
    """The JT/T 809 intake's own link session: a subordinate platform logs in, forwards a position with
    alarm bits and then one 0x1402 warning of every warn type the link defines."""
    from alarmhub_ingest_gps.jt809 import Jt809LinkSession, PlatformDirectory, PlatformRecord
    from alarmhub_ingest_gps.protocols import jt809 as p

    platform = PlatformRecord(user_id=20180920, password="20180920", gnss_center_id=20180920, name="op-a")
    s = Jt809LinkSession(PlatformDirectory([platform]), peer="127.0.0.1:5000", verify_code=lambda: 0xD4B8)
    assert s.feed(bytes.fromhex(JT809_LOGIN), NOW).login_result == p.LOGIN_OK

    def wrap(msg_id: int, sub: int, data: bytes) -> bytes:
        return p.encode(msg_id, p.encode_vehicle("粤B12345", 2, sub, data), serial=7, gnss_center_id=20180920)

    frames = [wrap(0x1200, 0x1202, bytes.fromhex(JT809_1202))]
    body = bytes.fromhex(JT809_1402)
    frames += [wrap(0x1400, 0x1402, body[:1] + code.to_bytes(2, "big") + body[3:]) for code in p.WARN_TYPES]
    police = {"vehicle_theft", "vehicle_sos", "geofence", "power_cut", "tamper", "duress"}
    alarms = _session_alarms(s, frames)
    assert {a.code for a in alarms} >= {"theft", "hijack", "area_exit", "vehicle_moved", "power_cut"}
    for ev in alarms:
        if ev.kind.value in police:
            assert VehicleAttr.SIGNAL in ev.attributes, (
                f"JT/T 809 {ev.code!r} ({ev.kind.value}) has no signal"
            )
        seen.add(ev)


def _dispatch_owner_report(seen: Seen) -> None:
    from alarmhub_dispatch.auth import Principal
    from alarmhub_dispatch.theft import TheftReport, report_event

    who = Principal(user="owner", role="vehicle_owner", unit=None, scope={"vehicles": ["013900000001"]})
    vehicle = {"device_id": "013900000001", "protocol": "jt808", "plate": "粤B1"}
    seen.add(report_event(vehicle, who, TheftReport(), NOW, None))


def _contactid(seen: Seen) -> None:
    from alarmhub_dispatch.registry import KINDS
    from alarmhub_ingest_contactid.registry import account_from_row
    from alarmhub_ingest_contactid.session import Dc09Session
    from alarmhub_ingest_contactid.session import SessionConfig as Dc09Config

    # the zone registry as an operator writes it through dispatch's registry API (the body → the accounts
    # row), read back by ingest-contactid's registry
    body = {
        "line": "0",
        "account": "9757",
        "company": "acme",
        "site": {"zones": {"000": {"name": "hall", "sensor": "pir"}}},
    }
    row = {"key_hex": None, "unit": None, **KINDS["accounts"].to_row(body)}
    acct = account_from_row(row)
    s = Dc09Session(Dc09Config(check_clear_timestamps=False), {(acct.line, acct.account): acct})
    # a real Contact ID frame (ingest-contactid's test corpus, [PYSIA]); zone 000 is the hall PIR here
    frame = b'\nF68B003B"ADM-CID"0028L0#9757[#9757|1602 00 000]_20:59:45,02-20-2024\r'
    for ev in s.handle(frame, now=NOW).events:
        seen.add(ev)


def _camera(seen: Seen) -> None:
    from alarmhub_ingest_camera.events import alarm_event, from_isapi
    from alarmhub_ingest_camera.noise import Decision, Verdict
    from alarmhub_ingest_camera.protocols import isapi

    xml = (
        b'<EventNotificationAlert version="2.0"><ipAddress>10.0.0.7</ipAddress><channelID>1</channelID>'
        b"<dateTime>2026-12-01T10:00:00+08:00</dateTime><eventType>linedetection</eventType>"
        b"<eventState>active</eventState><eventDescription>line crossing</eventDescription>"
        b"</EventNotificationAlert>"
    )
    push = isapi.decode(xml, "application/xml")
    obs = from_isapi(push, "isapi:10.0.0.7:1")
    seen.add(alarm_event(obs, Verdict(Decision.NEW), None, peer=None, now=NOW))


@pytest.fixture(scope="module")
def seen() -> Seen:
    s = Seen()
    for collect in (_jt808_cases, _gt06, _h02, _jt809, _dispatch_owner_report, _contactid, _camera):
        collect(s)
    return s


def test_every_rule_names_what_ingest_writes(seen: Seen) -> None:
    found = problems(load_rules(), seen)
    assert not found, "\n".join(found)


def test_the_sensing_principle_rule_has_writers(seen: Seen) -> None:
    # confirmation.principle_points reads attributes.sensor: a panel zone and a camera both write it
    assert {"pir", "video"} <= seen.values[SENSOR]
    assert seen.values[SENSOR] <= {m.value for m in Sensor}


def test_ingest_writes_only_words_of_the_vocabulary(seen: Seen) -> None:
    assert seen.values[VehicleAttr.SIGNAL] <= {m.value for m in VehicleSignal}
    assert set(SIGNALS.values()) <= set(VehicleSignal)
    # the tracker cases alone produce every signal the default sequences need
    needed = {sig.value for pat in load_rules().vehicle.patterns for step in pat.sequence for sig in step}
    assert needed <= seen.values[VehicleAttr.SIGNAL]


def code_problems(rules: Any) -> list[str]:
    """Why each event code a rule names (``test_mode``'s start and end codes) could never arrive: ingest-
    contactid's own decoders must turn it into that ``code`` of a known kind (Contact ID ``E607`` from
    qualifier 1 and event 607; a SIA two-letter code from its table)."""
    from alarmhub_ingest_contactid.protocols import contactid, sia

    out = []
    for name, codes in (
        ("test_mode.start_codes", rules.test_mode.start_codes),
        ("test_mode.end_codes", rules.test_mode.end_codes),
    ):
        for code in codes:
            q = {"E": "1", "R": "3", "P": "6"}.get(code[:1])
            if q is not None and len(code) == 4 and code[1:].isdigit():
                ev: Any = contactid.decode(f"#9757|{q}{code[1:]} 01 001")
            else:
                ev = sia.decode(f"#9757|N{code}01")[1][0]
            if ev.code != code or ev.kind.value == "other":
                out.append(
                    f"{name}: code {code!r} is decoded by no ingest path (got {ev.code} {ev.kind.value})"
                )
    return out


def test_every_code_a_rule_names_is_one_ingest_decodes() -> None:
    from alarmhub_triage import parse_rules

    assert code_problems(load_rules()) == []
    # the check catches a code no panel protocol knows, and one outside the decoders' tables
    bad = parse_rules('version: "x"\ntest_mode: {start_codes: [E607, E999, ZZ], end_codes: [R607]}\n')
    assert [p.split("'")[1] for p in code_problems(bad)] == ["E999", "ZZ"]


#: the vehicle patterns of rules 2026.11.25-1, before issue 20: they matched attributes no gateway wrote
PRE_ISSUE_20 = """
version: "2026.11.25-1"
vehicle:
  patterns:
    - {name: ignition_without_authorization, kinds: [vehicle_theft], attributes: {ignition: true, authorized: false},
       points: 25, text: t, text_zh: t}
    - {name: displacement_while_parked, kinds: [vibration, geofence], attributes: {parked: true},
       points: 20, text: t, text_zh: t}
    - {name: owner_report, kinds: [vehicle_theft], attributes: {owner_report: true}, points: 30, text: t, text_zh: t}
"""


def test_the_check_catches_the_old_drift(seen: Seen) -> None:
    from alarmhub_triage import parse_rules

    found = problems(parse_rules(PRE_ISSUE_20), seen)
    # "ignition without authorization": no alarm carries ignition true and authorized false together
    # (authorized is the owner's theft report's word); "displacement while parked" can fire now that the
    # trackers write parked, and the owner's report always could
    # (and triage does not even keep ``authorized`` for its rules)
    assert {f.split(":")[0] for f in found} == {"ignition_without_authorization"}, found


def test_the_check_catches_an_attribute_triage_drops(seen: Seen) -> None:
    from alarmhub_triage import parse_rules

    # ingest-gps writes area_direction on a JT/T 808 area alarm, but triage keeps only the vocabulary's
    # attributes for its rules: a rule on it would never fire
    assert "area_direction" in seen.attrs
    rule = """
version: "x"
vehicle:
  patterns:
    - {name: area_left, kinds: [geofence], attributes: {area_direction: out}, points: 10, text: t, text_zh: t}
"""
    found = problems(parse_rules(rule), seen)
    assert found[0] == "area_left: attribute 'area_direction' is dropped by triage before its rules", found
