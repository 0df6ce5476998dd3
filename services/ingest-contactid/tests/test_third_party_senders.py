"""Third-party DC-09 transmitters against the running receiver (real broker, real PostgreSQL registry).

- dc09-spt (PyPI ``my-dc09-spt``, van Ovost Automatisering): its own block builder, AES (it takes
  16- and 32-byte keys only), TCP and UDP transport and reply checker. It pads encrypted blocks with
  random characters from chr(20) to chr(125) — control characters and ``#`` included — which DC-09
  allows (the pad excludes only ``[``, ``]`` and ``|``).
- pysiaalarm (PyPI): its ``SIAEvent.encrypt_content`` (pycryptodome, zero fill) and ``_crc_calc``
  build AES-192 blocks, the key size dc09-spt refuses.

Every message must be ACKed (the sender's own reply check) and published exactly once on
``alarms.raw`` — dc09-spt's UDP path resends when an answer is late, so duplicates would show here.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from alarmhub_events import ALARMS_RAW
from alarmhub_ingest_contactid.app import ContactIdApp
from alarmhub_ingest_contactid.protocols import dc09
from prometheus_client import CollectorRegistry

from .test_service import settings_for

spt = pytest.importorskip("my_dc09_spt.dc09_spt")
dc05 = pytest.importorskip("my_dc09_spt.msg.dc05_msg")
pysia_event = pytest.importorskip("pysiaalarm.event")
pysia = pytest.importorskip("pysiaalarm")

Consume = Callable[..., Awaitable[list[dict[str, Any]]]]
MESSAGES = 200
KEY_192 = b"0123456789ABCDEF01234567"  # pysiaalarm takes its key as 16/24/32 ASCII characters


@pytest_asyncio.fixture
async def senders(stack: Any) -> AsyncIterator[dict[str, Any]]:
    """Four accounts on one fresh line: clear, AES-128, AES-256 (dc09-spt) and AES-192 (pysiaalarm)."""
    line = secrets.randbelow(0xFFF0) + 1
    accounts = {
        "clear": ("3101", None),
        "aes128": ("3102", secrets.token_bytes(16)),
        "aes256": ("3103", secrets.token_bytes(32)),
        "aes192": ("3104", KEY_192),
    }
    conn = await asyncpg.connect(stack.database_url)
    try:
        for acct, key in accounts.values():
            await conn.execute(
                "INSERT INTO accounts (line, account, company, key_hex, encryption_required, "
                "site_name, zones) VALUES ($1, $2, 'Interop Security', $3, $4, 'Interop site', $5::jsonb)",
                f"L{line:X}",
                acct,
                key.hex() if key else None,
                key is not None,
                json.dumps({}),
            )
        yield {"line": line, "accounts": accounts}
    finally:
        await conn.execute("DELETE FROM accounts WHERE line = $1", f"L{line:X}")
        await conn.close()


@pytest_asyncio.fixture
async def receiver(stack: Any, topic_prefix: str, senders: dict[str, Any]) -> AsyncIterator[ContactIdApp]:
    app = ContactIdApp(settings_for(stack, topic_prefix), CollectorRegistry())
    await asyncio.wait_for(app.start(), 30)
    try:
        yield app
    finally:
        await app.stop()


def _send_with_dc09_spt(port: int, line: int, account: str, key: bytes | None, transport: str) -> int:
    """Send MESSAGES burglary alarms (zones 1..MESSAGES) through dc09-spt; return how many it saw ACKed."""
    sender = spt.dc09_spt(account)
    sender.set_path("main", "primary", "127.0.0.1", port, account=account, key=key, line=line, type=transport)
    path = sender.tpaths["main"]["primary"]["path"]
    acked = 0
    for zone in range(1, MESSAGES + 1):
        payload = dc05.dc05_msg.dc05event(account, {"account": account, "code": 130, "zone": zone})
        if sender.transfer_msg(zone, "ADM-CID", payload, path):
            acked += 1
    return acked


def _pysiaalarm_frame(line: int, account: str, seq: int, zone: int, *, bar: bool) -> bytes:
    """An encrypted ADM-CID block whose ciphertext and CRC come from pysiaalarm's own code."""
    event = pysia_event.SIAEvent(sia_account=pysia.SIAAccount(account, KEY_192.decode()))
    stamp = datetime.now(UTC).strftime("_%H:%M:%S,%m-%d-%Y")
    # pysiaalarm fills with "0" in front; with bar=False there is no "|" after the fill at all
    plain = ("|" if bar else "") + f"#{account}|1130 01 {zone:03d}]{stamp}"
    body = f'"*ADM-CID"{seq:04d}L{line:X}#{account}[{event.encrypt_content(plain)}'
    return f"\n{event._crc_calc(body)}{len(body):04X}{body}\r".encode("ascii")


def _send_with_pysiaalarm(port: int, line: int, account: str, transport: str) -> int:
    acked = 0
    for zone in range(1, MESSAGES + 1):
        frame = _pysiaalarm_frame(line, account, zone, zone, bar=zone % 2 == 0)
        if transport == "TCP":
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(frame)
                answer = b""
                while not answer.endswith(b"\r"):
                    chunk = s.recv(1024)
                    if not chunk:
                        break
                    answer += chunk
        else:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(10)
                s.sendto(frame, ("127.0.0.1", port))
                answer, _ = s.recvfrom(1024)
        reply = dc09.decode_reply(answer, KEY_192)
        if reply.token == "ACK" and reply.seq == f"{zone:04d}":
            acked += 1
    return acked


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["TCP", "UDP"])
async def test_third_party_transmitters_are_acked_and_published_once(
    receiver: ContactIdApp,
    senders: dict[str, Any],
    topic_prefix: str,
    consume_topic: Consume,
    transport: str,
) -> None:
    line, accounts = senders["line"], senders["accounts"]
    jobs = [
        asyncio.to_thread(_send_with_dc09_spt, receiver.port, line, acct, key, transport)
        for name, (acct, key) in accounts.items()
        if name != "aes192"
    ]
    jobs.append(
        asyncio.to_thread(_send_with_pysiaalarm, receiver.port, line, accounts["aes192"][0], transport)
    )
    acked = await asyncio.wait_for(asyncio.gather(*jobs), 240)
    assert acked == [MESSAGES] * 4, acked

    total = MESSAGES * 4
    mine = {acct for acct, _ in accounts.values()}
    events = await consume_topic(
        topic_prefix,
        ALARMS_RAW,
        total + 1,  # one more than sent: a duplicate would be read within the timeout
        timeout=8 if transport == "TCP" else 12,
        where=lambda e: e["source"]["account"] in mine and e["source"]["path"] == transport.lower(),
    )
    seen = [(e["source"]["account"], e["zone"]) for e in events]
    expected = {(acct, f"{z:03d}") for acct, _ in accounts.values() for z in range(1, MESSAGES + 1)}
    assert len(seen) == total and set(seen) == expected
    assert {e["kind"] for e in events} == {"burglary"}
    assert all(e["source"]["protocol"] == "dc09-cid" for e in events)
    by_account = {acct: [e for e in events if e["source"]["account"] == acct] for acct in mine}
    assert all(len(v) == MESSAGES for v in by_account.values())
