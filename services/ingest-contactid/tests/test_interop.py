"""Interoperability with an independent DC-09 implementation: pysiaalarm's receiver accepts what our
encoder (the simulator's transmitter) sends, clear and AES, and our reply parser reads its answers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from alarmhub_ingest_contactid.protocols import dc09

pysia = pytest.importorskip("pysiaalarm.aio")

KEY_TEXT = "0123456789ABCDEF"


async def test_pysiaalarm_accepts_our_frames_and_we_read_its_replies() -> None:
    from alarmhub_devstack import free_port

    got: list[object] = []

    async def on_event(event: object) -> None:
        got.append(event)

    port = free_port()
    client = pysia.SIAClient(
        "127.0.0.1",
        port,
        [pysia.SIAAccount("BE0C", KEY_TEXT), pysia.SIAAccount("BE0D", None)],
        function=on_event,
    )
    await client.async_start()
    try:
        cases = [
            (KEY_TEXT.encode(), "BE0C", "ADM-CID", "#BE0C|1130 01 003", "BA"),
            (None, "BE0D", "ADM-CID", "#BE0D|1120 01 004", "PA"),
            (KEY_TEXT.encode(), "BE0C", "SIA-DCS", "#BE0C|Nri1/FA005", "FA"),
            (None, "BE0D", "SIA-DCS", "#BE0D|Nri1/BA006", "BA"),
        ]
        for seq, (key, acct, token, data, _) in enumerate(cases, 1):
            frame = dc09.encode(
                token, seq, acct, data, receiver="1", line="0", timestamp=datetime.now(UTC), key=key
            )
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(frame)
            await writer.drain()
            reply = dc09.decode_reply(await asyncio.wait_for(reader.readuntil(b"\r"), 5), key)
            writer.close()
            assert (reply.token, reply.seq, reply.account, reply.encrypted) == (
                "ACK",
                f"{seq:04d}",
                acct,
                key is not None,
            )
        for _ in range(50):
            if len(got) == len(cases):
                break
            await asyncio.sleep(0.05)
        assert [e.code for e in got] == [c[4] for c in cases]  # type: ignore[attr-defined]
    finally:
        await client.async_stop()
