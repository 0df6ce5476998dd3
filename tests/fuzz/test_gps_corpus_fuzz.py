"""Property-based fuzzing of every GPS decoder and session, seeded with the conformance corpus.

The seeds are the real frames of the conformance corpus's GPS vectors (``tests/conformance/vectors*/
{jt808,gt06,h02,jt809}``: traccar's, SmallChi's and go-jt808's test suites). Hypothesis mutates them — bytes flipped, inserted and cut, two frames spliced,
streams split at arbitrary offsets — and feeds them to

- the pure decoders, which may refuse a frame only with ``FrameError`` (the peer's fault); any other
  exception is a bug on our side;
- the sans-IO sessions (JT/T 808, GT06, H02 and the JT/T 809 main link after its login), which must
  answer any byte stream with replies, events or a close, never an exception.

The atheris harness (``atheris_sessions.py``) runs the same targets coverage-guided from the same seeds.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alarmhub_ingest_gps.jt809 import Jt809LinkSession, PlatformDirectory, PlatformRecord
from alarmhub_ingest_gps.protocols import FrameError, gt06, h02, jt808
from alarmhub_ingest_gps.protocols import jt809 as p809
from alarmhub_ingest_gps.sessions import Gt06Session, H02Session, Jt808Session, SessionConfig
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CONFORMANCE = Path(__file__).resolve().parents[1] / "conformance"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def seeds(protocol: str) -> list[bytes]:
    out: list[bytes] = []
    for path in sorted(CONFORMANCE.glob(f"vectors*/{protocol}/*.json")):
        for v in json.loads(path.read_text(encoding="utf-8"))["vectors"]:
            out.append(bytes.fromhex(v["hex"]) if "hex" in v else v["text"].encode())
    return out


SEEDS = {name: seeds(name) for name in ("jt808", "gt06", "h02", "jt809")}


def test_every_protocol_has_seeds() -> None:
    assert all(len(s) >= 30 for s in SEEDS.values()), {k: len(v) for k, v in SEEDS.items()}


def mutated(protocol: str) -> st.SearchStrategy[bytes]:
    base = st.sampled_from(SEEDS[protocol])

    def flip(t: tuple[bytes, list[tuple[int, int]]]) -> bytes:
        data = bytearray(t[0])
        for at, value in t[1]:
            if data:
                data[at % len(data)] = value
        return bytes(data)

    def insert(t: tuple[bytes, int, bytes]) -> bytes:
        at = t[1] % (len(t[0]) + 1)
        return t[0][:at] + t[2] + t[0][at:]

    def cut(t: tuple[bytes, int]) -> bytes:
        return t[0][: t[1] % (len(t[0]) + 1)]

    def splice(t: tuple[bytes, bytes, int]) -> bytes:
        at = t[2] % (len(t[0]) + 1)
        return t[0][:at] + t[1][at:]

    byte = st.integers(0, 255)
    return st.one_of(
        base,
        st.tuples(base, st.lists(st.tuples(st.integers(0, 4096), byte), min_size=1, max_size=6)).map(flip),
        st.tuples(base, st.integers(0, 4096), st.binary(min_size=1, max_size=8)).map(insert),
        st.tuples(base, st.integers(0, 4096)).map(cut),
        st.tuples(base, base, st.integers(0, 4096)).map(splice),
    )


FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------------------------ decoders


def decode_jt808(frame: bytes) -> Any:
    msg = jt808.decode(frame)
    h, body = msg.header, msg.body
    if h.msg_id == jt808.T_LOCATION:
        return jt808.decode_location(body, model="JC371")
    if h.msg_id == jt808.T_BATCH:
        return jt808.decode_batch(body)
    if h.msg_id == jt808.T_POSITION_REPLY:
        return jt808.decode_position_reply(body)
    if h.msg_id == jt808.T_REGISTER:
        return jt808.decode_registration(body, is_2019=h.is_2019)
    if h.msg_id == jt808.T_AUTH:
        return jt808.decode_auth(body, is_2019=h.is_2019)
    if h.msg_id == jt808.T_GENERAL_RESPONSE:
        return jt808.decode_general_response(body)
    return msg


def decode_gt06(frame: bytes) -> Any:
    msg = gt06.decode(frame)
    return gt06.read(msg), gt06.read(msg, model="LW4G-4B"), gt06.read(msg, model="G18")


def decode_h02(frame: bytes) -> Any:
    return h02.decode(frame)


#: the JT/T 809 sub-types read (positions, backfill, alarm); the others are kept as data by the session too
READ_809 = (p809.UP_EXG_MSG_REAL_LOCATION, p809.UP_EXG_MSG_HISTORY_LOCATION, p809.UP_WARN_MSG_ADPT_INFO)


def decode_jt809(frame: bytes) -> Any:
    payload = frame[1:-1] if frame[:1] == b"\x5b" else frame
    out = []
    for edition in (p809.Edition.V2011, p809.Edition.V2019):
        fr = p809.decode(payload, edition=edition, cipher=p809.Cipher(30000000, 20000000, 20000000))
        if fr.msg_id == p809.UP_CONNECT_REQ:
            out.append(p809.read(fr, edition=edition))
        elif fr.msg_id in (p809.UP_EXG_MSG, p809.UP_WARN_MSG):
            vm = p809.read(fr, edition=edition)
            if vm.sub_type in READ_809:
                out.append(p809.read(vm, edition=edition))
    return out


DECODERS = {"jt808": decode_jt808, "gt06": decode_gt06, "h02": decode_h02, "jt809": decode_jt809}


def only_frame_errors(protocol: str, frame: bytes) -> None:
    try:
        DECODERS[protocol](frame)
    except FrameError:
        pass  # the peer's fault, refused with a reason


@pytest.mark.parametrize("protocol", sorted(DECODERS))
def test_seeds_decode_or_are_refused_with_a_reason(protocol: str) -> None:
    for frame in SEEDS[protocol]:
        only_frame_errors(protocol, frame)


@FUZZ
@given(mutated("jt808"))
def test_jt808_decoders_fuzzed(frame: bytes) -> None:
    only_frame_errors("jt808", frame)


@FUZZ
@given(mutated("gt06"))
def test_gt06_decoders_fuzzed(frame: bytes) -> None:
    only_frame_errors("gt06", frame)


@FUZZ
@given(mutated("h02"))
def test_h02_decoders_fuzzed(frame: bytes) -> None:
    only_frame_errors("h02", frame)


@FUZZ
@given(mutated("jt809"))
def test_jt809_decoders_fuzzed(frame: bytes) -> None:
    only_frame_errors("jt809", frame)


# ------------------------------------------------------------------------------------ sessions

CFG = SessionConfig()
SESSIONS = {"jt808": Jt808Session, "gt06": Gt06Session, "h02": H02Session}


def stream(protocol: str) -> st.SearchStrategy[tuple[bytes, list[int]]]:
    """A stream of mutated frames glued together and the offsets to split it at."""
    return st.tuples(
        st.lists(mutated(protocol), min_size=1, max_size=6).map(b"".join),
        st.lists(st.integers(1, 64), max_size=8),
    )


def chunks(data: bytes, sizes: list[int]) -> list[bytes]:
    out, at = [], 0
    for size in sizes:
        out.append(data[at : at + size])
        at += size
    out.append(data[at:])
    return out


def feed_tracker(protocol: str, data: bytes, sizes: list[int]) -> None:
    session = SESSIONS[protocol]({}, CFG, peer="127.0.0.1:1")
    for chunk in chunks(data, sizes):
        session.feed(chunk, NOW)
        if session.closed:
            break


@FUZZ
@given(stream("jt808"))
def test_jt808_session_fuzzed(s: tuple[bytes, list[int]]) -> None:
    feed_tracker("jt808", *s)


@FUZZ
@given(stream("gt06"))
def test_gt06_session_fuzzed(s: tuple[bytes, list[int]]) -> None:
    feed_tracker("gt06", *s)


@FUZZ
@given(stream("h02"))
def test_h02_session_fuzzed(s: tuple[bytes, list[int]]) -> None:
    feed_tracker("h02", *s)


# SmallChi/JT809 JT809_0x1001PackageTest.cs: the login of user 20180920 (2011 header)
LOGIN_809 = bytes.fromhex(
    "5B000000480000008510010133EFB8010000000000270F0133EFB832303138303932303132372E302E302E31"
    "000000000000000000000000000000000000000000000003296A915D"
)
PLATFORM = PlatformRecord(user_id=20180920, password="20180920", gnss_center_id=20180920, name="fuzz")


@FUZZ
@given(stream("jt809"))
def test_jt809_link_session_fuzzed(s: tuple[bytes, list[int]]) -> None:
    session = Jt809LinkSession(PlatformDirectory([PLATFORM]), peer="127.0.0.1:1")
    session.feed(LOGIN_809, NOW)
    for chunk in chunks(*s):
        session.feed(chunk, NOW)
        if session.closed:
            break
