"""JT/T 809 frames, cipher, bodies and the sans-IO main-link session, with real frames.

Sources of the frames (byte for byte, hex as published):
- SmallChi/JT809 src/JT809.Protocol.Test/JT809Packages/JT809_0x1001PackageTest.cs        (login, 2011)
- SmallChi/JT809 src/JT809.Protocol.Test/JT809Packages/JT809_0x1001EncryptPackageTest.cs (encrypted login;
  M1=30000000, IA1=20000000, IC1=20000000, key 256178)
- SmallChi/JT809 src/JT809.Protocol.Test/AnalyzeTest.cs (0x1200/0x1201 2019 frame; 0x1402 bodies 2011/2019)
- SmallChi/JT809 src/JT809.Protocol.Test/Simples/Demo1.cs (0x9400/0x9401 frame with an escaped 0x5b)
- SmallChi/JT809 src/JT809.Protocol.Test/JT809SubMessageBody/JT809_0x1200_0x1202Test.cs (0x1202 body 2011)
- SmallChi/JT809 src/JT809.Protocol.Test/JT809SubMessageBody/JT809_0x1200_0x1203Test.cs (0x1203 body 2011)
- SmallChi/JT809 src/JT809.Protocol.Test/Simples/Demo5.cs (0x1202 2019 body with embedded 808 0x0200, encrypted)
- JT809.DotNetty.Host.Test Program.cs (SmallChi's DotNetty host sample; comments list a heartbeat frame)

The 0x1202/0x1203/0x1402 sources publish sub-message bodies only; those real bodies are wrapped into a
0x1200/0x1400 frame by ``encode`` so the session can be driven end to end — the bytes under test
(position/alarm decoding) are the published ones.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from alarmhub_events import ALARMS_RAW, DEVICES_STATUS, TELEMETRY_GPS, AlarmEvent, AlarmKind, GpsFix
from alarmhub_geo import gcj02_to_wgs84, wgs84_to_gcj02
from alarmhub_ingest_gps.jt809 import Jt809LinkSession, PlatformDirectory, PlatformRecord
from alarmhub_ingest_gps.protocols import jt809 as p
from alarmhub_ingest_gps.protocols._common import FrameError
from alarmhub_store import hash_password
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)

# SmallChi/JT809 JT809_0x1001PackageTest.cs Test2: user 20180920, password "20180920", 127.0.0.1:809
LOGIN = bytes.fromhex(
    "5B000000480000008510010133EFB8010000000000270F0133EFB832303138303932303132372E302E302E31"
    "000000000000000000000000000000000000000000000003296A915D"
)
# SmallChi/JT809 JT809_0x1001EncryptPackageTest.cs Test2 (same login, encrypt flag 1, key 256178)
LOGIN_ENC = bytes.fromhex(
    "5B000000480000008510010133EFB8010000010003E8B2D37D9CC4900C77DC78F8676527D8AE12243CFB64CC2FBA619AEFAD"
    "33ACCB3256F67BFF19DF33097841098665703FE36E5D"
)
KEYS = p.Cipher(m1=30000000, ia1=20000000, ic1=20000000)
# JT809.DotNetty.Host.Test Program.cs comment "主链路连接保持请求消息" (GNSS centre 20190222)
HEARTBEAT = bytes.fromhex("5B0000001A0000008510050134140E010000000000270FBA415D")
# SmallChi/JT809 Demo1.cs: 0x9400/0x9401 supervision for 粤A12345, yellow (2); body contains 5A01 (= 0x5B)
SUPERVISION = bytes.fromhex(
    "5B000000920000068294000133EFB8010000000000270FD4C1413132333435000000000000000000000000000294010000005C"
    "010002000000005A01AC3F40123FFAA1000000005A01AC4D5003736D616C6C636869000000000000000031323334353637383930"
    "310000000000000000003132333435364071712E636F6D00000000000000000000000000000000000000BAD85D"
)
# SmallChi/JT809 AnalyzeTest.cs "ref 0x1201-test3": 2019 header (30 bytes), 0x1200/0x1201 for 粤A12345
REGISTER_2019 = bytes.fromhex(
    "5B000000AC000006821200013415F4010000000000270F000000005E02A507B8D4C141313233343500000000000000000000"
    "0000000112010000006E31313131313131313131003131313131313131313100313131313131313100000000000000000000"
    "0000000000000000000000003132333435363738390000000000003131313131414100000000000000000000000000000000"
    "00000000000000323232323232323232323232006D7A5D"
)
# SmallChi/JT809 JT809_0x1200_0x1202Test.cs Test2: 2012-07-19 15:15:15, lon 133.123456, lat 24.123456
BODY_1202 = bytes.fromhex("00130707DC0F0F0F07EF4D80017018400032003300000096002D002D0000000300000101")
# SmallChi/JT809 JT809_0x1200_0x1203Test.cs Test2: three fixes at 15:15:15, 16:16:16, 17:17:17
BODY_1203 = bytes.fromhex(
    "0300130707DC0F0F0F07EF4D80017018400032003300000096002D002D000000030000010100130707DC10101007EF4D8001701840"
    "0032003300000096002D002D000000030000010100130707DC11111107EF4D80017018400032003300000096002D002D0000000300000101"
)
# SmallChi/JT809 Demo5.cs Test_2019_4: 2019 0x1202, encrypt=1, embedded 808 0x0200 lat 12.222222 lon 132.444444
BODY_1202_2019 = bytes.fromhex(
    "0100000026000000010000000200BA7F0E07E4F11C0028003C000018071510101001040000006402020037313131313131313131"
    "313100000001323232323232323232323200000002333333333333333333333300000003"
)
# SmallChi/JT809 AnalyzeTest.cs: 0x1402 2011, warn type 0x000B, time 0x5BAA5B80, info id 3344, "gfdf454553"
BODY_1402 = bytes.fromhex("01000B000000005BAA5B8000000D100000000A67666466343534353533")
# SmallChi/JT809 AnalyzeTest.cs: 0x1402 2019 from platform "12345678900" for 粤A11111
BODY_1402_2019 = bytes.fromhex(
    "3132333435363738393030000B000000005EA06A00000000005EA06A00000000005EA1BB80D4C14131313131310000000000000000"
    "0000000000013132333435363738393030000000000000000A67666466343534353533"
)

PLATFORM = PlatformRecord(
    user_id=20180920, password="20180920", gnss_center_id=20180920, name="op-a", cipher=KEYS
)


def read_body(sub_type: int, data: bytes, edition: int = p.Edition.V2011) -> Any:
    """``p.read`` of a published sub-message body (the sources publish bodies without the vehicle head)."""
    return p.read(p.VehicleMessage("粤A12345", 2, sub_type, data), edition=edition)


def one(framer_input: bytes) -> bytes:
    [payload] = p.Framer().feed(framer_input)
    return payload


def wrap(msg_id: int, plate: str, colour: int, sub: int, data: bytes, *, serial: int = 7) -> bytes:
    return p.encode(
        msg_id, p.encode_vehicle(plate, colour, sub, data), serial=serial, gnss_center_id=20180920
    )


def logged_in(**kw: object) -> tuple[Jt809LinkSession, list]:
    s = Jt809LinkSession(
        PlatformDirectory([PLATFORM]), peer="127.0.0.1:5000", verify_code=lambda: 0xD4B8, **kw
    )
    out = s.feed(LOGIN, NOW)
    return s, out


# ------------------------------------------------------------------------------- framing / header


def test_login_frame_header_and_body() -> None:
    frame = p.decode(one(LOGIN))
    h = frame.header
    assert (h.length, h.serial, h.msg_id, h.gnss_center_id, h.version, h.encrypted, h.key) == (
        72,
        133,
        0x1001,
        20180920,
        (1, 0, 0),
        False,
        9999,
    )
    login = p.read(frame)
    assert (login.user_id, login.password, login.down_link_ip, login.down_link_port) == (
        20180920,
        "20180920",
        "127.0.0.1",
        809,
    )


def test_crc_is_ccitt_false_over_header_and_body() -> None:
    data = p.unescape(one(LOGIN))
    assert p.crc16_ccitt(data[:-2]) == 0x6A91
    assert p.crc16_ccitt(b"123456789") == 0x29B1  # the CRC-16/CCITT-FALSE check value


def test_encrypted_login_decrypts_with_platform_keys() -> None:
    frame = p.decode(one(LOGIN_ENC), cipher=KEYS)
    assert frame.header.encrypted and frame.header.key == 256178
    login = p.read(frame)
    assert (login.user_id, login.password, login.down_link_ip, login.down_link_port) == (
        20180920,
        "20180920",
        "127.0.0.1",
        809,
    )
    with pytest.raises(FrameError):
        p.decode(one(LOGIN_ENC))  # no keys


def test_encoder_reproduces_the_encrypted_reference_frame() -> None:
    body = p.encode_login(p.Login(20180920, "20180920", "127.0.0.1", 809))
    assert p.encode(0x1001, body, serial=133, gnss_center_id=20180920, cipher=KEYS, key=256178) == LOGIN_ENC
    assert p.encode(0x1001, body, serial=133, gnss_center_id=20180920, key=9999) == LOGIN


def test_heartbeat_frame() -> None:
    frame = p.decode(one(HEARTBEAT))
    assert frame.msg_id == 0x1005 and frame.body == b"" and frame.header.gnss_center_id == 20190222


def test_supervision_frame_with_escaped_bytes() -> None:
    frame = p.decode(one(SUPERVISION))
    assert frame.header.length == 146 and frame.header.serial == 1666
    vm = p.read(frame)
    assert (vm.plate, vm.colour, vm.sub_type, vm.device_id) == ("粤A12345", 2, 0x9401, "粤A12345:2")
    sup = p.read(vm)
    assert sup.warn_type == 2 and sup.supervision_id == 0x123FFAA1 and sup.level == 3
    assert sup.supervisor == "smallchi" and sup.tel == "12345678901" and sup.email == "123456@qq.com"
    assert sup.warn_time == datetime(2018, 9, 27, 2, 24, tzinfo=UTC)  # 10:24 Beijing time
    assert p.encode(0x9400, frame.body, serial=1666, gnss_center_id=20180920, key=9999) == SUPERVISION


def test_2019_registration_frame() -> None:
    frame = p.decode(one(REGISTER_2019), edition=p.Edition.V2019)
    assert frame.header.size == 30 and frame.header.time == 0x5EA507B8  # escaped 5E 02 in the wire bytes
    vm = p.read(frame)
    reg = p.read(vm, edition=p.Edition.V2019)
    assert (vm.plate, vm.colour) == ("粤A12345", 1)
    assert (reg.platform_id, reg.producer_id, reg.terminal_model, reg.imei, reg.terminal_id, reg.sim) == (
        "1111111111",
        "1111111111",
        "11111111",
        "123456789",
        "11111AA",
        "222222222222",
    )


def test_position_2011() -> None:
    pos = read_body(0x1202, BODY_1202)
    assert (pos.lat, pos.lon, pos.speed_kmh, pos.heading_deg, pos.altitude_m) == (
        24.123456,
        133.123456,
        50,
        45,
        45,
    )
    assert pos.time == datetime(2012, 7, 19, 7, 15, 15, tzinfo=UTC)  # 15:15:15 Beijing
    assert (pos.status_bits, pos.alarm_bits, pos.offset, pos.valid) == (3, 257, False, True)


def test_backfill_2011() -> None:
    fixes = read_body(0x1203, BODY_1203)
    assert [f.time.hour for f in fixes if f.time] == [7, 8, 9]
    assert all(f.lat == 24.123456 for f in fixes)


def test_position_2019_embedded_808_and_offset_flag() -> None:
    pos = read_body(0x1202, BODY_1202_2019, p.Edition.V2019)
    assert (pos.lat, pos.lon, pos.offset, pos.alarm_bits, pos.status_bits) == (
        12.222222,
        132.444444,
        True,
        1,
        2,
    )
    assert pos.time == datetime(2018, 7, 15, 2, 10, 10, tzinfo=UTC)
    assert pos.attributes["platform_alarms"]["platform_3"] == {"id": "33333333333", "alarm": 3}


def test_alarm_bodies() -> None:
    a = read_body(0x1402, BODY_1402)
    assert (a.warn_src, a.warn_type, a.name, a.info_id, a.content) == (
        1,
        0x0B,
        "route_deviation",
        3344,
        "gfdf454553",
    )
    assert a.time == datetime(2018, 9, 25, 16, 0, tzinfo=UTC)
    b = read_body(0x1402, BODY_1402_2019, p.Edition.V2019)
    assert (b.source_platform, b.warn_type, b.content, b.extra["plate"]) == (
        "12345678900",
        0x0B,
        "gfdf454553",
        "粤A11111",
    )


# ------------------------------------------------------------------------------- framer streams


def test_framer_split_at_every_offset() -> None:
    stream = LOGIN + HEARTBEAT + SUPERVISION
    for cut in range(len(stream) + 1):
        f = p.Framer()
        frames = f.feed(stream[:cut]) + f.feed(stream[cut:])
        assert frames == [LOGIN[1:-1], HEARTBEAT[1:-1], SUPERVISION[1:-1]], cut


def test_framer_byte_by_byte_glued_and_garbage() -> None:
    f = p.Framer()
    frames: list[bytes] = []
    for b in b"\x00\xffjunk" + LOGIN + b"\x5d\x5d" + HEARTBEAT + b"\x5b\x00\x01" + HEARTBEAT:
        frames += f.feed(bytes([b]))
    assert frames == [LOGIN[1:-1], HEARTBEAT[1:-1], HEARTBEAT[1:-1]]
    assert f.discarded > 0


def test_framer_caps_frame_size() -> None:
    f = p.Framer(max_frame=100)
    assert f.feed(b"\x5b" + b"\x00" * 500) == []
    assert f.buffered == 0
    assert f.feed(HEARTBEAT) == [HEARTBEAT[1:-1]]


def _unescaped(frame: bytes) -> bytes:
    """The frame as a platform that does not escape sends it (flags around the raw bytes)."""
    return b"\x5b" + p.unescape(frame[1:-1]) + b"\x5d"


def test_framer_and_decoder_take_a_platform_that_does_not_escape() -> None:
    # SmallChi/JT809 GuoJian001Test: a platform whose frames hold raw 0x5b/0x5d/0x5a/0x5e (the length field
    # and CRC match the raw bytes); here a heartbeat whose centre id holds a raw 0x5d and 0x5a 0x01
    raw = _unescaped(p.encode(p.UP_LINKTEST_REQ, b"", serial=9, gnss_center_id=0x5D5A0100))
    assert raw.count(b"\x5d") == 2
    for cut in range(len(raw) + 1):
        f = p.Framer()
        frames = f.feed(raw[:cut]) + f.feed(raw[cut:] + HEARTBEAT)
        assert frames == [raw[1:-1], HEARTBEAT[1:-1]], cut
    fr = p.decode(raw[1:-1])
    assert (fr.header.gnss_center_id, fr.header.serial) == (0x5D5A0100, 9)
    # the same bytes with a wrong CRC: refused either way (its unescaped view is even shorter than a header)
    with pytest.raises(FrameError, match="shorter than a header"):
        p.decode(raw[1:-3] + b"\x00\x00")


def test_2019_start_and_end_answers_carry_the_source_type_and_serial() -> None:
    # SmallChi/JT809 JT809_0x1200_0x1205Test: 2019 0x1205 = source sub-type, source serial, length 0
    frame = bytes.fromhex(
        "5b00000044000004571200000004570101010000000000000000004ebc924fb2e2cad431313131000000000000000000"
        "00000000041205040000000400000000001b735d"
    )
    vm = p.read(p.decode(frame[1:-1], edition=p.Edition.V2019))
    assert (vm.plate, vm.colour, vm.sub_type) == ("测试1111", 4, p.UP_EXG_MSG_RETURN_STARTUP_ACK)
    assert vm.data == bytes.fromhex("04000000040000000000")


def test_escape_roundtrip() -> None:
    data = bytes(range(256))
    assert p.unescape(p.escape(data)) == data
    # an escape byte that starts no pair is kept (platforms send them unescaped; the CRC still decides)
    assert p.unescape(b"\x5a\x03\x5e") == b"\x5a\x03\x5e"


def test_gcj02_inverse() -> None:
    lat, lon = 22.5431, 114.0579
    g = wgs84_to_gcj02(lon, lat)
    assert abs(g[1] - lat) > 1e-4  # Shenzhen is offset by a few hundred metres
    back = gcj02_to_wgs84(*g)
    assert abs(back[1] - lat) < 1e-7 and abs(back[0] - lon) < 1e-7
    assert gcj02_to_wgs84(2.35, 48.85) == (2.35, 48.85)  # outside China: unchanged


# ------------------------------------------------------------------------------- session


def test_session_login_ok_and_heartbeat() -> None:
    s, out = logged_in()
    assert out.login_result == p.LOGIN_OK and not out.close
    reply = p.decode(one(out.replies[0]))
    assert reply.msg_id == 0x1002 and p.read(reply) == (0, 0xD4B8)
    assert out.slave is not None and (out.slave.ip, out.slave.port, out.slave.verify_code) == (
        "127.0.0.1",
        809,
        0xD4B8,
    )
    assert [t for t, _ in out.publish] == [DEVICES_STATUS]
    hb = s.feed(HEARTBEAT, NOW)
    assert p.decode(one(hb.replies[0])).msg_id == 0x1006


def test_session_encrypted_login() -> None:
    s = Jt809LinkSession(PlatformDirectory([PLATFORM]), peer="127.0.0.1:1")
    out = s.feed(LOGIN_ENC, NOW)
    assert out.login_result == p.LOGIN_OK and s.logged_in


@pytest.mark.parametrize(
    "record",
    [
        PlatformRecord(1, "x", 20180920),  # unknown user
        PlatformRecord(20180920, "wrong", 20180920),  # wrong password
        PlatformRecord(20180920, "20180920", 42),  # another centre
        PlatformRecord(20180920, "20180920", 20180920, allowed_ips=("10.0.0.0/8",)),  # another address
        PlatformRecord(20180920, hash_password("other"), 20180920),
        PlatformRecord(20180920, hash_password("20180920"), 20180920, disabled=True),
    ],
)
def test_session_login_refused_with_one_code(record: PlatformRecord) -> None:
    """One refusal code for every reason (an oracle otherwise: which user ids exist, which passwords
    were right — docs/security.md); the reason is only in our log."""
    s = Jt809LinkSession(PlatformDirectory([record]), peer="127.0.0.1:5000")
    out = s.feed(LOGIN + HEARTBEAT, NOW)
    code = p.LOGIN_OTHER
    assert out.login_result == code and out.close and s.closed and out.publish == []
    assert p.read(p.decode(one(out.replies[0])))[0] == code
    assert s.refused == {code: 1}
    assert len(out.replies) == 1  # nothing after a refusal


def test_session_login_against_a_stored_hash() -> None:
    rec = PlatformRecord(20180920, hash_password("20180920"), 20180920)
    s = Jt809LinkSession(PlatformDirectory([rec]), peer="127.0.0.1:1")
    assert s.feed(LOGIN, NOW).login_result == p.LOGIN_OK and s.logged_in


def test_session_plate_prefixes_restrict_the_region() -> None:
    rec = PlatformRecord(20180920, "20180920", 20180920, plate_prefixes=("粤B",))
    s = Jt809LinkSession(PlatformDirectory([rec]), peer="127.0.0.1:1")
    s.feed(LOGIN, NOW)
    ok = s.feed(wrap(0x1200, "粤B1", 2, 0x1202, BODY_1202), NOW)
    other = s.feed(wrap(0x1200, "粤A1", 2, 0x1202, BODY_1202), NOW)
    assert [t for t, _ in ok.publish] and not other.publish and "not allowed" in other.dlq[0][1]


def test_session_drops_data_before_login() -> None:
    s = Jt809LinkSession(PlatformDirectory([PLATFORM]))
    out = s.feed(wrap(0x1200, "粤B12345", 2, 0x1202, BODY_1202), NOW)
    assert out.publish == [] and len(out.dlq) == 1 and not s.logged_in


def test_session_live_position_and_alarm_edges() -> None:
    s, _ = logged_in()
    out = s.feed(wrap(0x1200, "粤B12345", 2, 0x1202, BODY_1202), NOW)
    fix = out.publish[0][1]
    assert out.publish[0][0] == TELEMETRY_GPS and isinstance(fix, GpsFix)
    assert fix.device_id == "粤B12345:2" and fix.protocol == "jt809" and fix.valid
    assert (fix.lat, fix.lon, fix.speed_kmh) == (24.123456, 133.123456, 50)
    assert fix.attributes["platform"] == "op-a" and "backfill" not in fix.attributes
    # alarm word 257 = bit 0 (emergency) + bit 8 (power cut): two alarms, as on the device path
    alarms = [e for t, e in out.publish if t == ALARMS_RAW]
    assert sorted(a.kind for a in alarms) == [AlarmKind.POWER_CUT, AlarmKind.VEHICLE_SOS]
    assert all(a.source.platform == "op-a" and a.location is not None for a in alarms)
    # in the shared vehicle vocabulary, as the trackers write it (issue 20)
    assert sorted(a.attributes["signal"] for a in alarms) == ["power_cut", "sos"]
    assert all(a.attributes["speed_kmh"] == 50 and a.attributes["armed"] is False for a in alarms)
    again = s.feed(wrap(0x1200, "粤B12345", 2, 0x1202, BODY_1202), NOW)
    assert [t for t, _ in again.publish] == [TELEMETRY_GPS]  # level alarms raise once


def test_session_backfill_kept_apart() -> None:
    s, _ = logged_in()
    out = s.feed(wrap(0x1200, "粤B12345", 2, 0x1203, BODY_1203), NOW)
    assert [t for t, _ in out.publish] == [TELEMETRY_GPS] * 3  # no alarms from history
    assert all(e.attributes["backfill"] is True and e.attributes["live"] is False for _, e in out.publish)
    assert out.backfilled == 3 and out.positions == 0


def test_session_alarm_report_maps_kind_and_location() -> None:
    s, _ = logged_in()
    s.feed(wrap(0x1200, "粤B12345", 2, 0x1202, BODY_1202), NOW)
    theft = BODY_1402[:1] + b"\x00\x09" + BODY_1402[3:]  # warn type 0x0009 theft on the real body
    out = s.feed(wrap(0x1400, "粤B12345", 2, 0x1402, theft), NOW)
    [(topic, ev)] = out.publish
    assert topic == ALARMS_RAW and isinstance(ev, AlarmEvent)
    assert ev.kind == AlarmKind.VEHICLE_THEFT and ev.code == "theft" and ev.source.protocol == "jt809"
    assert ev.source.device_id == "粤B12345:2" and ev.source.platform == "op-a"
    assert ev.location is not None and ev.location.lat == 24.123456
    assert ev.attributes["info"] == "gfdf454553" and ev.attributes["signal"] == "theft_alarm"
    out = s.feed(wrap(0x1400, "粤B12345", 2, 0x1402, BODY_1402), NOW)
    assert out.publish[0][1].kind == AlarmKind.GEOFENCE  # 0x000B route deviation
    assert out.publish[0][1].attributes["signal"] == "geofence_exit"


def test_session_converts_offset_coordinates() -> None:
    s, _ = logged_in()
    glon, glat = wgs84_to_gcj02(114.0579, 22.5431)
    body = p.encode_position_2011(glat, glon, NOW, offset=True)
    out = s.feed(wrap(0x1200, "粤B12345", 2, 0x1202, body), NOW)
    fix = out.publish[0][1]
    assert abs(fix.lat - 22.5431) < 2e-6 and abs(fix.lon - 114.0579) < 2e-6
    assert fix.attributes["crs_in"] == "GCJ02"


def test_session_allowed_plates() -> None:
    rec = PlatformRecord(20180920, "20180920", 20180920, allowed_plates=frozenset({"粤A00001"}))
    s = Jt809LinkSession(PlatformDirectory([rec]))
    s.feed(LOGIN, NOW)
    out = s.feed(wrap(0x1200, "粤B12345", 2, 0x1202, BODY_1202), NOW)
    assert out.publish == [] and len(out.dlq) == 1


def test_session_logout() -> None:
    s, _ = logged_in()
    out = s.feed(
        p.encode(0x1003, p.encode_logout(20180920, "20180920"), serial=9, gnss_center_id=20180920), NOW
    )
    assert p.decode(one(out.replies[0])).msg_id == 0x1004 and out.close and s.closed


def test_session_answers_supervision_ack() -> None:
    s, _ = logged_in()
    out = s.feed(wrap(0x1400, "粤A12345", 2, 0x1401, bytes.fromhex("000026AA00")), NOW)
    assert out.answers == [
        {
            "msg_id": 0x1400,
            "sub_type": 0x1401,
            "device_id": "粤A12345:2",
            "supervision_id": 0x26AA,
            "result": 0,
        }
    ]


# ------------------------------------------------------------------------------- fuzz

_REAL = [
    LOGIN,
    HEARTBEAT,
    SUPERVISION,
    wrap(0x1200, "粤B1", 2, 0x1202, BODY_1202),
    wrap(0x1200, "粤B1", 2, 0x1203, BODY_1203),
    wrap(0x1400, "粤B1", 2, 0x1402, BODY_1402),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=200),
            st.sampled_from(_REAL),
            st.tuples(st.sampled_from(_REAL), st.integers(0, 300), st.integers(0, 255)).map(
                lambda t: t[0][: t[1] % len(t[0])] + bytes([t[2]]) + t[0][t[1] % len(t[0]) + 1 :]
            ),
        ),
        max_size=12,
    )
)
def test_fuzz_malformed_frames_never_raise(chunks: list[bytes]) -> None:
    s = Jt809LinkSession(PlatformDirectory([PLATFORM]), peer="127.0.0.1:1")
    s.feed(LOGIN, NOW)
    for c in chunks:
        s.feed(c, NOW)
    assert s.logged_in or s.closed


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_before_login_never_raises(data: bytes) -> None:
    s = Jt809LinkSession(PlatformDirectory([PLATFORM]))
    s.feed(b"\x5b" + data + b"\x5d", NOW)
    s.feed(data, NOW)


def test_fast_fix_serializes_like_the_validated_model() -> None:
    from alarmhub_ingest_gps.jt809 import fast_fix

    kw: dict = dict(
        device_id="粤B12345:2",
        lat=22.5,
        lon=114.0,
        speed_kmh=3.0,
        heading_deg=45.0,
        altitude_m=None,
        valid=True,
        occurred_at=NOW,
        received_at=NOW,
        attributes={"backfill": True},
    )
    fast = fast_fix(**kw)
    assert fast.to_bytes() == GpsFix(event_id=fast.event_id, protocol="jt809", **kw).to_bytes()
    assert fast.event_id.version == 4
    with pytest.raises(ValueError):
        fast_fix(**{**kw, "lat": 91.0})
    assert fast.event_id.variant == uuid.RFC_4122


def _hot_path_frames() -> list[bytes]:
    """The reference 0x1202 body, plus positions covering the branches of the hot path."""
    t = datetime(2026, 11, 25, 9, 59, 58, tzinfo=UTC)
    bodies = [
        BODY_1202,
        p.encode_position_2011(22.54, 114.05, t, speed=40, heading=400, altitude=12),  # heading > 360 → None
        p.encode_position_2011(22.54, 114.05, t, offset=True, alarm=0),  # GCJ-02 → WGS-84
        p.encode_position_2011(22.55, 114.06, t, alarm=0b101, status=0b01),  # alarms, not positioned
        p.encode_position_2011(22.55, 114.06, t.replace(year=2030)),
    ]  # future time → reception time
    frames = [wrap(0x1200, "粤B12345", 2, 0x1202, b, serial=i) for i, b in enumerate(bodies)]
    frames.append(wrap(0x1200, "粤A99999", 1, 0x1202, BODY_1202, serial=9))
    return frames


def test_hot_path_decodes_as_the_general_path() -> None:
    results = []
    for fast in (True, False):
        s, _ = logged_in()
        s.fast = fast
        s.vehicles = {"粤B12345:2": type("V", (), {"armed": True})()}
        out = s.feed(b"".join(_hot_path_frames()), NOW)
        results.append([(t, e.model_dump(exclude={"event_id"})) for t, e in out.publish])
    assert results[0] == results[1]
    topics = [t for t, _ in results[0]]
    assert topics.count(TELEMETRY_GPS) == 6 and topics.count(ALARMS_RAW) == 8  # edges of alarm words 257, 5
    assert results[0][0][1]["attributes"]["vec2_kmh"] == 51 and results[0][0][1]["heading_deg"] == 45.0


def test_fix_json_parses_as_the_model_serialization() -> None:
    import json

    from alarmhub_ingest_gps.jt809 import fix_json, raw_items

    s, _ = logged_in()
    out = s.feed(b"".join(_hot_path_frames()) + wrap(0x1200, "粤B1", 2, 0x1203, BODY_1203), NOW)
    fixes = [e for t, e in out.publish if t == TELEMETRY_GPS]
    assert len(fixes) == 6 + 3
    for fix in fixes:
        assert json.loads(fix_json(fix)) == json.loads(fix.to_bytes())
    assert fix_json(fixes[0]) == fixes[0].to_bytes()  # byte for byte on the common shape
    raw = raw_items(out.publish)
    assert [(t, k) for t, _, k in raw] == [(t, getattr(e, "key", None)) for t, e in out.publish]
    assert all(
        json.loads(v) == json.loads(e.to_bytes()) for (_, v, _), (_, e) in zip(raw, out.publish, strict=True)
    )


def _direct_frames() -> list[bytes]:
    """What the hot path writes as JSON itself (a fix without an alarm edge) and what it hands to the
    model path (edges), for vehicles in and out of the registry. Byte variants of the real 0x1202 body
    (SmallChi JT809_0x1200_0x1202Test.cs: alarm word 257, status 3, heading 45) at fixed offsets:
    day (1), lon (8–11), lat (12–15), heading (24–25), alarm word (32–35); plus ``_hot_path_frames``."""
    b = BODY_1202
    no_alarm = b[:32] + bytes(4)
    no_date = b[:1] + b"\x00" + b[2:]  # day 0: not a date → reception time
    offset = (
        b"\x01" + b[1:8] + (114_051_000).to_bytes(4, "big") + (22_540_000).to_bytes(4, "big") + no_alarm[16:]
    )
    no_heading = no_alarm[:24] + (400).to_bytes(2, "big") + no_alarm[26:]
    out_of_range = no_alarm[:12] + (100_000_000).to_bytes(4, "big") + no_alarm[16:]  # lat 100°: dead-lettered
    frames = _hot_path_frames()
    shapes = [
        ("粤B12345", b),
        ("粤B12345", b),  # the edge, then the same word held: "alarms" written directly
        ("粤A99999", BODY_1202),
        ("粤C00001", no_date),
        ("粤C00001", no_date),
        ("粤D00002", no_alarm),
        ("粤D00002", offset),
        ("粤D00002", no_heading),
        ("粤D00002", out_of_range),
        ("粤B12345", no_alarm),
        ("粤B12345", no_alarm),
    ]
    frames += [
        wrap(0x1200, plate, 2 if plate != "粤A99999" else 1, 0x1202, body, serial=100 + i)
        for i, (plate, body) in enumerate(shapes)
    ]
    return frames


@pytest.mark.parametrize("registry", [False, True])
def test_direct_path_publishes_the_model_paths_json(registry: bool) -> None:
    """The server's hot path (``direct``) writes the same JSON as the model path: byte for byte what
    ``fix_json`` made of the model before (event id aside), and parsed, what pydantic writes."""
    import json

    from alarmhub_ingest_gps.jt809 import RawFix, fix_json, raw_items

    vehicles = {
        "粤B12345:2": type("V", (), {"armed": True})(),
        "粤A99999:1": type("V", (), {"armed": False})(),
        "粤D00002:2": type("V", (), {"armed": False})(),
    }
    outs = []
    for direct in (True, False):
        s, _ = logged_in(direct=direct)
        s.fast = direct  # the model path: the general decoder, GpsFix models
        s.vehicles = vehicles if registry else None
        out = s.feed(b"".join(_direct_frames()), NOW)
        outs.append(out)
    fast, model = outs
    assert fast.dlq == model.dlq and len(fast.dlq) == 1 and "out of range" in fast.dlq[0][1]
    assert (fast.positions, fast.alarms) == (model.positions, model.alarms)
    raws = [e for _, e in fast.publish if type(e) is RawFix]
    assert len(raws) == 8  # every fix without an edge (the edges: 9 fixes through the model path)
    assert any(b'"crs_in":"GCJ02"' in r.value for r in raws) and any(b'"alarms":[' in r.value for r in raws)
    assert any(b'"heading_deg"' not in r.value for r in raws)
    if registry:
        assert any(b'"registered":false' in r.value for r in raws) and any(
            b'"armed":true' in r.value for r in raws
        )
    fast_raw, model_raw = raw_items(fast.publish), raw_items(model.publish)
    assert [(t, k) for t, _, k in fast_raw] == [(t, k) for t, _, k in model_raw]
    for (_, fe), (_, me), (_, fv, _), (_, mv, _) in zip(
        fast.publish, model.publish, fast_raw, model_raw, strict=True
    ):
        got, want = json.loads(fv), json.loads(me.to_bytes())  # pydantic's own JSON of the model
        event_id = uuid.UUID(got.pop("event_id"))
        assert (
            event_id.version == 4
            and event_id.variant == uuid.RFC_4122
            and str(event_id) == json.loads(fv)["event_id"]
        )
        want.pop("event_id")
        assert got == want
        if type(fe) is RawFix:
            assert fv == fix_json(me).replace(str(me.event_id).encode(), str(event_id).encode())
            assert fe.model().model_dump(exclude={"event_id"}) == me.model_dump(exclude={"event_id"})
        else:
            assert json.loads(mv)["event_id"] == str(me.event_id)


def test_direct_path_follows_a_changed_platform_record() -> None:
    """A registry refresh that renames the platform reaches the fixes the hot path writes directly."""
    import json

    s, _ = logged_in(direct=True)
    frame = wrap(0x1200, "粤B12345", 2, 0x1202, BODY_1202[:32] + bytes(4))
    [(_, first)] = s.feed(frame, NOW).publish
    s.platform = PlatformRecord(20180920, "20180920", 20180920, name="op-renamed", cipher=KEYS)
    [(_, second)] = s.feed(frame, NOW).publish
    assert json.loads(first.to_bytes())["attributes"]["platform"] == "op-a"
    assert json.loads(second.to_bytes())["attributes"]["platform"] == "op-renamed"


# SmallChi/JT809 (4528912c) JT809_0x1400_0x1402Test.cs Test_2019_3: a purchased capture of a 2019 0x1402
# (warn type 0xA001, 超时停车 = parked too long) for plate 测A93228, in the 2019 head without a plate
WARN_2019 = bytes.fromhex(
    "5b0000007e00000002140001fec19001020f0000000000000000005f616c491402000000564a43323032305054303838a001"
    "000000005f5f7b3e000000005f5f7b3e000000005f5f7b3eb2e2413933323238000000000000000000000000000200000000"
    "000000000000000000000000000008b3accab1cda3b3b5f77e5d"
)
# SmallChi/JT809 JT809MessagePackReaderTest.cs DecodeTest1: a 2011 header around a 2019 0x1402 body,
# with an unescaped 0x5e inside its timestamps (the source's reader accepts it and checks the CRC)
WARN_MIXED = bytes.fromhex(
    "5b0000006e00000002140000000000010000000000000014020000004e31323334353637383931320001000000005e7b1e28"
    "000000005e7b1e28000000005e7b1e28b4a84131323334350000000000000000000000000001313233343536373839313200"
    "00007b000000005a024a5d"
)
# SmallChi/JT809 JT809_0x1200_0x1202Test.cs Test_2019_6: a 2019 0x1202 whose GNSS data is the 2011 layout
# (35 bytes, without its encrypt byte) — alarm word 1 (emergency)
FIX_MIXED = bytes.fromhex(
    "5b000000930000000112000098968701000000000368710000000068da5772b2e2cad4b1a8beaf0000000000000000000000"
    "00000112020000005500000000231d0907e911362b06b35071021117160000000000006d7f007b00b0000400030000000100"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000de6e5d"
)


def test_2019_alarm_body_without_plate_head() -> None:
    frame = p.decode(WARN_2019[1:-1], edition=p.Edition.V2019)
    vm = p.read(frame, edition=p.Edition.V2019)
    assert (vm.sub_type, vm.plate, vm.colour) == (0x1402, "测A93228", 2)
    alarm = p.read(vm, edition=p.Edition.V2019)
    assert alarm.warn_type == 0xA001 and alarm.name == "parking_overtime"
    assert alarm.source_platform == "JC2020PT088" and alarm.content == "超时停车"


def test_2011_header_around_2019_alarm_body() -> None:
    frame = p.decode(WARN_MIXED[1:-1], edition=p.Edition.V2011)
    vm = p.read(frame, edition=p.Edition.V2011)
    assert (vm.sub_type, vm.plate, vm.colour) == (0x1402, "川A12345", 1)
    alarm = p.read(vm, edition=p.Edition.V2011)  # the body's own layout wins over the header's edition
    assert alarm.warn_type == 0x0001 and alarm.name == "overspeed" and alarm.source_platform == "12345678912"


def test_2019_header_around_2011_gnss_body() -> None:
    frame = p.decode(FIX_MIXED[1:-1], edition=p.Edition.V2019)
    vm = p.read(frame)
    assert vm.plate == "测试报警" and vm.sub_type == 0x1202
    pos = p.read(vm, edition=p.Edition.V2019)
    assert (pos.lat, pos.lon) == (34.674454, 112.414833) and pos.alarm_bits == 1
    assert pos.time == datetime(2025, 9, 29, 9, 54, 43, tzinfo=UTC) and pos.heading_deg == 123


def test_session_2019_alarm_body_under_a_2011_header_is_an_alarm() -> None:
    # the 2019 0x1400 head has no plate; the link reads it from the alarm body (川A12345, colour 1)
    s, _ = logged_in()
    out = s.feed(WARN_MIXED, NOW)
    [(topic, ev)] = out.publish
    assert topic == ALARMS_RAW and isinstance(ev, AlarmEvent)
    assert ev.kind == AlarmKind.OVERSPEED and ev.code == "overspeed" and ev.source.device_id == "川A12345:1"
    assert ev.attributes["source_platform_id"] == "12345678912"


def test_session_2019_link_turns_a_2019_alarm_into_an_event() -> None:
    # a 2019 login (built here: the sources publish none unencrypted for this platform), then the
    # purchased 2019 0x1402 capture (warn type 0xA001, parked too long) for 测A93228
    login = p.encode(
        p.UP_CONNECT_REQ,
        p.encode_login(p.Login(20180920, "20180920", "127.0.0.1", 809, 20180920), p.Edition.V2019),
        serial=1,
        gnss_center_id=20180920,
        edition=p.Edition.V2019,
    )
    s = Jt809LinkSession(PlatformDirectory([PLATFORM]), peer="127.0.0.1:5000", verify_code=lambda: 0xD4B8)
    assert s.feed(login, NOW).login_result == p.LOGIN_OK and s.edition == p.Edition.V2019
    out = s.feed(WARN_2019, NOW)
    [(topic, ev)] = out.publish
    assert topic == ALARMS_RAW and isinstance(ev, AlarmEvent)
    assert (
        ev.code == "parking_overtime" and ev.kind == AlarmKind.OTHER and ev.source.device_id == "测A93228:2"
    )
    assert ev.attributes["warn_type"] == 0xA001
