"""The generic webhook contract (signature, idempotency key, body) and the noise gate."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from alarmhub_events import AlarmKind
from alarmhub_ingest_camera.noise import Decision, NoiseGate
from alarmhub_ingest_camera.protocols import webhook
from alarmhub_ingest_camera.protocols.webhook import WebhookError, sign, verify_signature

SECRET = b"s3cret"
NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
TS = int(NOW.timestamp())
BODY = json.dumps(
    {
        "camera_id": "44030500001320000001",
        "event": "intrusion",
        "rule": "fence-north",
        "occurred_at": "2026-11-25T16:00:00+08:00",
    }
).encode()


def test_signature_roundtrip_and_rejections() -> None:
    sig = sign(SECRET, TS, BODY, "evt-1")
    assert verify_signature(SECRET, str(TS), sig, BODY, NOW, idempotency_key="evt-1") == TS
    for ts, s, body, key, status in [
        (str(TS), sig, BODY + b" ", "evt-1", 401),  # body changed
        (str(TS + 1), sig, BODY, "evt-1", 401),  # timestamp changed
        (str(TS), sig, BODY, "evt-2", 401),  # idempotency key changed (a replay under a fresh key)
        (str(TS - 301), sign(SECRET, TS - 301, BODY, "evt-1"), BODY, "evt-1", 401),  # outside skew
        (None, sig, BODY, "evt-1", 401),
        (str(TS), None, BODY, "evt-1", 401),
        ("x", sig, BODY, "evt-1", 401),
        (str(TS), "签名" + sig[2:], BODY, "evt-1", 401),  # not ASCII: refused, not a TypeError (a 500)
        (str(TS), "\udc80" + sig[1:], BODY, "evt-1", 401),  # a lone surrogate
    ]:
        with pytest.raises(WebhookError) as err:
            verify_signature(SECRET, ts, s, body, NOW, idempotency_key=key)
        assert err.value.status == status


def test_body_and_idempotency_key() -> None:
    ev, key = webhook.decode(BODY, "evt-1")
    assert ev.kind == AlarmKind.INTRUSION and ev.state == "active" and key == "evt-1"
    assert ev.occurred_at == datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    with pytest.raises(WebhookError):
        webhook.decode(BODY, None)
    with pytest.raises(WebhookError):
        webhook.decode(b'{"camera_id": "x", "event": "explosion"}', "k")
    with pytest.raises(WebhookError):
        webhook.decode(b"{not json", "k")
    with pytest.raises(WebhookError):
        webhook.decode(b'{"camera_id": "x", "event": "motion", "unknown": 1}', "k")


def test_noise_gate_coalesces_and_restores() -> None:
    g = NoiseGate(hold_s=30, burst=100, window_s=60)
    assert g.offer("c1", "VMD", True, 0).decision == Decision.NEW
    for t in range(1, 10):
        assert g.offer("c1", "VMD", True, t).decision == Decision.COALESCED
    v = g.offer("c1", "VMD", False, 10)
    assert v.decision == Decision.RESTORE and v.suppressed == 9
    assert g.offer("c1", "VMD", False, 11).decision == Decision.IDLE
    assert g.offer("c1", "line", True, 11).decision == Decision.NEW  # rules are independent


def test_noise_gate_hold_expires_pulses() -> None:
    g = NoiseGate(hold_s=30)
    assert g.offer("c1", "VMD", True, 0).publish
    assert not g.offer("c1", "VMD", True, 29).publish
    assert g.offer("c1", "VMD", True, 60).decision == Decision.NEW  # quiet for 31 s: a new episode


def test_noise_gate_rate_limits_floods_but_keeps_the_first() -> None:
    g = NoiseGate(hold_s=0.5, burst=3, window_s=60)
    published = [t for t in range(50) if g.offer("c1", "VMD", t % 2 == 0, float(t)).publish]
    assert published[0] == 0 and len(published) == 3
    later = g.offer("c1", "VMD", True, 200.0)
    assert later.publish and later.suppressed > 0  # the count of what was dropped rides along


def test_noise_gate_bounded() -> None:
    g = NoiseGate(max_keys=100)
    for i in range(1000):
        g.offer(f"c{i}", "VMD", True, float(i))
    assert len(g) == 100


def test_liveness_online_once_and_offline_after_silence() -> None:
    from alarmhub_events import Protocol
    from alarmhub_ingest_camera.events import Liveness

    live = Liveness(max_devices=2)
    assert live.touch("a", Protocol.GB28181, 0.0, 180.0) is True
    assert live.touch("a", Protocol.GB28181, 60.0, 180.0) is False
    assert live.touch("b", Protocol.ISAPI, 0.0, 30.0) is True
    assert live.touch("c", Protocol.ISAPI, 0.0, 30.0) is False  # bounded
    assert live.sweep(100.0) == [("b", Protocol.ISAPI)]
    assert live.sweep(241.0) == [("a", Protocol.GB28181)] and len(live) == 0
