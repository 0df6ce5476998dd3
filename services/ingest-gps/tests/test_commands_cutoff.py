"""Cut fuel/power: the encoders against third-party vectors (the gateway's endpoint: test_gps_service.py).

Vectors (hex/text from the public Traccar test suite, Apache-2.0, used as data):
- JT/T 808 0x8105 word 0xF0 to terminal 0b3a73ce2ff2, serial 0: Jt808ProtocolEncoderTest engine stop;
- GT06 0x80 ``Relay,1#`` with serial 0: Gt06ProtocolEncoderTest engine stop;
- H02 ``*HQ,123456789012345,S20,010203,1,1#`` / ``…,1,0#``: H02ProtocolEncoderTest engine stop/resume.
The 0x8500 layouts follow JT/T 808-2011 §8.56 (control-flag byte) and -2019 (control-type list).
"""

from __future__ import annotations

from datetime import datetime

import pytest
from alarmhub_ingest_gps.protocols import commands_cutoff as co
from alarmhub_ingest_gps.protocols import gt06, jt808


def test_jt808_8105_vendor_word_matches_the_vector() -> None:
    mid, frame = co.encode_jt808(co.MODELS["JT808"], "0b3a73ce2ff2", 0, cut=True)
    assert mid == 0x8105 and frame == bytes.fromhex("7e810500010b3a73ce2ff20000f0247e")
    _, restore = co.encode_jt808(co.MODELS["JT808"], "0b3a73ce2ff2", 0, cut=False)
    assert jt808.decode(restore[1:-1]).body == b"\xf1"


def test_gt06_relay_matches_the_vector() -> None:
    frame = co.encode_gt06(co.MODELS["GT06"], 0, cut=True)
    assert frame == bytes.fromhex("787812800c0000000052656c61792c312300009dee0d0a")
    msg = gt06.decode(co.encode_gt06(co.MODELS["GT06N"], 7, cut=False, password="654321"))
    assert msg.crc_ok and msg.protocol == 0x80 and msg.serial == 7
    assert msg.content[5:] == b"HFYD,654321#"


def test_h02_s20_matches_the_vectors() -> None:
    at = datetime(2026, 1, 1, 1, 2, 3)
    assert (
        co.encode_h02(co.MODELS["H02"], "123456789012345", at, cut=True)
        == b"*HQ,123456789012345,S20,010203,1,1#"
    )
    assert (
        co.encode_h02(co.MODELS["H02"], "123456789012345", at, cut=False)
        == b"*HQ,123456789012345,S20,010203,1,0#"
    )


def test_jt808_8500_both_editions() -> None:
    spec = co.CutoffModel("jt808", "jt808-8500", 1, 0xF001, "test row")
    mid, f2011 = co.encode_jt808(spec, "013900000001", 5, cut=True)
    m = jt808.decode(f2011[1:-1])
    assert mid == 0x8500 and m.header.msg_id == 0x8500 and m.body == b"\x02"
    assert jt808.decode(co.encode_jt808(spec, "013900000001", 6, cut=False)[1][1:-1]).body == b"\x00"
    _, f2019 = co.encode_jt808(spec, "013900000001", 7, cut=True, version=1)
    m = jt808.decode(f2019[1:-1])
    assert m.header.is_2019 and m.body == bytes.fromhex("0001f00101")


def test_unknown_or_other_protocol_models_have_no_cutoff() -> None:
    assert co.lookup("gt06", "gt06") is co.MODELS["GT06"]
    assert co.lookup("GT06", "jt808") is None
    assert co.lookup("ACME-1", "jt808") is None and co.lookup(None, "jt808") is None
    with pytest.raises(ValueError):
        co.encode_gt06(co.MODELS["H02"], 1, cut=True)
