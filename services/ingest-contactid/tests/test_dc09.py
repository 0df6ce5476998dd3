"""DC-09 framing, parsing, encryption and replies against REAL frames, byte for byte.

Sources of the frames (data only, each noted again beside the frame):

- [CAP] device captures (PROSEC, OPAX, Hikvision communicators) listed in the header comment of an
  open-source Go DC-09 parser (``package protocol``, ``ParseDc09``; code-search file id 2187646037).
- [NODE] a Node.js DC-09 TCP receiver's commented sample frames (code-search file id 32635044335).
- [RUST] fioletoven/dc09, common/src/dc09/message.tests.rs (an independent Rust implementation).
- [PYSIA] eavanvalkenburg/pysiaalarm, tests/test_sia_package_cases.py and tests/test_utils.py
  (key ``AAAAAAAAAAAAAAAA``). Several of its unencrypted cases carry a stale CRC/length; they are used
  for payload decoding and to prove such frames are dropped.

The CRC check value is the CRC-16/ARC catalogue value of ``123456789``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alarmhub_ingest_contactid.protocols import _dc09_codec, dc09
from alarmhub_ingest_contactid.protocols.dc09 import FrameError, Framer


def test_crc16_arc_check_value() -> None:
    assert dc09.crc16(b"123456789") == 0xBB3D


# (frame, token, encrypted, seq, receiver, line, account, data, timestamp)
REAL_CLEAR = [
    # [CAP] PROSEC NULL, line "000"
    (
        b'\nB0970029"NULL"0000L000#0809[]_21:00:01,02-20-2024\r',
        "NULL",
        "0000",
        None,
        "000",
        "0809",
        "",
        datetime(2024, 2, 20, 21, 0, 1, tzinfo=UTC),
    ),
    # [CAP] PROSEC Contact ID periodic test
    (
        b'\nF68B003B"ADM-CID"0028L0#9757[#9757|1602 00 000]_20:59:45,02-20-2024\r',
        "ADM-CID",
        "0028",
        None,
        "0",
        "9757",
        "#9757|1602 00 000",
        datetime(2024, 2, 20, 20, 59, 45, tzinfo=UTC),
    ),
    # [CAP] PROSEC SIA-DCS automatic test, account block without '#'
    (
        b'\nB4330036"SIA-DCS"0442L000#36214[36214|NRP]_00:00:00,02-21-2024\r',
        "SIA-DCS",
        "0442",
        None,
        "000",
        "36214",
        "36214|NRP",
        datetime(2024, 2, 21, 0, 0, 0, tzinfo=UTC),
    ),
    # [CAP] PROSEC SIA-DCS phone line restoral with area modifier
    (
        b'\n3F60003C"SIA-DCS"0001L0#51449[#51449|Nri0000/LR]_21:26:19,12-20-2023\r',
        "SIA-DCS",
        "0001",
        None,
        "0",
        "51449",
        "#51449|Nri0000/LR",
        datetime(2023, 12, 20, 21, 26, 19, tzinfo=UTC),
    ),
    # [CAP] PROSEC opening / burglary cancel
    (
        b'\n7B620035"SIA-DCS"0005L000#3044[3044|NOP1]_00:03:31,12-21-2023\r',
        "SIA-DCS",
        "0005",
        None,
        "000",
        "3044",
        "3044|NOP1",
        datetime(2023, 12, 21, 0, 3, 31, tzinfo=UTC),
    ),
    (
        b'\n85340035"SIA-DCS"0004L000#3044[3044|NBC1]_00:03:31,12-21-2023\r',
        "SIA-DCS",
        "0004",
        None,
        "000",
        "3044",
        "3044|NBC1",
        datetime(2023, 12, 21, 0, 3, 31, tzinfo=UTC),
    ),
    # [CAP] Hikvision with receiver number
    (
        b'\n99820040"ADM-CID"1937R15L1#21401[#21401|1602 00 000]_20:59:59,02-20-2024\r',
        "ADM-CID",
        "1937",
        "15",
        "1",
        "21401",
        "#21401|1602 00 000",
        datetime(2024, 2, 20, 20, 59, 59, tzinfo=UTC),
    ),
    # [NODE] Contact ID with 4-digit receiver and line
    (
        b'\nF92F0043"ADM-CID"0020R7896L7896#3456[#3456|1407 00 001]_17:01:14,07-26-2024\r',
        "ADM-CID",
        "0020",
        "7896",
        "7896",
        "3456",
        "#3456|1407 00 001",
        datetime(2024, 7, 26, 17, 1, 14, tzinfo=UTC),
    ),
    # [NODE] NULL with receiver and line
    (
        b'\nD730002F"NULL"0000R7896L7896#3456[]_17:01:26,07-26-2024\r',
        "NULL",
        "0000",
        "7896",
        "7896",
        "3456",
        "",
        datetime(2024, 7, 26, 17, 1, 26, tzinfo=UTC),
    ),
    # [RUST] hex receiver, no timestamp
    (
        b'\nF4D20029"SIA-DCS"0001RF3L77#1234[#1234|NRR|Atest]\r',
        "SIA-DCS",
        "0001",
        "F3",
        "77",
        "1234",
        "#1234|NRR|Atest",
        None,
    ),
    # [RUST] empty data
    (b'\n96ED0016"SIA-DCS"0001L0#1234[]\r', "SIA-DCS", "0001", None, "0", "1234", "", None),
]


@pytest.mark.parametrize(("frame", "token", "seq", "rcv", "line", "acct", "data", "ts"), REAL_CLEAR)
def test_real_clear_frames(
    frame: bytes, token: str, seq: str, rcv: str | None, line: str, acct: str, data: str, ts: datetime | None
) -> None:
    msg = dc09.decode(frame)
    assert (msg.token, msg.encrypted, msg.seq, msg.receiver, msg.line, msg.account) == (
        token,
        False,
        seq,
        rcv,
        line,
        acct,
    )
    assert msg.data == data
    assert msg.timestamp == ts
    assert msg.extended == ()


def test_line_prefix_is_normalized_for_the_device_id() -> None:
    # [CAP] "L000" and "L0" name the same line
    a = dc09.decode(b'\nB0970029"NULL"0000L000#0809[]_21:00:01,02-20-2024\r')
    assert a.line_id() == "0" and a.device_id() == "L0#0809"
    b = dc09.decode(b'\n99820040"ADM-CID"1937R15L1#21401[#21401|1602 00 000]_20:59:59,02-20-2024\r')
    assert b.device_id() == "L1#21401" and b.receiver_id() == "15"


def test_real_encrypted_null_with_its_key() -> None:
    # [PYSIA] case_null, key "AAAAAAAAAAAAAAAA" (tests/test_utils.py KEY, used as the AES-128 key bytes)
    frame = (
        b'\n76D80055"*NULL"0000R0L0#AAAB[B4BC8B40D0E6D959D6BEA78E88CC0B2155741A3C44FBB96D476A3E557CAD64D9\r'
    )
    msg = dc09.decode(frame, key=b"AAAAAAAAAAAAAAAA")
    assert (msg.token, msg.encrypted, msg.account, msg.receiver, msg.line) == ("NULL", True, "AAAB", "0", "0")
    assert msg.data == ""
    assert msg.timestamp == datetime(2020, 7, 5, 18, 24, 52, tzinfo=UTC)


def test_encrypted_with_wrong_key_is_a_decrypt_error() -> None:
    frame = (
        b'\n76D80055"*NULL"0000R0L0#AAAB[B4BC8B40D0E6D959D6BEA78E88CC0B2155741A3C44FBB96D476A3E557CAD64D9\r'
    )
    with pytest.raises(dc09.DecryptError) as err:
        dc09.decode(frame, key=b"BBBBBBBBBBBBBBBB")
    assert err.value.reply == "nak"
    with pytest.raises(dc09.DecryptError):
        dc09.decode(frame)  # no key at all


@pytest.mark.parametrize(
    "frame",
    [
        # [PYSIA] case_wa: CRC field C416 but the body's CRC is E9A4 (pysiaalarm's own calc_crc agrees)
        b'\nC4160279"SIA-DCS"5268L0#AAA[Nri1/WA000]_08:40:47,07-08-2020\r',
        # [PYSIA] case_cl
        b'\nE5D50078"SIA-DCS"6002L0#AAA[|Nri1/CL501]_14:12:04,09-25-2019\r',
        # [PYSIA] case_encrypted: CRC right, length field 0078 for a 0x75-byte body
        b'\n60AB0078"*SIA-DCS"5994L0#AAA[5AB718E008C616BF16F6468033A11326B0F7546CAB230910BCA10E4DEBA42283C436'
        b"E4F8EFF50931070DDE36D5BB5F0C\r",
        # [PYSIA] case_eventformaterror
        b"\nthis is not a parsable event\r",
    ],
)
def test_bad_crc_or_length_is_dropped(frame: bytes) -> None:
    with pytest.raises(FrameError) as err:
        dc09.decode(frame)
    assert err.value.reply == "none"


def test_crc_and_length_reasons() -> None:
    good = b'\nF68B003B"ADM-CID"0028L0#9757[#9757|1602 00 000]_20:59:45,02-20-2024\r'
    with pytest.raises(FrameError, match="crc"):
        dc09.decode_frame(good.replace(b"1602", b"1603"))
    with pytest.raises(FrameError, match="length"):
        dc09.decode_frame(b"\n" + b"%04X" % dc09.crc16(good[9:-1]) + b"0FFF" + good[9:])


@pytest.mark.parametrize(
    ("body", "data", "xdata", "ts"),
    [
        # [PYSIA] case_xdata_M — bodies only (their CRC fields are stale, see above)
        (
            '"SIA-DCS"6002L0#AAA[|Nri1/CL501][M0026B9E4268B]_14:12:04,09-25-2019',
            "|Nri1/CL501",
            ("M0026B9E4268B",),
            datetime(2019, 9, 25, 14, 12, 4, tzinfo=UTC),
        ),
        # [PYSIA] case_bug (issue #11): SIA text block between carets
        (
            '"SIA-DCS"7960L0#123456[#123456|Nri1CL0^VX FRONTE ^]_22:40:48,04-11-2021',
            "#123456|Nri1CL0^VX FRONTE ^",
            (),
            datetime(2021, 4, 11, 22, 40, 48, tzinfo=UTC),
        ),
        # [PYSIA] case_op: receiver and line 0001, no timestamp
        ('"SIA-DCS"4738R0001L0001[#006969|Nri04/OP001NM]', "#006969|Nri04/OP001NM", (), None),
    ],
)
def test_pysiaalarm_bodies(body: str, data: str, xdata: tuple[str, ...], ts: datetime | None) -> None:
    msg = dc09.decode_message(dc09.decode_header(body.encode()), None)
    assert msg.data == data and msg.extended == xdata and msg.timestamp == ts


def test_pysiaalarm_dc04_is_not_understood() -> None:
    # [PYSIA] case_adm_cid / case_dc04: a 3-digit year is not a DC-09 timestamp -> DUH
    body = b'"ADM-CID"9876R579BDFL789ABC#12345A[#12345A|1110 00 129]_14:12:04,09-25-201'
    with pytest.raises(dc09.UnsupportedError) as err:
        dc09.decode_message(dc09.decode_header(body), None)
    assert err.value.reply == "duh"


def test_receiver_nak_parses() -> None:
    # [RUST] parse_nak_test
    reply = dc09.decode_reply(b'\nE4410025"NAK"0000R0L0A0[]_16:20:01,09-24-2025\r')
    assert reply.token == "NAK" and reply.seq == "0000" and reply.account is None
    assert reply.timestamp == datetime(2025, 9, 24, 16, 20, 1, tzinfo=UTC)


def test_ack_echoes_the_message_ids() -> None:
    # The Go parser's comment pairs this capture with its ACK body: "ACK"0148R0L0#8362[]
    header = dc09.decode_header(b'"ADM-CID"0148R0L0#8362[8362|1602 00 000]_00:00:09,06-11-2022')
    ack = dc09.reply(header, now=datetime(2022, 6, 11, tzinfo=UTC))
    assert ack[9:-1] == b'"ACK"0148R0L0#8362[]'
    assert dc09.decode_frame(ack) == b'"ACK"0148R0L0#8362[]'
    # and one for a NULL: "ACK"0000R8L0#41213[]
    header = dc09.decode_header(b'"NULL"0000R8L0#41213[]_21:00:08,06-10-2022')
    assert dc09.decode_frame(dc09.reply(header, now=datetime(2022, 6, 10, tzinfo=UTC))) == (
        b'"ACK"0000R8L0#41213[]'
    )


def test_nak_is_the_standard_form_with_our_time() -> None:
    nak = dc09.reply_nak(now=datetime(2025, 9, 24, 16, 20, 1, tzinfo=UTC))
    # byte-identical to the NAK the Rust implementation's test parses
    assert nak == b'\nE4410025"NAK"0000R0L0A0[]_16:20:01,09-24-2025\r'


def test_duh_echoes_ids() -> None:
    header = dc09.decode_header(b'"XYZ-ABC"0042R1L2#1234[]')
    assert dc09.decode_frame(dc09.reply_duh(header)) == b'"DUH"0042R1L2#1234[]'


def test_encrypted_ack_decrypts_with_the_account_key() -> None:
    key = bytes.fromhex("00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF")  # AES-256
    frame = dc09.encode(
        "ADM-CID",
        7,
        "1234",
        "#1234|1120 01 001",
        line="1",
        timestamp=datetime(2026, 11, 25, 8, 0, tzinfo=UTC),
        key=key,
    )
    msg = dc09.decode(frame, key)
    now = datetime(2026, 11, 25, 8, 0, 3, tzinfo=UTC)
    ack = dc09.reply(msg, now=now, key=key)
    assert ack.startswith(b"\n") and b'"*ACK"0007L1#1234[' in ack
    reply = dc09.decode_reply(ack, key)
    assert (reply.token, reply.encrypted, reply.seq, reply.account, reply.timestamp) == (
        "ACK",
        True,
        "0007",
        "1234",
        now,
    )


@pytest.mark.parametrize("key_len", [16, 24, 32])
def test_encryption_roundtrip_all_key_sizes(key_len: int) -> None:
    key = bytes(range(key_len))
    ts = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    frame = dc09.encode(
        "SIA-DCS",
        9999,
        "ABC123",
        "#ABC123|Nri1/BA01",
        receiver="12",
        line="3",
        timestamp=ts,
        key=key,
        extended=("X123E456W0.5",),
    )
    msg = dc09.decode(frame, key)
    assert (msg.token, msg.encrypted, msg.data, msg.extended, msg.timestamp) == (
        "SIA-DCS",
        True,
        "#ABC123|Nri1/BA01",
        ("X123E456W0.5",),
        ts,
    )
    hex_part = dc09.decode_frame(frame).split(b"[", 1)[1]
    assert len(hex_part) % 32 == 0


def test_decrypt_accepts_zero_padding_without_bar() -> None:
    # pysiaalarm's test client pads with "0" and no '|' (tests/test_utils.py _encrypt_content)
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    plain = b"0000|Nri1/RP000]_16:04:02,07-09-2020"
    plain = b"0" * (-len(plain) % 16) + plain
    enc = Cipher(algorithms.AES(b"A" * 16), modes.CBC(bytes(16))).encryptor()
    hex_ = (enc.update(plain) + enc.finalize()).hex().upper()
    assert _dc09_codec.decrypt_block(hex_, b"A" * 16) == "Nri1/RP000]_16:04:02,07-09-2020"


# ------------------------------------------------------------------------------------------- framer

STREAM_FRAMES = [f for f, *_ in REAL_CLEAR[:5]]


def test_framer_glued_frames_in_one_read() -> None:
    framer = Framer()
    assert framer.feed(b"".join(STREAM_FRAMES)) == STREAM_FRAMES
    assert framer.garbage == 0 and framer.pending == 0


def test_framer_split_at_every_offset() -> None:
    stream = b"".join(STREAM_FRAMES)
    for cut in range(len(stream) + 1):
        framer = Framer()
        out = framer.feed(stream[:cut]) + framer.feed(stream[cut:])
        assert out == STREAM_FRAMES, cut


def test_framer_byte_by_byte() -> None:
    framer = Framer()
    out: list[bytes] = []
    for b in b"".join(STREAM_FRAMES):
        out += framer.feed(bytes([b]))
    assert out == STREAM_FRAMES


def test_framer_skips_garbage() -> None:
    framer = Framer()
    noise = b"GET / HTTP/1.1\r\n\x00\xff\xfe"
    out = framer.feed(noise + STREAM_FRAMES[0] + b"\x00junk" + STREAM_FRAMES[1] + b"\n\n\r")
    assert out[:2] == STREAM_FRAMES[:2]
    assert framer.garbage > 0
    # the trailing "\n\r" is framed but fails the frame check
    for extra in out[2:]:
        with pytest.raises(FrameError):
            dc09.decode_frame(extra)


def test_framer_caps_frame_size() -> None:
    framer = Framer(max_frame=64)
    assert framer.feed(b"\n" + b"A" * 100) == []
    assert framer.oversized == 1 and framer.pending == 0
    assert framer.feed(STREAM_FRAMES[0]) == [STREAM_FRAMES[0]]


def test_framer_lf_restarts_a_frame() -> None:
    framer = Framer()
    assert framer.feed(b"\nB097half-a-frame" + STREAM_FRAMES[0]) == [STREAM_FRAMES[0]]


def test_encrypted_ack_made_by_pysiaalarm() -> None:
    # [PYSIA-LIVE] pysiaalarm 3.2.2's receiver (SIAAccount("BE0C", "0123456789ABCDEF")) answering an
    # encrypted ADM-CID, captured byte for byte on 2026-11-25; it pads with "0" and no '|'.
    frame = (
        b'\n7EF20054"*ACK"0005R1L0#BE0C[A4FA9120BD2ED9578AF333CC09CDBB3D2959ACC6051CF4E135083DBA19824416\r'
    )
    reply = dc09.decode_reply(frame, b"0123456789ABCDEF")
    assert (reply.token, reply.encrypted, reply.seq, reply.receiver, reply.line, reply.account) == (
        "ACK",
        True,
        "0005",
        "1",
        "0",
        "BE0C",
    )
    assert reply.timestamp == datetime(2026, 11, 25, 10, 14, 42, tzinfo=UTC)


def _encrypt_raw(plain: bytes, key: bytes) -> str:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    enc = Cipher(algorithms.AES(key), modes.CBC(bytes(16))).encryptor()
    return (enc.update(plain) + enc.finalize()).hex().upper()


@pytest.mark.parametrize(
    "pad",
    [
        b"\x14\x15\x1f#}",  # dc09-spt's alphabet: chr(20)..chr(125) without [ ] |, control characters too
        b"#1234",  # a pad that looks like an account block
        b"\x00\x7f ~!",
        b"",
    ],
)
def test_decrypt_judges_structure_not_printability(pad: bytes) -> None:
    key = b"K" * 32
    data = b"|#1234|1130 01 003]_16:04:02,07-09-2020"
    filler = b"\x1e" * ((-len(pad + data)) % 16)
    hex_ = _encrypt_raw(filler + pad + data, key)
    assert _dc09_codec.decrypt_block(hex_, key, "1234") == "#1234|1130 01 003]_16:04:02,07-09-2020"


def test_decrypt_reads_a_no_bar_pad_before_the_account_block() -> None:
    key = b"K" * 24
    plain = b"#1234|Nri1/BA01]_16:04:02,07-09-2020"
    hex_ = _encrypt_raw(b"0" * (-len(plain) % 16) + plain, key)
    assert _dc09_codec.decrypt_block(hex_, key, "1234") == plain.decode()


def test_decrypt_with_wrong_key_is_wrong_key() -> None:
    plain = b"abc|#1234|1130 01 003]_16:04:02,07-09-2020"
    hex_ = _encrypt_raw(b"x" * (-len(plain) % 16) + plain, b"A" * 16)
    with pytest.raises(dc09.DecryptError) as err:
        _dc09_codec.decrypt_block(hex_, b"B" * 16, "1234")
    assert err.value.reason == "wrong_key" and err.value.reply == "nak"
