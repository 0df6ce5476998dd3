"""Any byte string gets a defined reply (ACK, NAK, DUH) or none, and never an exception out of the
handler — in the pure session and over a real TCP connection to the running receiver."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from alarmhub_ingest_contactid.protocols import dc09
from alarmhub_ingest_contactid.session import Account, Dc09Session, SessionConfig
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .test_dc09 import REAL_CLEAR
from .test_service import service  # noqa: F401  (fixture)

NOW = datetime(2024, 2, 20, 21, 0, 5, tzinfo=UTC)
KEY = b"AAAAAAAAAAAAAAAA"
ACCOUNTS = {("0", "AAAB"): Account("0", "AAAB", key=KEY), ("0", "9757"): Account("0", "9757", key=KEY)}
REAL = [f for f, *_ in REAL_CLEAR] + [
    b'\n76D80055"*NULL"0000R0L0#AAAB[B4BC8B40D0E6D959D6BEA78E88CC0B2155741A3C44FBB96D476A3E557CAD64D9\r'
]

printable = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=120)


@st.composite
def mutated_real(draw: st.DrawFn) -> bytes:
    frame = bytearray(draw(st.sampled_from(REAL)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete"]))
        i = draw(st.integers(0, len(frame) - 1))
        if op == "flip":
            frame[i] = draw(st.integers(0, 255))
        elif op == "insert":
            frame.insert(i, draw(st.integers(0, 255)))
        elif len(frame) > 2:
            del frame[i]
    return bytes(frame)


@st.composite
def crc_valid_body(draw: st.DrawFn) -> bytes:
    """Random bodies with a correct CRC and length, so they reach the parser behind the CRC gate."""
    token = draw(st.sampled_from(['"ADM-CID"', '"SIA-DCS"', '"NULL"', '"*ADM-CID"', '"*NULL"', '"XX"', ""]))
    head = draw(st.sampled_from(["0001L0#9757[", "0000R0L0#AAAB[", "12R1L#1[", ""]))
    return dc09.encode_frame((token + head + draw(printable)).encode())


any_input = st.one_of(st.binary(max_size=300), mutated_real(), crc_valid_body())


def check_reply(reply: bytes | None) -> None:
    if reply is None:
        return
    parsed = dc09.decode_reply(reply, KEY) if b'"*' in reply else dc09.decode_reply(reply)
    assert parsed.token in ("ACK", "NAK", "DUH")


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=any_input)
def test_session_never_raises(data: bytes) -> None:
    session = Dc09Session(SessionConfig(check_clear_timestamps=False), ACCOUNTS)
    outcome = session.handle(data, now=NOW, peer="127.0.0.1:1")
    assert outcome.result in ("ack", "nak", "duh", "dropped")
    check_reply(outcome.reply)


@settings(max_examples=300, deadline=None)
@given(chunks=st.lists(any_input, max_size=6), cut=st.integers(0, 2000))
def test_framer_and_session_on_streams(chunks: list[bytes], cut: int) -> None:
    framer = dc09.Framer(max_frame=512)
    session = Dc09Session(SessionConfig(check_clear_timestamps=False), ACCOUNTS)
    stream = b"".join(chunks)
    for frame in framer.feed(stream[:cut]) + framer.feed(stream[cut:]):
        check_reply(session.handle(frame, now=NOW).reply)


async def test_fuzzed_tcp_input_never_breaks_the_listener(service) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """Garbage over real TCP connections; afterwards a real frame on a new connection is still ACKed."""
    samples: list[bytes] = []

    @settings(max_examples=40, deadline=None, database=None)
    @given(data=any_input)
    def collect(data: bytes) -> None:
        samples.append(data)

    collect()
    for data in samples:
        reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
        writer.write(data)
        await writer.drain()
        try:
            reply = await asyncio.wait_for(reader.read(4096), 0.3)
        except TimeoutError:
            reply = b""
        writer.close()
        for frame in dc09.Framer().feed(reply):
            assert dc09.decode_reply(frame).token in ("ACK", "NAK", "DUH")
    null = dc09.encode("NULL", 0, "1234", "", line="1", timestamp=datetime.now(UTC))
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    writer.write(null)
    await writer.drain()
    assert dc09.decode_reply(await asyncio.wait_for(reader.readuntil(b"\r"), 10)).token == "ACK"
    writer.close()
