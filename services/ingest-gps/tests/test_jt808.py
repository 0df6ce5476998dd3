"""JT/T 808 decoding against captured frames, byte for byte.

Sources (each frame cites one):
- TRACCAR = traccar/traccar src/test/java/org/traccar/protocol/HuabaoProtocolDecoderTest.java
  (commit 014cf82a9e63a36e944e293932f9edf27e452919) — device captures.
- GOJT808 = cuteLittleDevil/go-jt808 protocol/model/parse_test.go and protocol_test.go — frames of the
  standard's message layouts, incl. 2019-edition headers.
- KT20 = taomee517 netty demo, fakedevice/kt20/handler/DeviceHandler.java — a KT20 terminal's frames.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alarmhub_ingest_gps.protocols import jt808
from alarmhub_ingest_gps.protocols._common import FrameError


def frame(hexstr: str) -> jt808.Message:
    return jt808.decode(bytes.fromhex(hexstr))


# TRACCAR: 0x0200 with SOS (alarm bit 0), southern-hemisphere flag clear, west flag set
SOS_LOCATION = "7e0200002e094027587492000a000000010000000a03083db7001329f3000000140000130412164952010400000012360a0002341502cb0c20085c107e"
# TRACCAR: 0x0200 from a Shenzhen terminal with odometer, fuel and tachograph speed items
SZ_LOCATION = "7E0200002A013833501744001900000000000000C201597FA806CC01580080000000081508180721210104000002F502020000030200009F7E"
# TRACCAR: 0x0200 with alarm bit 7 (main power under-voltage)
LOW_POWER = "7e020000480123456789010013000000800000000301597BC506CBFF6600EB00000155210726203531010400000000EB24000C00B28986047701207027150200060089FFFFEFFF0004002D0E10000600C5FFFFFFEF697E"
# TRACCAR: 0x0200 southern and western hemisphere (Brazil)
SOUTH_WEST = (
    "7e020000220014012499170007000000000000400e012af16f02cbd2ba000000000000150101194257010400000077a97e"
)
# TRACCAR: 0x0200 with item 0x30 (RSSI), 0x31 (satellites), 0x25 and vendor items E3.. kept as hex
ITEMS = "7E02000053200002604323004800000000000C00000158B91406CB7007006B00000000220512101138010400000F2803020000250400000000300114310100E30100D50E0100026043232795980277530030E50400000000E7020FC8E8020E83AB7E"
# TRACCAR: 0x0100 registration, 2013 layout, plate 粤B88888
REGISTER_2013 = "7e0100002d0141305678720024002c012f373031313142534a2d41362d424400000000000000000000003035363738373201d4c14238383838386d7e"
# TRACCAR: 0x0100 registration, 2011 layout (25-byte body, no plate)
REGISTER_2011 = "7e010000190940278494700012000000000000000000000000000000000000094027849470000a7e"
# GOJT808: 0x0100 registration of a 2019 terminal (version flag, 10-byte phone)
REGISTER_2019 = "7e0100405301000000000172998417380000001f007363640000000000000000007777772e3830382e636f6d0000000000000000000000000000000000000037363534333231000000000000000000000000000000000000000000000001b2e241313233343b7e"
# TRACCAR: 0x0102 authentication with a 16-character code
AUTH_2013 = "7E010200100940278494700084323031313131303831313333323139369F7E"
# GOJT808: 0x0102 of a 2019 terminal (code length, code, IMEI, software version)
AUTH_2019 = "7e0102402f010000000001729984173800000b3137323939383431373338313233343536373839303132333435332e372e31350000000000000000000000000000227e"
# TRACCAR: 0x0002 heartbeat
HEARTBEAT = "7e0002000004304832546500b7ca7e"
# KT20: 0x0003 logout
LOGOUT = "7E000300000145332243520004437E"
# GOJT808: 0x0001 terminal general response (serial 123 to message 0x01C8, result 3)
GENERAL = "7e000100050123456789017fff007b01c803bd7e"
# GOJT808: 0x0201 answer to a position query of serial 26722
POSITION_REPLY = "7e0201001e0123456789017fff686200002a5a000074280000a3e50000db4fbc732711012c2005121212595b7e"
# TRACCAR: 0x0704 blind-area batch of 8 positions
BATCH = "7E0704014301356777777707F5000801002600000000000000030159741206CBFD5001720000000116052709062401040000001D03020000002600000000000000030159746606CBFD50016B0000000116052709065301040000001D0302000000260000000000000003015975E406CBFE58013F0000000116052709072701040000001D0302000000260000000000000003015976DE06CBFF10012E0000000116052709075601040000001D0302000000260000000000000003015976BC06CBFED0012D0000000116052709083001040000001D0302000000260000000000000003015976FE06CBFEC001080000000116052709090001040000001D0302000000260000000000000003015976FE06CBFE7800FC0000000116052709093301040000001D0302000000260000000000000003015977A606CBFF3001080000000116052709100201040000001D030200001F7E"
# GOJT808: platform frames — 0x8100 with auth code 12345678901, 0x8201 position query, 0x8001
REGISTER_RESPONSE = "7e8100000e01234567890100000000003132333435363738393031377e"
QUERY_POSITION = "7e82010000001256256927000fa37e"
PLATFORM_GENERAL = "7e8001000501234567890100007fff0002008e7e"


def test_sos_location() -> None:
    m = frame(SOS_LOCATION)
    assert m.header.msg_id == 0x0200 and m.header.phone == "094027587492" and m.header.serial == 10
    pos = jt808.decode_location(m.body)
    assert pos.alarm_bits & 1
    assert pos.lat == pytest.approx(50.871735) and pos.lon == pytest.approx(-1.255923)
    assert pos.valid and pos.speed_kmh == 2.0
    assert pos.time == datetime(2013, 4, 12, 8, 49, 52, tzinfo=UTC)  # 16:49:52 GMT+8
    assert pos.attributes["odometer_km"] == 1.8


def test_location_items() -> None:
    pos = jt808.decode_location(frame(SZ_LOCATION).body)
    assert pos.lat == pytest.approx(22.6426) and pos.lon == pytest.approx(114.032984)
    assert pos.altitude_m == 128 and pos.heading_deg == 8
    assert pos.status_bits == 0xC2 and not pos.status_bits & 1  # ACC off, positioned
    assert pos.attributes["odometer_km"] == 75.7 and pos.attributes["fuel_l"] == 0.0
    items = jt808.decode_location(frame(ITEMS).body).attributes
    assert items["rssi"] == 20 and items["satellites"] == 0 and items["odometer_km"] == 388.0
    assert items["items"]["e7"] == "0fc8"


def test_low_power_alarm_bit() -> None:
    pos = jt808.decode_location(frame(LOW_POWER).body)
    assert pos.alarm_bits == 0x80 and jt808.ALARM_BITS[7] == "power_low"
    assert pos.status_bits & 0x03 == 0x03


def test_south_west() -> None:
    pos = jt808.decode_location(frame(SOUTH_WEST).body)
    assert pos.lat == pytest.approx(-19.591535) and pos.lon == pytest.approx(-46.912186)
    assert jt808.device_id(frame(SOUTH_WEST).header.phone) == "001401249917"


def test_registration_editions() -> None:
    r = jt808.decode_registration(frame(REGISTER_2013).body, is_2019=False)
    assert (r.edition, r.province, r.city, r.manufacturer, r.model) == ("2013", 44, 303, "70111", "BSJ-A6-BD")
    assert r.terminal_id == "0567872" and r.plate_colour == 1 and r.plate == "粤B88888"
    r11 = jt808.decode_registration(frame(REGISTER_2011).body, is_2019=False)
    assert r11.edition == "2011" and r11.plate == ""
    m = frame(REGISTER_2019)
    assert m.header.is_2019 and m.header.version == 1 and m.header.phone == "00000000017299841738"
    r19 = jt808.decode_registration(m.body, is_2019=True)
    assert (r19.edition, r19.manufacturer, r19.model, r19.terminal_id, r19.plate) == (
        "2019",
        "cd",
        "www.808.com",
        "7654321",
        "测A1234",
    )


def test_device_id_is_stable_across_editions() -> None:
    assert jt808.device_id(frame(REGISTER_2019).header.phone) == "017299841738"
    assert jt808.device_id(frame(REGISTER_2013).header.phone) == "014130567872"


def test_authentication() -> None:
    assert jt808.decode_auth(frame(AUTH_2013).body, is_2019=False).code == "2011110811332196"
    a = jt808.decode_auth(frame(AUTH_2019).body, is_2019=True)
    assert (a.code, a.imei, a.software_version) == ("17299841738", "123456789012345", "3.7.15")


def test_heartbeat_logout_general() -> None:
    hb = frame(HEARTBEAT)
    assert hb.header.msg_id == 0x0002 and hb.body == b"" and hb.header.serial == 183
    lo = frame(LOGOUT)
    assert lo.header.msg_id == 0x0003 and lo.header.phone == "014533224352"
    g = jt808.decode_general_response(frame(GENERAL).body)
    assert (g.reply_serial, g.reply_id, g.result) == (123, 0x01C8, 3)


def test_position_reply() -> None:
    serial, pos = jt808.decode_position_reply(frame(POSITION_REPLY).body)
    assert serial == 26722 and pos.alarm_bits == 10842 and pos.status_bits == 29736
    assert pos.time == datetime(2020, 5, 12, 4, 12, 59, tzinfo=UTC)


def test_batch() -> None:
    m = frame(BATCH)
    assert m.header.serial == 2037
    b = jt808.decode_batch(m.body)
    assert b.kind == 1 and len(b.positions) == 8
    assert b.positions[0].lat == pytest.approx(22.639634) and b.positions[0].lon == pytest.approx(114.031952)
    assert b.positions[-1].time == datetime(2016, 5, 27, 1, 10, 2, tzinfo=UTC)


def test_reply_builders_match_reference_bytes() -> None:
    h = jt808.Header(0x0100, 0, 0, "012345678901", 0)
    assert jt808.reply_register(h, 0, jt808.REG_OK, "12345678901").hex() == REGISTER_RESPONSE
    assert jt808.encode_query_position("001256256927", 15).hex() == QUERY_POSITION
    h2 = jt808.Header(0x0002, 0, 0, "012345678901", 0x7FFF)
    assert jt808.reply(h2, 0).hex() == PLATFORM_GENERAL


def test_commands_roundtrip_through_the_parser() -> None:
    for data, mid in (
        (jt808.encode_temporary_tracking("013912345678", 7, 10, 600), 0x8202),
        (jt808.encode_text_message("013912345678", 8, "停车检查", version=1), 0x8300),
    ):
        m = jt808.decode(data)
        assert m.header.msg_id == mid
    assert jt808.decode(jt808.encode_temporary_tracking("013912345678", 7, 10, 600)).body == bytes.fromhex(
        "000a00000258"
    )


def test_escaping() -> None:
    assert jt808.escape(b"\x30\x7e\x08\x7d\x55") == b"\x30\x7d\x02\x08\x7d\x01\x55"
    assert jt808.unescape(b"\x30\x7d\x02\x08\x7d\x01\x55") == b"\x30\x7e\x08\x7d\x55"
    # a 0x7d that starts no escape pair is kept (terminals send them unescaped, deployed decoders keep them)
    assert jt808.unescape(b"\x7d\x03\x7d") == b"\x7d\x03\x7d"


def test_truncated_frame_with_bad_check_code_rejected() -> None:
    # TRACCAR frame 10 bytes shorter than declared whose XOR byte does not match either: not a whole frame
    with pytest.raises(FrameError, match="XOR"):
        frame(
            "7E02000032013511221122000700000000000C000301578CC006CA3A5C00470000000014072317201501040000000030011631010BD07E"
        )


def test_bad_check_code_alone_is_recorded_not_refused() -> None:
    # SmallChi/JT808 JT808_0x0200Test.cs (c9552b0f) Test5: a whole 0x0200 whose check code is off; the
    # deployed decoders accept it and so do we, recording it on the message
    m = frame(
        "7E020000260112233445500000000000010000000200BA7F0E07E4F11C0028003C000018071510101001040000006402020037AC7E"
    )
    assert not m.check_ok and m.length_ok
    assert jt808.decode_location(m.body).alarm_bits == 1


# TRACCAR (9e5c458a) Jt808ProtocolDecoderTest: a terminal number with hex digits (0x0200, JC371 camera)
HEX_TERMINAL = "7E0200003E4EB6FB4AD6280002000000000000000301587D0106CBFF6600000000000026010112000001040000007B30011831010AE8140C01103131313131313126010112000000000000467E"


def test_terminal_number_with_hex_digits_is_kept_as_sent() -> None:
    # traccar's test writes this frame with its escaping undone: escape it as the camera sends it
    raw = bytes.fromhex(HEX_TERMINAL)
    m = jt808.decode(b"\x7e" + jt808.escape(raw[1:-1]) + b"\x7e")
    assert m.header.phone == "4eb6fb4ad628" and jt808.device_id(m.header.phone) == "4eb6fb4ad628"
    pos = jt808.decode_location(m.body, model="JC371")
    assert (round(pos.lat, 6), round(pos.lon, 6)) == (22.576385, 114.032486)
    assert pos.alarms == ("sos",)  # the JC camera's 0xE8 event 0x0C01
    assert jt808.decode_location(m.body).alarms == ()  # the event code means nothing without the model


# TRACCAR (9e5c458a): the extended block 0xEB with a 0x0089 word (bit 12 low: removed) and 0x00C5 word
REMOVED = "7e020000530095900689830016000000000000000b00a2394803a925f800000000000025112411514701040000003e300115310113eb29000c00b28988228066613427450900060089ffffefff000600c5ffffffef0004002d0fa5000300a85c757e"
VIBRATION = "7e020000530095900689830016000000000000000b00a2394803a925f800000000000025112411514701040000003e300115310113eb29000c00b28988228066613427450900060089ffffffff000600c5ffffffaf0004002d0fa5000300a85c257e"
# TRACCAR: 0x0200 whose alarm word sets bit 17 (left reserved by the standard; vendors' tamper switch)
TAMPER = "7e02000033421030000018004c000200000004000201556dcb06c4d41d000c00f100fc210118095853010400000000fe0140ff0c01cc000000002694000055d87a7e"


def test_vendor_alarm_items() -> None:
    removed = jt808.decode_location(frame(REMOVED).body)
    assert removed.alarms == ("removal",) and removed.attributes["iccid"] == "89882280666134274509"
    assert removed.attributes["battery_v"] == 4.005 and removed.attributes["battery_level"] == 92
    assert jt808.decode_location(frame(VIBRATION).body).alarms == ("vibration",)
    tamper = jt808.decode_location(frame(TAMPER).body)
    assert tamper.alarms == ("tamper",) and tamper.attributes["battery_level"] == 64


# SMALLCHI (c9552b0f) JT808_0x0200Test Test5_3/5_4: the 2019 version flag over a 2013 header (the source
# decodes these with JTT2013Force; its comment: the terminal uses 2013 with the flag set)
FLAG_OVER_2013_AUTH = "7e0102400c01003000068109024a3130303330303030363831857e"
FLAG_OVER_2013_LOCATION = "7e0200406c010030000681090e00000000000c0003026c936f074c794c0004036300d7210625155739010400000000052801cc00210625155739054145bbc91e4145a2fa1141450000004145bbc8194145a1370a4145000000240200002a0200002b04000000003001153101125f0a89860418231870850620757e"


def test_version_flag_over_a_2013_header_is_read_as_2013() -> None:
    auth = frame(FLAG_OVER_2013_AUTH)
    assert auth.header.version is None and auth.header.phone == "010030000681"
    assert auth.check_ok and auth.length_ok
    assert jt808.decode_auth(auth.body, is_2019=False).code == "J10030000681"
    loc = frame(FLAG_OVER_2013_LOCATION)
    assert loc.header.version is None and loc.length_ok
    assert jt808.decode_location(loc.body).attributes["satellites"] == 18
    # a real 2019 header (the length fits it) keeps its version
    real = jt808.encode(jt808.T_HEARTBEAT, "12345678901", 7, version=1)
    assert frame(real.hex()).header.version == 1


# TRACCAR (9e5c458a): a 0x0200 whose vendor item 0xF6 (length 8) carries the unit's IMEI
IMEI_ITEM = "7e02000026000000000000000100000000000000020000000000000000000000000000260618001512f6080867567041100769907e"


def test_imei_item_is_an_attribute() -> None:
    m = frame(IMEI_ITEM)
    assert jt808.decode_location(m.body).attributes["imei"] == "867567041100769"
    assert "imei" not in jt808.decode_location(m.body, model="AL300").attributes


# TRACCAR (9e5c458a) Jt808ProtocolDecoderTest: vendors' position messages outside the standard
LOCK_LIVE = "7e550100287001608180000127061008045322332880113555602e050031010000000608000010931435010002000300030100051b7e"
LOCK_ASKS_ANSWER = "7e55018c378580120300032a06052117594022348474113550560705981e0400000002370ac30c0c28660308000000100101020200000a0301cc000c0600a2ffa7ff5e1b7e"
TRANSPARENT_F0 = (
    "7e0900001f4f07788ef87d000cf0230223150215010203013800000c000b029dc58c04b99b60230223171822507e"
)


def test_lock_location_reports() -> None:
    m = frame(LOCK_LIVE)
    assert (m.header.serial, m.header.phone, m.header.encryption) == (1, "700160818000", 0)
    assert m.check_ok and m.length_ok and not m.header.vendor_ack
    (pos,) = jt808.read(m)
    # 22°33.2880' N, 113°55.5602' E (minutes × 10⁴ in BCD), 27 June 2010 08:04:53 UTC
    assert (round(pos.lat, 6), round(pos.lon, 6)) == (22.5548, 113.926003)
    assert pos.time == datetime(2010, 6, 27, 8, 4, 53, tzinfo=UTC) and pos.valid
    assert pos.alarms == ("low_external_battery",)  # product 1, alarm bit 0
    asks = frame(LOCK_ASKS_ANSWER)
    assert asks.header.vendor_ack and asks.length_ok  # its check code is off: tolerated, as traccar does
    answer = jt808.reply_lock(asks.header)
    assert answer == bytes.fromhex("7e4401000385801203000301550100047e")


def test_transparent_vendor_record_and_vendor_batch() -> None:
    (pos,) = jt808.read(frame(TRANSPARENT_F0))
    assert (round(pos.lat, 6), round(pos.lon, 6)) == (43.894156, -79.2728) and pos.valid
    assert pos.time == datetime(2023, 2, 23, 7, 2, 15, tzinfo=UTC)  # 15:02:15 at GMT+8
    # 0x0900 of another type carries no position
    other = jt808.encode(jt808.T_TRANSPARENT, "4f07788ef87d", 1, b"\x41$OBD-RT,12.5")
    assert jt808.read(frame(other.hex())) == []
    body = jt808.encode_location_body(lat=22.5, lon=114.0, local_time=datetime(2026, 1, 2, 3, 4, 5))
    batch = jt808.encode(jt808.T_BATCH_VENDOR, "010036526447", 1, (bytes([len(body)]) + body) * 3)
    assert [p.lat for p in jt808.read(frame(batch.hex()))] == [22.5, 22.5, 22.5]


def test_out_of_range_coordinates_rejected() -> None:
    # GOJT808 0x0200 carries latitude 119.55°: valid layout, impossible position
    m = frame("7e0200001c0123456789010000000004000000080007203b7d0202633df70138000300632410012359591c7e")
    with pytest.raises(FrameError, match="out of range"):
        jt808.decode_location(m.body)


def test_framer_split_at_every_offset() -> None:
    stream = bytes.fromhex(SOS_LOCATION + HEARTBEAT + BATCH)
    for cut in range(len(stream) + 1):
        f = jt808.Framer()
        frames = f.feed(stream[:cut]) + f.feed(stream[cut:])
        assert [jt808.decode(x).header.msg_id for x in frames] == [0x0200, 0x0002, 0x0704]


def test_framer_byte_by_byte_glued_and_garbage() -> None:
    stream = (
        b"garbage\x00\xff" + bytes.fromhex(SOS_LOCATION) + b"\x01\x02" + bytes.fromhex(HEARTBEAT + LOGOUT)
    )
    f = jt808.Framer()
    frames = [x for b in stream for x in f.feed(bytes([b]))]
    assert [jt808.decode(x).header.msg_id for x in frames] == [0x0200, 0x0002, 0x0003]
    assert f.dropped_bytes >= 11


def test_framer_drops_oversized() -> None:
    f = jt808.Framer(max_frame=64)
    assert f.feed(b"\x7e" + b"\x01" * 500) == []
    assert f.buffered == 0 and f.oversize == 1
    frames = f.feed(b"\x01" * 10 + b"\x7e" + bytes.fromhex(HEARTBEAT))
    assert [jt808.decode(x).header.msg_id for x in frames] == [0x0002]


def test_subpackage_reassembly() -> None:
    body = jt808.encode_location_body(lat=22.5, lon=114.0, local_time=datetime(2026, 1, 1, 8, 0, 0))
    r = jt808.Reassembler()
    first = jt808.decode(jt808.encode(0x0200, "013912345678", 40, body[:10], package=(2, 1)))
    second = jt808.decode(jt808.encode(0x0200, "013912345678", 41, body[10:], package=(2, 2)))
    assert first.header.package_total == 2 and first.header.package_index == 1
    assert r.add(first) is None
    whole = r.add(second)
    assert whole is not None and whole.body == body and whole.header.serial == 40
