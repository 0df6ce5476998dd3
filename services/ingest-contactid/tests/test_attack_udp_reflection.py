"""Attack: the DC-09 UDP listener as a reflector (docs/security.md, "DC-09 UDP reflection").

A UDP sender chooses its source address, so every reply may land on a victim. Before: every frame of a
datagram got its own reply (one datagram of 20 glued frames → 20 replies) and frames that could not be
parsed were answered with DUH. Now: one message per datagram, no reply to what cannot be parsed, and the
replies never outweigh what was sent.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest_asyncio
from alarmhub_ingest_contactid.app import ContactIdApp
from alarmhub_ingest_contactid.protocols import dc09
from prometheus_client import CollectorRegistry

from .test_service import settings_for


@pytest_asyncio.fixture
async def receiver(stack: Any, topic_prefix: str) -> Any:
    # no registry: every account is unknown and accepted, so every frame is decided on the fast path in
    # arrival order (the marker's ACK then means every earlier datagram was answered or not)
    app = ContactIdApp(settings_for(stack, topic_prefix, ALARMHUB_DC09_REGISTRY=False), CollectorRegistry())
    await asyncio.wait_for(app.start(), 30)
    try:
        yield app
    finally:
        await app.stop()


class _Victim(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: list[bytes] = []
        self.marker: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.replies.append(data)
        if b"#FFFE" in data and not self.marker.done():
            self.marker.set_result(None)


async def test_udp_reflection_ratio_at_most_one(receiver: ContactIdApp) -> None:
    now = datetime.now(UTC)
    glued = b"".join(dc09.encode("NULL", i, "77AB", "", line="3", timestamp=now) for i in range(20))
    unknown_token = b"".join(dc09.encode_frame(f'"ABC-XYZ"{i:04d}L0#1234[]'.encode()) for i in range(20))
    unreadable = dc09.encode_frame(b"x" * 40)
    attack = [glued] * 5 + [unknown_token] * 5 + [unreadable] * 5
    loop = asyncio.get_running_loop()
    transport, victim = await loop.create_datagram_endpoint(_Victim, remote_addr=("127.0.0.1", receiver.port))
    try:
        for datagram in attack:
            transport.sendto(datagram)
        marker = dc09.encode("NULL", 9999, "FFFE", "", line="3", timestamp=now)
        transport.sendto(marker)
        await asyncio.wait_for(victim.marker, 10)
    finally:
        transport.close()
    replies = victim.replies[:-1]  # the marker's own ACK
    sent = sum(len(d) for d in attack)
    got = sum(len(r) for r in replies)
    # one ACK per glued datagram, nothing for the unparseable ones
    assert len(replies) == 5, [r[:40] for r in replies]
    assert all(dc09.decode_reply(r).token == "ACK" for r in replies)
    assert len(replies) / len(attack) <= 1 and got / sent <= 1
