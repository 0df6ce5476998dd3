"""GT06 and H02 sessions carry cut-off commands and turn the terminals' answers into command results.

Frames (hex/text from the public Traccar test suite, Apache-2.0, used as data, not code):
- GT06 login of 864717003283581, ``78780D0108…``: Gt06ProtocolDecoderTest;
- GT06 0x15 ``Cut off the fuel supply: Success!`` (server flag 0) and 0x21 UTF-16BE ``Command error!``:
  Gt06ProtocolDecoderTest (commit 9e5c458a, the same vectors as test_gt06.py);
- H02 ``*TH,2020916012,V1,…``, ``V4,S20,DONE,130305,…``, ``V4,S20,ERROR,130305,…``, ``V4,S14,…``,
  ``V4,S1,OK,…``, ``V4,S17,…``: H02ProtocolDecoderTest (commit 23b327aa).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alarmhub_ingest_gps.protocols import commands_cutoff as co
from alarmhub_ingest_gps.protocols import gt06, h02
from alarmhub_ingest_gps.sessions import Gt06Session, H02Session, SessionConfig

NOW = datetime(2026, 11, 25, 13, 3, 5, tzinfo=UTC)
CFG = SessionConfig()

GT06_LOGIN = bytes.fromhex("78780D01086471700328358100093F040D0A")
GT06_CUT_OK = bytes.fromhex(
    "78782d152500000000437574206f666620746865206675656c20737570706c793a2053756363657373210002013b898a0d0a"
)
GT06_ERROR = bytes.fromhex(
    "797900262100000000020043006f006d006d0061006e00640020006500720072006f0072002100236e850d0a"
)

H02_V1 = b"*TH,2020916012,V1,050316,A,2212.8745,N,11346.6574,E,14.28,028,220902,FFFFFBFF#"
H02_DONE = b"*TH,2020916012,V4,S20,DONE,130305,050316,A,2212.8745,N,11346.6574,E,14.28,028,220902,F7FFFBFF#"
H02_ERROR = b"*TH,2020916012,V4,S20,ERROR,130305,050316,A,2212.8745,N,11346.6574,E,14.28,028,220902,FFFFFBFF#"


def gt06_session() -> Gt06Session:
    s = Gt06Session({}, CFG)
    s.feed(GT06_LOGIN, NOW)
    assert s.authenticated and s.device_id == "864717003283581"
    return s


def test_gt06_cutoff_is_an_online_command_with_the_serial_as_server_flag() -> None:
    s = gt06_session()
    serial, frame = s.command("cutoff", spec=co.MODELS["GT06N"])
    msg = gt06.decode(frame)
    assert msg.crc_ok and msg.protocol == 0x80 and msg.serial == serial
    assert msg.content[0] == 4 + len(b"DYD,000000#") and int.from_bytes(msg.content[1:5], "big") == serial
    assert msg.content[5:] == b"DYD,000000#"
    _, restore = s.command("restore", spec=co.MODELS["GT06"])
    assert gt06.decode(restore).content[5:] == b"Relay,0#"


def test_gt06_success_text_answers_the_command() -> None:
    s = gt06_session()
    serial, _ = s.command("cutoff", spec=co.MODELS["GT06N"])
    out = s.feed(GT06_CUT_OK, NOW)  # flag 0 echoed (Traccar sends 0): the oldest waiting command
    [result] = out.commands
    assert (result.device_id, result.serial, result.command, result.result) == (s.device_id, serial, 0x80, 0)
    assert result.text == "Cut off the fuel supply: Success!"
    assert not s.pending and not out.reply  # a 0x15 is not acknowledged
    assert not s.feed(GT06_CUT_OK, NOW).commands  # nothing waits: an unsolicited text answers nothing


def test_gt06_error_text_is_a_refusal_and_the_flag_picks_the_command() -> None:
    s = gt06_session()
    first, _ = s.command("cutoff", spec=co.MODELS["GT06"])
    second, _ = s.command("restore", spec=co.MODELS["GT06"])
    # the Traccar 0x21 answer with the second command's flag in place of its 0
    answer = bytearray(gt06.decode(GT06_ERROR).content)
    answer[0:4] = second.to_bytes(4, "big")
    out = s.feed(gt06.encode(0x21, bytes(answer), 0x24, long=True), NOW)
    [result] = out.commands
    assert result.serial == second and result.result == 1 and result.text == "Command error!"
    assert list(s.pending) == [first]


def test_gt06_refuses_other_commands_and_unknown_terminals() -> None:
    with pytest.raises(RuntimeError):
        Gt06Session({}, CFG).command("cutoff", spec=co.MODELS["GT06"])
    with pytest.raises(ValueError):
        gt06_session().command("track")


# the WHERE# answers of the Concox GPS vehicle tracker user manual, §7.1.1 (manualshelf.com, concox
# gps-vehicle-tracker user manual english, page 9): the last fix as text, or "No data!" without one
WHERE_FIX = "Lat:N22.571285,Lon:E113.877115,Course:42.20,Speed:0.0740,DateTime:10-11-23 22:28:51"


def _text_answer(flag: int, text: str) -> bytes:
    words = text.encode()
    return gt06.encode(0x15, bytes([4 + len(words)]) + flag.to_bytes(4, "big") + words + b"\x00\x02", 9)


def test_gt06_position_now_is_where_answered_by_the_fix_text() -> None:
    s = gt06_session()
    serial, frame = s.command("query_position")
    assert gt06.decode(frame).content[5:] == b"WHERE#"
    out = s.feed(_text_answer(serial, WHERE_FIX), NOW)
    [result] = out.commands
    assert result.serial == serial and result.result == 0 and result.position is not None
    assert result.position.lat == pytest.approx(22.571285) and result.position.lon == pytest.approx(
        113.877115
    )
    assert result.position.time == datetime(
        2010, 11, 23, 22, 28, 51, tzinfo=UTC
    )  # the gateway's GT06 zone: 0
    assert any(topic.endswith("telemetry.gps") for topic, _ in out.publish)  # and it is a fix like any other
    serial, _ = s.command("query_position")
    [none] = s.feed(_text_answer(serial, "No data!"), NOW).commands
    assert none.result == 1 and none.text == "No data!" and none.position is None


def h02_session() -> H02Session:
    s = H02Session({}, CFG)
    s.feed(H02_V1, NOW)
    assert s.authenticated and s.device_id == "2020916012"
    return s


def test_h02_cutoff_is_s20_stamped_and_done_answers_it() -> None:
    s = h02_session()
    serial, frame = s.command("cutoff", now=NOW, spec=co.MODELS["H02"])
    assert frame == b"*HQ,2020916012,S20,130305,1,1#"
    out = s.feed(H02_DONE, NOW)
    [result] = out.commands
    assert (result.serial, result.command, result.result, result.text) == (serial, "S20", 0, "DONE")
    assert result.position is not None and result.position.valid
    assert any(topic.endswith("telemetry.gps") for topic, _ in out.publish)  # the V4's fix is a fix
    assert not s.pending


def test_h02_error_is_a_refusal_and_stamps_never_collide() -> None:
    s = h02_session()
    first, f1 = s.command("cutoff", now=NOW, spec=co.MODELS["H02"])
    second, f2 = s.command("restore", now=NOW, spec=co.MODELS["H02"])
    assert f1 == b"*HQ,2020916012,S20,130305,1,1#" and f2 == b"*HQ,2020916012,S20,130306,1,0#"
    [result] = s.feed(H02_ERROR, NOW).commands
    assert result.serial == first and result.result == 1 and result.text == "ERROR"
    # a V4 echoing a stamp nobody waits for answers the oldest S20 still waiting
    [late] = s.feed(H02_DONE, NOW).commands
    assert late.serial == second and late.result == 0
    assert not s.feed(H02_DONE, NOW).commands  # and then nothing is waiting


def test_h02_v4_answers_of_other_commands() -> None:
    def answer(text: bytes) -> h02.CommandAnswer | None:
        return h02.command_answer(h02.decode(text))

    tail = b"050316,A,2212.8745,N,11346.6574,E,14.28,028,220902,FFFFFBFF#"
    assert answer(b"*TH,2020916012,V4,S17,130305," + tail) == h02.CommandAnswer("S17", "", "130305")
    assert answer(b"*TH,2020916012,V4,S14,100,10,1,3,130305," + tail) == h02.CommandAnswer(
        "S14", "", "130305"
    )
    assert answer(b"*TH,2020916012,V4,S1,OK,pass_word,130305," + tail) == h02.CommandAnswer(
        "S1", "OK", "130305"
    )
    assert answer(H02_V1) is None


def test_refusal_words() -> None:
    assert not co.refused("Cut off the fuel supply: Success!") and not co.refused("DONE")
    assert co.refused("Command error!") and co.refused("ERROR") and co.refused("Speed Limit, failed")
