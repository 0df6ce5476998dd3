"""Sans-IO sessions: registration/authentication rules, policy, alarm edges, armed vehicles, fuzz.

Terminal traffic here is built by the gateway's own encoder only where a whole conversation is needed
(the frames' decoding is proven against captured frames in test_jt808/test_gt06/test_h02); the captured
SOS frame is fed as is.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from alarmhub_events import ALARMS_RAW, DEVICES_STATUS, TELEMETRY_GPS, AlarmEvent, DeviceStatus, GpsFix
from alarmhub_ingest_gps.fastfix import RawFix
from alarmhub_ingest_gps.protocols import gt06, h02, jt808
from alarmhub_ingest_gps.protocols._common import FrameError, crc_itu
from alarmhub_ingest_gps.sessions import (
    Gt06Session,
    H02Session,
    Jt808Session,
    SessionConfig,
    UnregisteredPolicy,
    VehicleInfo,
    derive_auth_code,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

NOW = datetime(2026, 11, 25, 10, 0, 0, tzinfo=UTC)


def model(ev: Any) -> Any:
    """A published event as its model: a JT/T 808 fix comes as its JSON (``RawFix``), parsed and validated."""
    return ev.model() if isinstance(ev, RawFix) else ev


PHONE = "094027587492"
# traccar HuabaoProtocolDecoderTest: 0x0200 from terminal 094027587492 with the SOS bit set
SOS_FRAME = bytes.fromhex(
    "7e0200002e094027587492000a000000010000000a03083db7001329f3000000140000130412164952010400000012360a0002341502cb0c20085c107e"
)
CFG = SessionConfig()


def register_and_auth(s: Jt808Session, phone: str = PHONE, version: int | None = None) -> None:
    if version is None:
        body = (
            bytes(4)
            + b"ACME\x00"
            + b"M1".ljust(20, b"\x00")
            + b"T000001"
            + b"\x01"
            + "粤B12345".encode("gbk")
        )
    else:
        body = (
            bytes(4)
            + b"ACME".ljust(11, b"\x00")
            + b"M1".ljust(30, b"\x00")
            + b"T1".ljust(30, b"\x00")
            + b"\x01"
        )
    reg = jt808.encode(0x0100, phone, 1, body, version=version)
    out = s.feed(reg, NOW)
    reply = jt808.decode(bytes(out.reply))
    assert reply.header.msg_id == 0x8100 and reply.body[2] == 0
    code = reply.body[3:].decode()
    auth = (
        code.encode()
        if version is None
        else bytes([len(code)]) + code.encode() + b"1" * 15 + b"v1".ljust(20, b"\x00")
    )
    out = s.feed(jt808.encode(0x0102, phone, 2, auth, version=version), NOW)
    ack = jt808.decode(bytes(out.reply))
    assert ack.header.msg_id == 0x8001 and ack.body[4] == 0
    assert [type(e) for _, e in out.publish] == [DeviceStatus]


def test_unauthenticated_location_is_refused() -> None:
    s = Jt808Session({}, CFG)
    out = s.feed(SOS_FRAME, NOW)
    assert not out.publish and out.refused == 1
    ack = jt808.decode(bytes(out.reply))
    assert ack.header.msg_id == 0x8001 and ack.body[4] == jt808.RESULT_FAILURE


def test_refusals_close_the_connection() -> None:
    s = Jt808Session({}, SessionConfig(max_refused=3))
    out = s.feed(SOS_FRAME * 5, NOW)
    assert out.close and out.refused == 3


def test_wrong_auth_code_is_refused() -> None:
    s = Jt808Session({}, CFG)
    out = s.feed(jt808.encode(0x0102, PHONE, 2, b"guess"), NOW)
    assert jt808.decode(bytes(out.reply)).body[4] == jt808.RESULT_FAILURE and not s.authenticated


def test_register_auth_then_sos_alarm_and_fix() -> None:
    s = Jt808Session({}, CFG, peer="127.0.0.1:4000")
    register_and_auth(s)
    out = s.feed(SOS_FRAME, NOW)
    topics = [t for t, _ in out.publish]
    assert topics == [TELEMETRY_GPS, ALARMS_RAW]
    fix = model(out.publish[0][1])
    alarm = out.publish[1][1]
    assert isinstance(fix, GpsFix) and fix.device_id == PHONE and fix.attributes["alarm_bits"] == 1
    assert isinstance(alarm, AlarmEvent) and alarm.kind == "vehicle_sos" and alarm.qualifier == "new"
    assert (
        alarm.attributes["alarm_bits"] == 1 and alarm.location is not None and alarm.raw.startswith("7e0200")
    )
    assert jt808.decode(bytes(out.reply)).body[:4] == bytes.fromhex("000a0200")
    # the bit is a level: the same report again publishes only the fix
    again = s.feed(SOS_FRAME, NOW)
    assert [t for t, _ in again.publish] == [TELEMETRY_GPS]


# traccar Jt808ProtocolDecoderTest (9e5c458a): a 0x0200 from a JC371 camera whose terminal number has hex
# digits (4eb6fb4ad628); traccar writes it with the escaping undone, so it is escaped as sent here
HEX_TERMINAL_FIX = bytes.fromhex(
    "7E0200003E4EB6FB4AD6280002000000000000000301587D0106CBFF6600000000000026010112000001040000007B30011831"
    "010AE8140C01103131313131313126010112000000000000467E"
)


def test_terminal_number_with_hex_digits_registers_authenticates_and_reports() -> None:
    phone = "4eb6fb4ad628"
    s = Jt808Session({}, CFG)
    register_and_auth(s, phone)  # registration answered 0x8100 OK, authentication 0x8001 OK
    assert s.device_id == phone
    out = s.feed(b"\x7e" + jt808.escape(HEX_TERMINAL_FIX[1:-1]) + b"\x7e", NOW)
    fix = model(out.publish[0][1])
    assert isinstance(fix, GpsFix) and fix.device_id == phone
    ack = jt808.decode(bytes(out.reply))
    assert ack.header.phone == phone and ack.header.msg_id == 0x8001 and ack.body[4] == 0


def test_alarm_restore_and_power_status() -> None:
    s = Jt808Session({}, CFG)
    register_and_auth(s)
    t = datetime(2026, 11, 25, 18, 0, 0)
    cut = jt808.encode(
        0x0200,
        PHONE,
        5,
        jt808.encode_location_body(lat=22.5, lon=114.0, alarm_bits=1 << 8, status_bits=0x03, local_time=t),
    )
    ok = jt808.encode(
        0x0200, PHONE, 6, jt808.encode_location_body(lat=22.5, lon=114.0, status_bits=0x02, local_time=t)
    )
    out = s.feed(cut, NOW)
    kinds = [(type(e).__name__, getattr(e, "kind", getattr(e, "status", None))) for _, e in out.publish]
    assert ("AlarmEvent", "power_cut") in kinds and ("DeviceStatus", "power_cut") in kinds
    out = s.feed(ok, NOW)
    restored = [e for _, e in out.publish if isinstance(e, AlarmEvent)]
    assert restored and restored[0].qualifier == "restore"
    statuses = {e.status for _, e in out.publish if isinstance(e, DeviceStatus)}
    assert {"power_restored", "acc_off"} <= statuses


def test_armed_vehicle_ignition_and_movement_are_theft() -> None:
    s = Jt808Session({PHONE: VehicleInfo(PHONE, "jt808", "粤B12345", 2, armed=True)}, CFG)
    register_and_auth(s)
    t = datetime(2026, 11, 25, 18, 0, 0)

    def fix(serial: int, lat: float, status: int, speed: float) -> bytes:
        body = jt808.encode_location_body(
            lat=lat, lon=114.0, status_bits=status, speed_kmh=speed, local_time=t
        )
        return jt808.encode(0x0200, PHONE, serial, body)

    def theft(frame: bytes) -> list[AlarmEvent]:
        return [e for _, e in s.feed(frame, NOW).publish if isinstance(e, AlarmEvent)]

    assert theft(fix(5, 22.5, 0x02, 0)) == []  # parked, ignition off: the parked spot
    [ign] = theft(fix(6, 22.5, 0x03, 0))  # ignition on where it stood
    assert ign.code == "armed_ignition" and ign.kind == "vehicle_theft"
    assert {k: ign.attributes[k] for k in ("signal", "armed", "ignition", "parked")} == {
        "signal": "armed_ignition",
        "armed": True,
        "ignition": True,
        "parked": True,
    }
    assert theft(fix(7, 22.5, 0x03, 35)) == []  # at speed but still on the spot (jitter looks like this)
    assert theft(fix(8, 22.5020, 0x03, 35)) == []  # 220 m away: one fix could be a wild one
    [mov] = theft(fix(9, 22.5035, 0x03, 38))  # and the next one too: it is driving
    assert mov.code == "armed_movement" and mov.attributes["signal"] == "armed_movement"
    assert mov.attributes["speed_kmh"] == 38 and mov.attributes["parked"] is False
    assert 380 < mov.attributes["moved_m"] < 400 and mov.attributes["plate"] == "粤B12345"
    assert mov.location is not None and mov.location.lat == pytest.approx(22.5035)
    assert theft(fix(10, 22.51, 0x03, 40)) == []  # once


def test_an_armed_car_towed_with_the_ignition_off_is_a_displacement() -> None:
    s = Jt808Session({PHONE: VehicleInfo(PHONE, "jt808", armed=True)}, CFG)
    register_and_auth(s)
    t = datetime(2026, 11, 25, 18, 0, 0)
    codes = []
    for n, (lat, speed) in enumerate(((22.5, 0), (22.502, 20), (22.504, 22), (22.506, 21))):
        body = jt808.encode_location_body(lat=lat, lon=114.0, status_bits=0x02, speed_kmh=speed, local_time=t)
        out = s.feed(jt808.encode(0x0200, PHONE, 5 + n, body), NOW)
        codes += [(e.code, e.attributes["signal"]) for _, e in out.publish if isinstance(e, AlarmEvent)]
    assert codes == [("parked_displacement", "parked_displacement")]


def test_every_alarm_carries_the_vehicle_vocabulary() -> None:
    s = Jt808Session({PHONE: VehicleInfo(PHONE, "jt808", armed=False)}, CFG)
    register_and_auth(s)
    t = datetime(2026, 11, 25, 18, 0, 0)
    # alarm word bit 8 (main power cut) and bit 20 (area in/out) with item 0x12: area 7 left ("out")
    extra = bytes([0x12, 6, 1]) + (7).to_bytes(4, "big") + b"\x01"
    body = jt808.encode_location_body(
        lat=22.5,
        lon=114.0,
        alarm_bits=(1 << 8) | (1 << 20),
        status_bits=0x03,
        speed_kmh=42,
        local_time=t,
        extra=extra,
    )
    out = s.feed(jt808.encode(0x0200, PHONE, 5, body), NOW)
    got = {e.code: e.attributes for _, e in out.publish if isinstance(e, AlarmEvent)}
    assert got["power_cut"]["signal"] == "power_cut" and got["area_in_out"]["signal"] == "geofence_exit"
    assert got["power_cut"]["armed"] is False and got["power_cut"]["ignition"] is True
    assert got["power_cut"]["speed_kmh"] == 42


def test_reject_policy() -> None:
    s = Jt808Session({}, SessionConfig(policy=UnregisteredPolicy.REJECT))
    reg = jt808.encode(0x0100, PHONE, 1, bytes(37))
    out = s.feed(reg, NOW)
    assert jt808.decode(bytes(out.reply)).body[2] == jt808.REG_NO_TERMINAL and not out.registry
    code = derive_auth_code(CFG.auth_secret, PHONE).encode()
    out = s.feed(jt808.encode(0x0102, PHONE, 2, code), NOW)
    assert not s.authenticated


def test_accept_policy_flags_and_stores_code() -> None:
    s = Jt808Session({}, CFG)
    out = s.feed(jt808.encode(0x0100, PHONE, 1, bytes(37)), NOW)
    assert len(out.registry) == 1 and out.registry[0].flagged
    assert out.registry[0].auth_code == derive_auth_code(CFG.auth_secret, PHONE)


def test_2019_terminal_keeps_its_id() -> None:
    s = Jt808Session({}, CFG)
    register_and_auth(s, phone="00000000" + PHONE, version=1)
    assert s.device_id == PHONE and s.version == 1 and s.phone == "00000000" + PHONE
    out = s.feed(
        jt808.encode(
            0x0200,
            "00000000" + PHONE,
            3,
            jt808.encode_location_body(lat=22.5, lon=114.0, local_time=datetime(2026, 11, 25, 18, 0, 0)),
            version=1,
        ),
        NOW,
    )
    assert out.publish[0][1].device_id == PHONE
    assert jt808.decode(bytes(out.reply)).header.phone == "00000000" + PHONE


def test_logout_publishes_offline_and_closes() -> None:
    s = Jt808Session({}, CFG)
    register_and_auth(s)
    out = s.feed(jt808.encode(0x0003, PHONE, 9), NOW)
    assert out.close and [e.status for _, e in out.publish] == ["offline"]
    assert not s.connection_lost(NOW).publish  # only once


def test_command_correlation() -> None:
    s = Jt808Session({}, CFG)
    register_and_auth(s)
    serial, frame = s.command("query_position")
    assert jt808.decode(frame).header.msg_id == 0x8201
    body = serial.to_bytes(2, "big") + jt808.encode_location_body(
        lat=22.5, lon=114.0, local_time=datetime(2026, 1, 1)
    )
    out = s.feed(jt808.encode(0x0201, PHONE, 10, body), NOW)
    assert out.commands and out.commands[0].serial == serial and out.commands[0].position is not None
    serial2, _ = s.command("text", text="请停车")
    out = s.feed(jt808.encode(0x0001, PHONE, 11, serial2.to_bytes(2, "big") + b"\x83\x00\x00"), NOW)
    assert out.commands[0].command == 0x8300 and not out.reply


def test_gt06_login_then_alarm() -> None:
    s = Gt06Session({}, CFG)
    # traccar Gt06ProtocolDecoderTest: a packet before login is dropped, login is answered
    out = s.feed(
        bytes.fromhex("787825160F0C1D0A2B21C8027AC8040C46581000146F0901CC00287D001F714804040301001C84CF0D0A"),
        NOW,
    )
    assert not out.publish and not out.reply
    out = s.feed(bytes.fromhex("78780D01086471700328358100093F040D0A"), NOW)
    assert bytes(out.reply).hex() == "78780501000955940d0a" and s.device_id == "864717003283581"
    out = s.feed(
        bytes.fromhex("787825160F0C1D0A2B21C8027AC8040C46581000146F0901CC00287D001F714804040301001C84CF0D0A"),
        NOW,
    )
    kinds = [e.kind for _, e in out.publish if isinstance(e, AlarmEvent)]
    assert kinds == ["vibration"] and out.reply
    out = s.feed(
        bytes.fromhex("787825160F0C1D0A2B21C8027AC8040C46581000146F0901CC00287D001F714804040301001C84CF0D0A"),
        NOW,
    )
    assert [e.kind for _, e in out.publish if isinstance(e, AlarmEvent)] == [
        "vibration"
    ]  # events, not levels


def test_gt06_alarm_without_status_block_leaves_the_ignition_alone() -> None:
    # a 0x95 alarm of the short form (time and event 0x88 power cut, no position, no status block) after a
    # heartbeat with ACC on: the alarm is raised, and no acc_off is made up from the missing status
    s = Gt06Session({}, CFG)
    s.feed(bytes.fromhex("78780D01086471700328358100093F040D0A"), NOW)
    out = s.feed(gt06.encode(0x13, bytes([0x02, 0x04, 0x04, 0x00, 0x02]), 2), NOW)
    assert {e.status for _, e in out.publish if isinstance(e, DeviceStatus)} <= {"acc_on"}
    out = s.feed(gt06.encode(0x95, bytes([26, 11, 25, 10, 0, 0, 0x88]), 3), NOW)
    assert [e.kind for _, e in out.publish if isinstance(e, AlarmEvent)] and out.reply
    assert not [e for _, e in out.publish if isinstance(e, DeviceStatus) and e.status == "acc_off"]
    out = s.feed(gt06.encode(0x13, bytes([0x00, 0x04, 0x04, 0x00, 0x02]), 4), NOW)
    assert "acc_off" in {e.status for _, e in out.publish if isinstance(e, DeviceStatus)}


def test_gt06_reject_closes() -> None:
    s = Gt06Session({}, SessionConfig(policy=UnregisteredPolicy.REJECT))
    out = s.feed(bytes.fromhex("78780D01086471700328358100093F040D0A"), NOW)
    assert out.close and not out.reply


def test_h02_first_frame_identifies() -> None:
    s = H02Session({}, CFG)
    # traccar H02ProtocolDecoderTest binary frame with status bit 1 clear (SOS)
    out = s.feed(
        bytes.fromhex(
            "24410600082621532131081504419390060740418306000000fffffbfdff0015060000002c02dc0c000000001f"
        ),
        NOW,
    )
    types = [(t, getattr(e, "kind", None)) for t, e in out.publish]
    assert (
        (DEVICES_STATUS, None) in types
        and (TELEMETRY_GPS, None) in types
        and (ALARMS_RAW, "vehicle_sos") in types
    )
    other = h02.encode_v1("999", hms="010203", dmy="010126", lat=1, lon=2, knots=0, course=0)
    assert not s.feed(other, NOW).publish


# TRACCAR (9e5c458a) H02ProtocolDecoderTest: a V1 frame whose device id field is empty
H02_NO_ID = b"*HQ,,V1,173212,A,2225.78879,S,02829.19021,E,0.00,0,290418,FFFFFBFF#"


def test_h02_frame_without_device_id_is_the_connections_device() -> None:
    s = H02Session({}, CFG)
    out = s.feed(H02_NO_ID, NOW)  # nothing names the unit yet: refused, nothing published
    assert not s.authenticated and not out.publish
    first = h02.encode_v1("4210051415", hms="010203", dmy="010126", lat=1, lon=2, knots=0, course=0)
    s.feed(first, NOW)
    out = s.feed(H02_NO_ID, NOW)
    fixes = [e for t, e in out.publish if t == TELEMETRY_GPS]
    assert len(fixes) == 1 and fixes[0].device_id == "4210051415"
    assert abs(fixes[0].lat - -(22 + 25.78879 / 60)) < 1e-6


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_fuzz_random_bytes_never_raise(data: bytes) -> None:
    for cls in (Jt808Session, Gt06Session, H02Session):
        s = cls({}, CFG)
        s.feed(data, NOW)
        s.feed(b"\x7e" + data + b"\x7e", NOW)


_SEEDS = [
    SOS_FRAME,
    jt808.encode(0x0100, PHONE, 1, bytes(37)),
    bytes.fromhex(
        "7E0704014301356777777707F5000801002600000000000000030159741206CBFD5001720000000116052709062401040000001D03020000002600000000000000030159746606CBFD50016B0000000116052709065301040000001D0302000000260000000000000003015975E406CBFE58013F0000000116052709072701040000001D0302000000260000000000000003015976DE06CBFF10012E0000000116052709075601040000001D0302000000260000000000000003015976BC06CBFED0012D0000000116052709083001040000001D0302000000260000000000000003015976FE06CBFEC001080000000116052709090001040000001D0302000000260000000000000003015976FE06CBFE7800FC0000000116052709093301040000001D0302000000260000000000000003015977A606CBFF3001080000000116052709100201040000001D030200001F7E"
    ),
    bytes.fromhex("787825160F0C1D0A2B21C8027AC8040C46581000146F0901CC00287D001F714804040301001C84CF0D0A"),
    bytes.fromhex("79790020940a035985708236675805200502187214018966051912408052452f000355560d0a"),
    b"*HQ,4210051415,V1,164549,A,0956.3869,N,08406.7068,W,000.00,000,221215,FFFFFBFF,712,01,0,0,6#",
]


def _fix_jt808(frame: bytes) -> bytes:
    """Recompute the XOR so mutations reach the body decoders, not just the check."""
    try:
        inner = jt808.unescape(frame[1:-1].replace(b"\x7e", b""))
    except FrameError:
        return frame
    if len(inner) < 2:
        return frame
    c = 0
    for b in inner[:-1]:
        c ^= b
    return b"\x7e" + jt808.escape(inner[:-1] + bytes([c])) + b"\x7e"


def _fix_gt06(frame: bytes) -> bytes:
    if len(frame) < 10:
        return frame
    body = frame[2:-4]
    return frame[:2] + body + crc_itu(body).to_bytes(2, "big") + frame[-2:]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(range(len(_SEEDS))),
    st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=8),
    st.integers(0, 600),
)
def test_fuzz_mutated_frames_never_raise(seed: int, flips: list[tuple[int, int]], cut: int) -> None:
    frame = bytearray(_SEEDS[seed])
    for pos, val in flips:
        if frame:
            frame[pos % len(frame)] = val
    data = bytes(frame[: max(cut, 1)] if cut < len(frame) else frame)
    if seed < 3:
        data = _fix_jt808(data) if data[:1] == b"\x7e" else data
    elif seed < 5:
        data = _fix_gt06(data)
    sessions = [Jt808Session({}, CFG), Gt06Session({}, CFG), H02Session({}, CFG)]
    for s in sessions:
        if isinstance(s, Jt808Session):
            register_and_auth(s)
        elif isinstance(s, Gt06Session):
            s.feed(bytes.fromhex("78780D01086471700328358100093F040D0A"), NOW)
        out = s.feed(data, NOW)
        for _, ev in out.publish:
            ev.to_bytes()
        s.connection_lost(NOW)


def test_bad_body_gets_a_nak_and_a_dlq_record() -> None:
    s = Jt808Session({}, CFG)
    register_and_auth(s)
    # go-jt808's 0x0200 (latitude 119.55°) re-addressed to our terminal: header fine, body impossible
    body = jt808.decode(
        bytes.fromhex(
            "7e0200001c0123456789010000000004000000080007203b7d0202633df70138000300632410012359591c7e"
        )
    ).body
    out = s.feed(jt808.encode(0x0200, PHONE, 7, body), NOW)
    assert not out.publish and len(out.dlq) == 1 and "out of range" in out.dlq[0][1]
    assert jt808.decode(bytes(out.reply)).body[4] == jt808.RESULT_BAD_MESSAGE


def test_jt808_fixes_built_and_serialized_without_pydantic_equal_the_models() -> None:
    """The JT/T 808 hot path writes each fix's JSON itself (``direct_fix``, a ``RawFix``); the model path
    (``fast_fix``, written by the app's ``fix_json``) is what it replaced. For real frames (items, both
    hemispheres, batch, SOS, a vendor's lock report and 0x0900 record, a wrong check code): the same bytes
    but for the event id, the same key, and the model the consumers validate equals the validated model."""
    import importlib.util
    import json
    from pathlib import Path

    from alarmhub_ingest_gps.app import _serialized

    spec = importlib.util.spec_from_file_location("jt808_frames", Path(__file__).with_name("test_jt808.py"))
    assert spec is not None and spec.loader is not None
    frames = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(frames)  # the captured frames (sources noted there)
    lock = bytes.fromhex(
        "55018c37" + PHONE + "2a06052117594022348474113550560705981e0400000002370ac30c0c28660308000000100101"
        "020200000a0301cc000c0600a2ffa7ff5e"
    )
    cases = [bytes.fromhex(getattr(frames, name)) for name in ("SOS_LOCATION", "SZ_LOCATION", "LOW_POWER")]
    cases += [bytes.fromhex(getattr(frames, name)) for name in ("SOUTH_WEST", "ITEMS", "BATCH")]
    cases += [
        b"\x7e" + jt808.escape(HEX_TERMINAL_FIX[1:-1]) + b"\x7e",
        b"\x7e" + jt808.escape(lock + bytes([jt808.xor_check(lock)])) + b"\x7e",
        jt808.encode(
            jt808.T_TRANSPARENT,
            PHONE,
            9,
            bytes.fromhex("f0230223150215010203013800000c000b029dc58c04b99b60230223171822"),
        ),
        bytes.fromhex(
            "7E020000260112233445500000000000010000000200BA7F0E07E4F11C0028003C000018071510101001040000006402020037AC7E"
        ),
    ]
    pairs = []
    for frame in cases:
        phone = jt808.decode(frame).header.phone
        sessions = []
        for direct in (True, False):
            s = Jt808Session({}, CFG)
            s.direct = direct
            register_and_auth(s, phone)
            sessions.append(s)
        direct_out, model_out = (s.feed(frame, NOW) for s in sessions)
        assert not direct_out.dlq and not model_out.dlq
        assert [t for t, _ in direct_out.publish] == [t for t, _ in model_out.publish]
        pairs += [
            (d, m)
            for (t, d), (_, m) in zip(direct_out.publish, model_out.publish, strict=True)
            if t == TELEMETRY_GPS
        ]
    assert len(pairs) == 5 + 8 + 4
    for raw, fix in pairs:
        assert type(raw) is RawFix and type(fix) is GpsFix
        validated = GpsFix(event_id=fix.event_id, **fix.model_dump(exclude={"event_id"}))
        assert validated.model_dump() == fix.model_dump()
        topic, old, key = _serialized(TELEMETRY_GPS, fix)  # the bytes the gateway wrote before direct_fix
        topic_new, new, key_new = _serialized(TELEMETRY_GPS, raw)
        assert topic == topic_new == TELEMETRY_GPS and key == key_new == fix.device_id
        event_id = json.loads(new)["event_id"]
        assert new == old.replace(str(fix.event_id).encode(), event_id.encode())
        parsed = raw.model()
        assert parsed.event_id.version == 4 and str(parsed.event_id) == event_id
        assert parsed == validated.model_copy(update={"event_id": parsed.event_id})
        assert json.loads(new) | {"event_id": ""} == json.loads(validated.to_bytes()) | {"event_id": ""}


# traccar Jt808ProtocolDecoderTest (9e5c458a): the 0xEB extended block's 0x0089 word with bit 12 low
# (the unit was removed from its mount) — a vendor's item, not a bit of the standard's alarm word
REMOVED_FRAME = bytes.fromhex(
    "7e020000530095900689830016000000000000000b00a2394803a925f800000000000025112411514701040000003e300115"
    "310113eb29000c00b28988228066613427450900060089ffffefff000600c5ffffffef0004002d0fa5000300a85c757e"
)


def test_vendor_item_alarm_is_published() -> None:
    phone = "009590068983"
    s = Jt808Session({}, CFG)
    register_and_auth(s, phone)
    out = s.feed(REMOVED_FRAME, NOW)
    alarms = [e for t, e in out.publish if t == ALARMS_RAW]
    assert len(alarms) == 1 and isinstance(alarms[0], AlarmEvent)
    assert alarms[0].kind == "tamper" and alarms[0].code == "removal" and alarms[0].qualifier == "new"


def test_auth_code_with_non_ascii_text_is_refused_not_raised() -> None:
    # found by the corpus-seeded fuzzing: a 0x0102 whose code decodes to non-ASCII text
    s = Jt808Session({}, CFG)
    out = s.feed(jt808.encode(0x0102, PHONE, 2, b"\xb2\xe2\xff\xff11"), NOW)
    assert jt808.decode(bytes(out.reply)).body[4] == jt808.RESULT_FAILURE and not s.authenticated


def test_gt06_alarm_variants_are_published() -> None:
    # traccar Gt06ProtocolDecoderTest (9e5c458a): 0xA4 multi-fence alarm (code 0x0C, tamper) and a 0x95
    # camera alarm (event 0x01 with a position: SOS), after a login
    login = bytes.fromhex("78780D01086471700328358100093F040D0A")
    a4 = bytes.fromhex(
        "78782da41a0509160203cf05be31f80c306530001c0010012ed000007ef40000000006428b074205041302ff0009389c0d0a"
    )
    s = Gt06Session({}, CFG)
    s.feed(login, NOW)
    out = s.feed(a4, NOW)
    kinds = [e.kind for t, e in out.publish if t == ALARMS_RAW]
    assert kinds == ["tamper"] and out.reply  # answered like every alarm packet


def test_frames_with_a_wrong_check_code_are_decoded_and_counted() -> None:
    # SmallChi/JT808 JT808_0x0200Test.cs (c9552b0f): a whole 0x0200 whose check code is off by the
    # serial it was copied from — decoded (the deployed decoders accept it) and counted as tolerated
    phone = "011223344550"
    s = Jt808Session({}, CFG)
    register_and_auth(s, phone)
    frame = bytes.fromhex(
        "7E020000260112233445500000000000010000000200BA7F0E07E4F11C0028003C000018071510101001040000006402020037AC7E"
    )
    out = s.feed(frame, NOW)
    assert out.tolerated == 1 and isinstance(model(out.publish[0][1]), GpsFix)
    login = bytearray(bytes.fromhex("78780D01086471700328358100093F040D0A"))
    login[-3] ^= 0xFF  # GT06 login with a wrong CRC
    g = Gt06Session({}, CFG)
    out = g.feed(bytes(login), NOW)
    assert out.tolerated == 1 and g.authenticated


def test_vendor_position_messages_are_published_and_answered() -> None:
    # TRACCAR Jt808ProtocolDecoderTest frames re-addressed to a registered terminal: a smart lock's 0x5501
    # asking for its 0x4401 answer, and a 0x0900 transparent record of type 0xF0
    s = Jt808Session({}, CFG)
    register_and_auth(s)
    lock = bytes.fromhex(
        "55018c37" + PHONE + "2a06052117594022348474113550560705981e0400000002370ac30c0c28660308000000100101"
        "020200000a0301cc000c0600a2ffa7ff5e"
    )
    out = s.feed(b"\x7e" + jt808.escape(lock + bytes([jt808.xor_check(lock)])) + b"\x7e", NOW)
    assert [type(model(e)) for _, e in out.publish] == [GpsFix]
    assert jt808.decode(bytes(out.reply)).header.msg_id == jt808.P_LOCK_RESPONSE
    record = bytes.fromhex("f0230223150215010203013800000c000b029dc58c04b99b60230223171822")
    out = s.feed(jt808.encode(jt808.T_TRANSPARENT, PHONE, 9, record), NOW)
    fixes = [f for _, e in out.publish if isinstance(f := model(e), GpsFix)]
    assert [(round(f.lat, 4), round(f.lon, 4)) for f in fixes] == [(43.8942, -79.2728)]  # and ACC on
    ack = jt808.decode(bytes(out.reply))
    assert ack.header.msg_id == 0x8001 and ack.body[4] == jt808.RESULT_OK
