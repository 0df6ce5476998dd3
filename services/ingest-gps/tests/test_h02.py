"""H02 decoding against captured frames, byte for byte.

Source of every frame: traccar/traccar src/test/java/org/traccar/protocol/H02ProtocolDecoderTest.java
(commit 23b327aac65025eedc1a2fd23eaee5a20674053a) — device captures.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alarmhub_ingest_gps.protocols import h02
from alarmhub_ingest_gps.protocols._common import FrameError

V1 = b"*HQ,4210051415,V1,164549,A,0956.3869,N,08406.7068,W,000.00,000,221215,FFFFFBFF,712,01,0,0,6#"
V1_INVALID = b"*HQ,355488020119695,V1,050418,,2827.61232,N,07703.84822,E,0.00,0,031015,FFFEFBFF#"
V19 = b"*HQ,4209951296,V19,214452,A,5201.0178,N,01830.5029,E,000.00,000,200417,,195.63.13.195,89480610500392633029,BFFFFBFF#"
VP1 = b"*hq,356327080425330,VP1,A,2702.7245,S,15251.9311,E,0.48,0.0000,080917#"
LINK = b"*HQ,1600068860,LINK,112137,20,8,67,0,0,081116,FFFFFBFF#"
BINARY_LONG = "24410600082621532131081504419390060740418306000000fffffbfdff0015060000002c02dc0c000000001f"
BINARY_SHORT = "2441060116601245431311165035313006004318210e000000fffffbffff0024"


def test_v1() -> None:
    # traccar expects 2015-12-22 16:45:49, valid, 9.93978, -84.11178 and status 0xFFFFFBFF
    m = h02.decode(V1)
    assert m.device_id == "4210051415" and m.kind == "V1" and m.position is not None
    p = m.position
    assert p.time == datetime(2015, 12, 22, 16, 45, 49, tzinfo=UTC)
    assert (
        p.valid and p.lat == pytest.approx(9.93978, abs=1e-5) and p.lon == pytest.approx(-84.11178, abs=1e-5)
    )
    assert p.status_bits == 0xFFFFFBFF and p.attributes["acc"] is True and p.attributes["alarms"] == []


def test_v1_without_validity() -> None:
    # traccar expects 2015-10-03 05:04:18, invalid, 28.46021, 77.06414
    p = h02.decode(V1_INVALID).position
    assert p is not None and not p.valid
    assert p.lat == pytest.approx(28.46021, abs=1e-5) and p.lon == pytest.approx(77.06414, abs=1e-5)


def test_variants() -> None:
    v19 = h02.decode(V19).position
    assert v19 is not None and v19.status_bits == 0xBFFFFBFF and v19.lat == pytest.approx(52.01696, abs=1e-5)
    vp1 = h02.decode(VP1)
    assert vp1.device_id == "356327080425330" and vp1.position is not None and vp1.position.time is None
    assert vp1.position.lat == pytest.approx(-27.04541, abs=1e-5)
    link = h02.decode(LINK)
    assert link.kind == "LINK" and link.position is None


def test_binary() -> None:
    # traccar expects 2015-08-31 21:53:21, valid, 4.69898, -74.06971
    m = h02.decode(bytes.fromhex(BINARY_LONG))
    assert m.device_id == "4106000826" and m.position is not None
    p = m.position
    assert p.time == datetime(2015, 8, 31, 21, 53, 21, tzinfo=UTC)
    assert p.lat == pytest.approx(4.69898, abs=1e-5) and p.lon == pytest.approx(-74.06971, abs=1e-5)
    assert p.status_bits == 0xFFFFFBFD and p.attributes["alarms"] == ["sos"]  # bit 1 clear


def test_framer_mixed_stream() -> None:
    stream = V1 + bytes.fromhex(BINARY_SHORT) + b"\r\n" + V19 + bytes.fromhex(BINARY_LONG) + VP1
    for cut in range(0, len(stream) + 1, 7):
        f = h02.Framer()
        frames = f.feed(stream[:cut]) + f.feed(stream[cut:])
        assert [h02.decode(x).kind for x in frames] == ["V1", "binary", "V19", "binary", "VP1"]


def test_garbage_and_bad_frames() -> None:
    f = h02.Framer(max_frame=128)
    assert f.feed(b"hello" + b"*" + b"x" * 300) == []
    assert f.oversize == 1
    with pytest.raises(FrameError):
        h02.decode(b"*HQ,4210051415,V1,164549,A,0999.3869,N,08406.7068,W,000.00,000,221215,FFFFFBFF#")


def test_coordinate_variants() -> None:
    # traccar H02ProtocolDecoderTest (9e5c458a): minutes without the decimal point, and negative
    # degrees and minutes written apart ("-23-29.0095"), which traccar reads as -23.48349, -46.85975
    plain = h02.decode(
        b"*HQ,5905101893,V1,105759,A,37573392,S,145037022,E,000.00,173,280122,FF7FFBFF,,,9059e2c,8232,4#"
    )
    assert plain.position is not None
    assert round(plain.position.lat, 5) == -37.95565 and round(plain.position.lon, 5) == 145.06170
    split = h02.decode(b"*HQ,1451316409,V1,030149,A,-23-29.0095,S,-46-51.5852,W,2.4,065,070315,FFFFFFFF#")
    assert split.position is not None
    assert round(split.position.lat, 5) == -23.48349 and round(split.position.lon, 5) == -46.85975


# traccar H02ProtocolDecoderTest (9e5c458a): the 42-byte binary form with a 15-digit IMEI
BINARY_IMEI = bytes.fromhex(
    "2435248308419329301047591808172627335900074412294E024138FEFFFFFFFF01120064BA73005ECC"
)


def test_binary_with_imei() -> None:
    m = h02.decode(BINARY_IMEI)
    assert m.device_id == "352483084193293" and m.position is not None
    assert m.position.time == datetime(2017, 8, 18, 10, 47, 59, tzinfo=UTC)
    assert (
        round(m.position.lat, 5) == 26.45560 and round(m.position.lon, 5) == 74.68716
    )  # 26°27.3359′ N, 074°41.2294′ E
    text = b"*HQ,4210051415,V1,164549,A,0956.3869,N,08406.7068,W,000.00,000,221215,FFFFFBFF#"
    f = h02.Framer()
    assert f.feed(BINARY_IMEI + text) == [BINARY_IMEI, text]  # the next frame starts at 42
