"""Attack: replaying captured DC-09 frames (docs/security.md, "DC-09 replay").

Before: a clear frame without a timestamp was only remembered for the retransmission horizon (the window
plus five minutes), so a capture sent again later opened a new alarm; and the dedup key held the
transport, so a frame captured on TCP was published again when sent over UDP.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alarmhub_ingest_contactid.protocols import dc09
from alarmhub_ingest_contactid.session import Dc09Session, SessionConfig

T0 = datetime(2026, 12, 6, 22, 0, tzinfo=UTC)
# clear, no timestamp: what many older transmitters send
UNTIMED = dc09.encode("ADM-CID", 17, "4321", "#4321|1120 01 001", line="7")


def _published(s: Dc09Session, frame: bytes, now: datetime, transport: str = "tcp") -> bool:
    o = s.handle(frame, now=now, transport=transport)
    assert o.result == "ack"  # the sender always gets its ACK: a replay learns nothing
    if o.events:
        s.published(o, now)
    return bool(o.events)


def test_untimed_clear_frame_replayed_an_hour_later_is_not_published() -> None:
    s = Dc09Session(SessionConfig())
    assert _published(s, UNTIMED, T0)
    o = s.handle(UNTIMED, now=T0 + timedelta(hours=1), transport="tcp")
    assert (o.result, o.events, o.reason, o.duplicate) == ("ack", [], "replay", True)
    # beyond the configured memory it would be a new message again (bounded memory, documented)
    short = Dc09Session(SessionConfig(untimed_replay_s=600))
    assert _published(short, UNTIMED, T0)
    assert _published(short, UNTIMED, T0 + timedelta(hours=1))


def test_timed_frame_captured_on_tcp_and_replayed_over_udp_is_not_published_again() -> None:
    frame = dc09.encode("ADM-CID", 18, "4321", "#4321|1130 01 002", line="7", timestamp=T0)
    s = Dc09Session(SessionConfig())
    assert _published(s, frame, T0, "tcp")
    assert not _published(s, frame, T0 + timedelta(seconds=5), "udp")
    # and later than the window it is NAKed, whatever the transport
    assert s.handle(frame, now=T0 + timedelta(minutes=2), transport="udp").result == "nak"
