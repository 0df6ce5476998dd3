"""GT06 decoding against captured frames, byte for byte.

Source of every frame: traccar/traccar src/test/java/org/traccar/protocol/Gt06ProtocolDecoderTest.java
(commit 014cf82a9e63a36e944e293932f9edf27e452919) — device captures from Concox and clone units.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alarmhub_ingest_gps.protocols import gt06
from alarmhub_ingest_gps.protocols._common import FrameError, Position, crc_itu

LOGIN = "78780D01086471700328358100093F040D0A"
LOGIN_TZ = "787811010864717003664467100f190a0002c6d20d0a"
HEARTBEAT = "78780a13c40604000201298f5b0d0a"
LOCATION = "78781f120f0a140e150bc505e51e780293a9e800540000f601006e0055da00035f240d0a"
LOCATION_22 = "787822220F0C1D023305C9027AC8180C46586000140001CC00287D001F71000001000820860D0A"
LOCATION_ACC = "7878241216040e102c22cf00915ffb04c6016300195a02d402283b00753f400571040001dda4880d0a"
ALARM_VIBRATION = "787825160F0C1D0A2B21C8027AC8040C46581000146F0901CC00287D001F714804040301001C84CF0D0A"
ALARM_REMOVAL = "7878251613020C12141AC5027951430C2A16F60014000900000000001A00007C550300020002F1E70D0A"
LONG_INFO = "79790020940a035985708236675805200502187214018966051912408052452f000355560d0a"


def msg(h: str) -> gt06.Gt06Message:
    return gt06.decode(bytes.fromhex(h))


def test_crc_itu() -> None:
    data = bytes.fromhex(LOGIN)
    assert crc_itu(data[2:-4]) == 0x3F04


def test_login() -> None:
    m = msg(LOGIN)
    assert m.protocol == 0x01 and m.serial == 9
    assert gt06.read(m) == gt06.Login("864717003283581")
    assert gt06.reply(m) == bytes.fromhex("78780501000955940d0a")
    ext = gt06.read(msg(LOGIN_TZ))
    assert isinstance(ext, gt06.Login) and ext.imei == "864717003664467" and ext.tz_minutes == -240


def test_heartbeat() -> None:
    hb = gt06.read(msg(HEARTBEAT))
    assert isinstance(hb, gt06.Heartbeat)
    assert hb.terminal_info == 0xC4 and hb.voltage_level == 6 and hb.gsm_signal == 4
    assert hb.attributes["charging"] and hb.attributes["oil_cut"] and not hb.attributes["acc"]
    assert gt06.reply(msg(HEARTBEAT)) is not None


def test_location() -> None:
    # traccar expects 2015-10-20 14:21:11, valid, 54.94535, 24.01762
    pos = gt06.read(msg(LOCATION))
    assert isinstance(pos, Position)
    assert pos.time == datetime(2015, 10, 20, 14, 21, 11, tzinfo=UTC)
    assert (
        pos.valid
        and pos.lat == pytest.approx(54.94535, abs=1e-5)
        and pos.lon == pytest.approx(24.01762, abs=1e-5)
    )
    assert gt06.reply(msg(LOCATION)) is None
    p22 = gt06.read(msg(LOCATION_22))
    assert isinstance(p22, Position) and p22.lat == pytest.approx(23.11169, abs=1e-5)
    assert p22.attributes["mcc"] == 460 and p22.attributes["acc"] is False


def test_location_acc_and_southwest() -> None:
    pos = gt06.read(msg(LOCATION_ACC))
    assert isinstance(pos, Position)
    # a VXT01 unit (0x12 of 31 content bytes): after the LBS block comes terminal information 0x40
    # (ACC bit clear) and the power, 13.93 V; traccar asserts ignition false for this frame
    assert pos.lat < 0 and pos.lon < 0 and pos.attributes["acc"] is False
    assert pos.attributes["power_v"] == 13.93


def test_alarm_packets() -> None:
    a = gt06.read(msg(ALARM_VIBRATION))
    assert isinstance(a, Position) and a.attributes["alarm"] == "vibration" and a.alarm_bits == 0x03
    assert gt06.reply(msg(ALARM_VIBRATION)) is not None
    r = gt06.read(msg(ALARM_REMOVAL))
    assert (
        isinstance(r, Position) and r.attributes["alarm"] == "removal"
    )  # terminal-information bits 3–5 = 111


def test_long_packet() -> None:
    m = msg(LONG_INFO)
    assert m.long and m.protocol == 0x94
    info = gt06.read(m)
    assert (
        isinstance(info, dict)
        and info["imei"] == "359857082366758"
        and info["iccid"] == "8966051912408052452"
    )


def test_bad_crc_is_recorded_not_refused() -> None:
    # clones in the field compute the CRC wrongly and the deployed decoders accept them: the framer
    # found the declared length ending in 0d0a, so the frame is whole; the mismatch is recorded
    bad = bytearray(bytes.fromhex(LOGIN))
    bad[-3] ^= 0xFF
    m = gt06.decode(bytes(bad))
    assert not m.crc_ok and gt06.read(m) == gt06.Login("864717003283581")
    assert gt06.decode(bytes.fromhex(LOGIN)).crc_ok
    # a length field that does not match the frame is recorded too: the content runs to the stop bits
    # and the packet reads what its layout needs (traccar reads such clones' frames the same way)
    short = gt06.decode(bytes(bad[:-3]) + b"\r\n")
    assert not short.length_ok and gt06.read(short) == gt06.Login("864717003283581")
    with pytest.raises(FrameError, match="not a GT06 frame"):
        gt06.decode(bytes.fromhex("787801080d0a"))  # no room for serial and CRC


# TRACCAR (9e5c458a) Gt06ProtocolDecoderTest — alarm packets in the variants the issue names:
# 0xA4 multi-fence alarm (12-bit code 0x0C: tamper) …
FENCE_ALARM_A4 = (
    "78782da41a0509160203cf05be31f80c306530001c0010012ed000007ef40000000006428b074205041302ff0009389c0d0a"
)
# … 0x95 camera alarm, long form with position, event 0x01 (SOS) …
ALARM_95_SOS = (
    "78788b95140a070c1434055d4a800209d9c014280100004556454e545f3335333337363131303032333139365f303030303030"
    "30305f323032305f31305f30375f31345f32305f35325f32342e6d70342c4556454e545f3335333337363131303032333139"
    "365f30303030303030305f323032305f31305f30375f31345f32305f35325f32332e6d7034003f6b260d0a"
)
# … 0x16 with an 8-byte LBS length byte (G18, a VL model: code 0x30 is harsh braking there) …
ALARM_G18 = "787825161a011c141001cf00bc62e0043533a231113808028005006800124b470603300204baa49a0d0a"
# … 0x16 of the VXT01 clone (no LBS length byte; SOS in the terminal-information bits) …
ALARM_VXT01_SOS = "7878241617070a150e24ca01fba0040780e177005c0001720253360027db6204e40400004bf1e90d0a"
# … 0x16 of the SEEWORLD clone (4-byte cell id), code 0x01 SOS …
ALARM_SEEWORLD_SOS = "787826161709130f3a2dcc02c55f2a089f9af9005c210901360481fe066d9b03413e420102035f92fe0d0a"
# … 0xA5 4G LBS alarm without a position (code 0x13: tamper)
LBS_ALARM_A5 = "787819a5012ed0000075df000000000098661502050413000019a12b0d0a"


def test_alarm_variants() -> None:
    a4 = gt06.read(msg(FENCE_ALARM_A4))
    assert (
        isinstance(a4, Position) and a4.alarms == ("tamper",) and gt06.reply(msg(FENCE_ALARM_A4)) is not None
    )
    assert gt06.read(msg(ALARM_G18), model="G18").alarms == ("harsh_braking",)  # type: ignore[union-attr]
    assert gt06.read(msg(ALARM_G18)).alarms == ("jamming",)  # type: ignore[union-attr]  # without model
    assert gt06.read(msg(ALARM_VXT01_SOS)).alarms == ("sos",)  # type: ignore[union-attr]
    assert "sos" in gt06.read(msg(ALARM_SEEWORLD_SOS)).alarms  # type: ignore[union-attr]
    a5 = gt06.read(msg(LBS_ALARM_A5))
    assert isinstance(a5, gt06.Heartbeat) and a5.attributes["alarm"] == "tamper"


def test_camera_alarm_0x95() -> None:
    m = msg(ALARM_95_SOS)
    pos = gt06.read(m)
    assert isinstance(pos, Position) and pos.alarms == ("sos",) and gt06.reply(m) is not None
    assert pos.time == datetime(2020, 10, 7, 12, 20, 52, tzinfo=UTC)


def test_framer_split_glued_garbage() -> None:
    stream = bytes.fromhex(LOGIN + HEARTBEAT + LONG_INFO + ALARM_VIBRATION)
    for cut in range(len(stream) + 1):
        f = gt06.Framer()
        frames = f.feed(stream[:cut]) + f.feed(stream[cut:])
        assert [gt06.decode(x).protocol for x in frames] == [0x01, 0x13, 0x94, 0x16]
    f = gt06.Framer()
    noisy = b"\x00\x78junk" + bytes.fromhex(LOGIN) + b"\xff\xff" + bytes.fromhex(HEARTBEAT)
    frames = [x for b in noisy for x in f.feed(bytes([b]))]
    assert [gt06.decode(x).protocol for x in frames] == [0x01, 0x13]


def test_framer_rejects_huge_long_packet() -> None:
    f = gt06.Framer(max_frame=256)
    assert f.feed(b"\x79\x79\xff\xff" + b"\x00" * 100) == []
    assert f.oversize == 1


def test_command_replies() -> None:
    # TRACCAR (9e5c458a): 0x15 answers to fuel-cut commands, 0x15 with the SIM's ICCID, 0x21 in UTF-16BE
    cut = (
        "78782d152500000000437574206f666620746865206675656c20737570706c793a2053756363657373210002013b898a0d0a"
    )
    assert gt06.read(msg(cut)) == {"result": "Cut off the fuel supply: Success!"}
    iccid = "7878281520000000003c49434349443a38393838323339303030303039373330323635303e00020d446f260d0a"
    assert gt06.read(msg(iccid)) == {"iccid": "89882390000097302650"}
    utf16 = "797900262100000000020043006f006d006d0061006e00640020006500720072006f0072002100236e850d0a"
    assert gt06.read(msg(utf16)) == {"result": "Command error!"}


def test_0xa2_is_a_position_only_on_lw_4g_units() -> None:
    # TRACCAR (9e5c458a): a GK310's 0xA2 is a Wi-Fi list; read as a GPS block it would be refused (and
    # the unit's packet dead-lettered) — it is answered and left uninterpreted instead
    wifi = (
        "787895a2180b0f0f1d2602dc65000069810000000009569e9648000069810000000009569e3255000069810000000009569e0052"
        "000069810000000009569ec846000069810000000009569e6432000000000000000000000000000000000000000000000000"
        "0000ff06f27cf64f17e13c909a4a53778c3dc83a350fa1b84522976d5ea4854854af976b9ab04cb04e26d703925102a1ce55"
        "0d0a"
    )
    m = msg(wifi)
    net = gt06.read(m)
    assert m.protocol == 0xA2 and isinstance(net, gt06.Network)
    # MCC 0x02dc = 732, MNC 0x65 = 101, then 4-byte LAC and 8-byte cell ids; seven cell slots of which
    # five are used (LAC 0 is an empty slot), a timing advance, then six access points
    assert len(net.cells) == 5 and net.cells[0] == (732, 101, 0x6981, 0x09569E96, -0x48)
    assert net.wifi[0] == ("f2:7c:f6:4f:17:e1", -0x3C) and len(net.wifi) == 6


# TRACCAR (9e5c458a): a 0x70 modular packet — GPS module 0x33 and event module 0x34 = 0x12 (removed)
MODULAR_REMOVED = (
    "797900a87000000001020035000101003300125d7e3a180600d504b598f708814b3a001d1500340006125d7e39dc00001100"
    "0a012e02620000000000000001000803537601000129800002000803102608593397620003000a8901260852293397626600"
    "1800020172002b000114002c00045d7df3c70009000106000a000109002800010d002e00040000f25d002a00011100290004"
    "0000017e0030000a000100b4000a00b402d0000591250d0a"
)


def test_modular_packet_0x70() -> None:
    m = msg(MODULAR_REMOVED)
    pos = gt06.read(m)
    assert isinstance(pos, Position) and pos.alarms == ("removal",) and gt06.reply(m) is not None
    assert pos.time is not None and pos.attributes["event"] == 0x12


# TRACCAR (9e5c458a): 0x22 of an NT20 unit — location source, IMEI and device time before the GPS block,
# a status block with power after the LBS block
NT20_LOCATION = (
    "78783c22010357789648774484180c06142038180c06142038cb03313ee4061fe98300185e09000000000000000046098428"
    "4c000200000000017101d6f35d0d0a"
)


def test_nt_units_0x22_layout() -> None:
    pos = gt06.read(msg(NT20_LOCATION), model="NT20")
    assert isinstance(pos, Position) and -90 <= pos.lat <= 90 and -180 <= pos.lon <= 180
    assert "power_v" in pos.attributes
    with pytest.raises(FrameError, match="out of range"):  # without the model the bytes are misread
        gt06.read(msg(NT20_LOCATION))


# TRACCAR (9e5c458a): 0x34 of an X1 unit — a data/alarm word, then the common GPS block
X1_GPS = (
    "78783c340000000011061809130c0903107d2408488a5800144c00000000000001940b00b1000047ff000000000500018f42"
    "210000000100050003010b69450d0a"
)


def test_x1_position_0x34() -> None:
    pos = gt06.read(msg(X1_GPS))
    assert isinstance(pos, Position) and pos.valid
    assert pos.time == datetime(2017, 6, 24, 9, 19, 12, tzinfo=UTC)
    assert round(pos.lat, 5) == 28.56237 and round(pos.lon, 5) == 77.20652  # 0x03107d24, 0x08488a58 / 1.8e6


def test_0x36_status_or_position() -> None:
    # TRACCAR (9e5c458a): a Jimi 4G unit's status with modules (battery 4.02 V, as traccar asserts) and a
    # VL103's 0x36 starting with a GPS block
    status = gt06.read(msg("787817360005040002003201010018020192006a015f0324aeaf0d0a"))
    assert isinstance(status, gt06.Heartbeat) and status.attributes["battery_v"] == 4.02
    vl = (
        "78783536190c1d0f1724cf026cc9140c367d4000940001cc0025ef0540e88c01000000000064051428000006c3000001453f"
        "9201003477560d0a"
    )
    pos = gt06.read(msg(vl), model="VL103")
    assert (
        isinstance(pos, Position) and pos.valid and pos.time == datetime(2025, 12, 29, 15, 23, 36, tzinfo=UTC)
    )


def test_serial_passthrough_0x9b() -> None:
    # TRACCAR (9e5c458a): an external device's data, printable and not — traccar asserts the same results
    assert gt06.read(msg("797900109b0344373532304136320d0a000f87f00d0a")) == {
        "device_type": 3,
        "result": "D7520A62",
    }
    assert gt06.read(msg("7979000e9b0332382e33a1e60d0a0289be490d0a")) == {
        "device_type": 3,
        "result": "32382e33a1e60d0a",
    }


# TRACCAR (9e5c458a): 0x69 Wi-Fi packets whose third byte counts access points (3 here), with no serial
# and no CRC; and a 0x10 whose length byte (0x12) covers the GPS block only (no serial, no CRC)
WIFI_69 = (
    "787803691604130318491475905BD30E25001E10BBF7635D14759006E626560501CC0028660F213228660F1F2828660EA81E"
    "286610731428660F20140D0A"
)
GPS_10_SHORT_LENGTH = "7878121011091c0b1b2999058508040097a89e0034520d0a"


def test_counted_wifi_and_wrong_length_frames() -> None:
    stream = bytes.fromhex(LOGIN + WIFI_69 + GPS_10_SHORT_LENGTH + HEARTBEAT)
    for cut in range(len(stream) + 1):
        f = gt06.Framer()
        frames = f.feed(stream[:cut]) + f.feed(stream[cut:])
        assert [gt06.decode(x).protocol for x in frames] == [0x01, 0x69, 0x10, 0x13], cut
    m = msg(WIFI_69)
    net = gt06.read(m)
    assert m.counted and isinstance(net, gt06.Network)
    assert net.time == datetime(2016, 4, 13, 3, 18, 49, tzinfo=UTC)  # BCD 16 04 13 03 18 49
    assert net.wifi == (
        ("14:75:90:5b:d3:0e", -0x25),
        ("00:1e:10:bb:f7:63", -0x5D),
        ("14:75:90:06:e6:26", -0x56),
    )
    assert len(net.cells) == 5 and net.cells[0] == (460, 0, 0x2866, 0x0F21, -0x32)
    # answered in its own form: length 0, the type, its time, the stop bits
    assert gt06.reply(m) == bytes.fromhex("78780069160413031849") + b"\r\n"
    g = msg(GPS_10_SHORT_LENGTH)
    pos = gt06.read(g)
    assert not g.length_ok and isinstance(pos, Position) and pos.valid
    assert pos.lat == pytest.approx(51.4469) and pos.lon == pytest.approx(5.521723, abs=1e-5)
    assert pos.time == datetime(2017, 9, 28, 11, 27, 41, tzinfo=UTC)


def test_framer_resyncs_on_garbage_start_bits() -> None:
    # start bits with a length that leads nowhere, then a real frame: the garbage start bits are dropped
    f = gt06.Framer()
    frames = f.feed(b"\x78\x78\x02junk" + bytes.fromhex(HEARTBEAT))
    assert [gt06.decode(x).protocol for x in frames] == [0x13]


def test_vendor_packets_without_a_fix() -> None:
    # TRACCAR (9e5c458a) asserts power 4.05 V on this Jimi 4G 0xF1 device status
    status = msg("79790026f16318c0000001010100020101000301000004010100050201950006010010000100008021af0d0a")
    net = gt06.read(status)
    assert isinstance(net, gt06.Network) and net.attributes["power_v"] == 4.05
    # … 600 steps on a SEEWORLD 0xA3 status block
    seeworld = gt06.read(msg("787818a300000005321e020000000002584f000100060000008f920d0a"))
    assert isinstance(seeworld, gt06.Heartbeat) and seeworld.attributes["steps"] == 600
    # … a position in a command answer (0x21 "Current position!…")
    text = gt06.read(
        msg(
            "7979007121000000000143757272656e7420706f736974696f6e214c61743a4e35342e3733393333322c4c6f6e3a453235"
            "2e3237333237302c436f757273653a3132362e35332c53706565643a302e303030302c4461746554696d653a323031372d"
            "30352d3236202031303a32373a3437000bbee30d0a"
        )
    )
    assert isinstance(text, Position) and (text.lat, text.lon) == (54.739332, 25.27327)
    assert text.time == datetime(2017, 5, 26, 10, 27, 47, tzinfo=UTC) and text.heading_deg == 126.53
    # … an AZ735 extended 0x32: a fix behind the GPS block's own length byte (lat 0x00a87558, south)
    az = gt06.read(
        msg(
            "7979004a321106170c1b180cc900a875580b7ab4f00010350901fe0a007c0009112424007c000912240081004efe2100c5"
            "00100f1200000000000000000000000000000000000000000000bc7c900d0a"
        )
    )
    assert isinstance(az, Position) and az.lat == pytest.approx(-0x00A87558 / 1_800_000)
    assert az.lon == pytest.approx(0x0B7AB4F0 / 1_800_000) and az.attributes["satellites"] == 9
