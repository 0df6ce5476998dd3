"""The generic camera webhook: a documented JSON body, HMAC-signed, with an idempotency key.

Edition: alarmhub's own contract (docs/ingest-camera.md; no version field yet); an unsigned or stale request
is refused rather than guessed.

For video platforms that speak neither ISAPI, ONVIF nor GB/T 28181. The contract (docs/ingest-camera.md):

``POST /events/webhook`` with headers

- ``X-Alarmhub-Timestamp``: Unix seconds when the request was signed (rejected if more than
  ``max_skew_s`` away from our clock, which bounds replays);
- ``X-Alarmhub-Integrator``: the integrator's name (each has its own secret; absent → ``default``);
- ``X-Alarmhub-Signature``: ``sha256=`` + hex HMAC-SHA256 of ``<timestamp>.<idempotency key>.<raw body>``
  with the integrator's secret (the Stripe/GitHub scheme with the key added: a captured request cannot
  be replayed under a fresh key to make a second event);
- ``Idempotency-Key``: unique per logical event (1–128 chars) and integrator; a retry with the same
  key is answered 200 without a second event.

Body::

    {"camera_id": "44030500001320000001", "event": "intrusion", "state": "active",
     "rule": "fence-north", "occurred_at": "2026-11-25T08:00:00+08:00",
     "lat": 22.54, "lon": 114.05, "image_url": "https://…/snap.jpg", "attributes": {}}

``event`` is one of ``motion``, ``intrusion``, ``line_crossing``, ``tamper``, ``video_loss``, ``other``;
``state`` is ``active`` (default) or ``inactive``.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any, Literal

from alarmhub_events import AlarmKind
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

__all__ = ["WebhookError", "WebhookEvent", "decode", "sign", "verify_signature"]

EVENT_KINDS: dict[str, AlarmKind] = {
    "motion": AlarmKind.MOTION,
    "intrusion": AlarmKind.INTRUSION,
    "line_crossing": AlarmKind.LINE_CROSSING,
    "tamper": AlarmKind.TAMPER,
    "video_loss": AlarmKind.TROUBLE,
    "other": AlarmKind.OTHER,
}


class WebhookError(ValueError):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class WebhookEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    camera_id: str = Field(min_length=1, max_length=64)
    event: Literal["motion", "intrusion", "line_crossing", "tamper", "video_loss", "other"]
    state: Literal["active", "inactive"] = "active"
    rule: str = Field(default="", max_length=64)
    occurred_at: AwareDatetime | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    image_url: str | None = Field(default=None, max_length=2048)
    attributes: dict[str, Any] = Field(default_factory=dict)

    @property
    def kind(self) -> AlarmKind:
        return EVENT_KINDS[self.event]


def sign(secret: bytes, timestamp: int, body: bytes, idempotency_key: str) -> str:
    signed = str(timestamp).encode() + b"." + idempotency_key.encode() + b"." + body
    return "sha256=" + hmac.new(secret, signed, hashlib.sha256).hexdigest()


def verify_signature(
    secret: bytes,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: datetime,
    max_skew_s: int = 300,
    idempotency_key: str = "",
) -> int:
    """Return the signed timestamp, or raise WebhookError(401) — bad or missing signatures get nowhere."""
    if not timestamp or not signature:
        raise WebhookError("missing X-Alarmhub-Timestamp or X-Alarmhub-Signature", 401)
    try:
        ts = int(timestamp)
    except ValueError as exc:
        raise WebhookError("X-Alarmhub-Timestamp is not an integer", 401) from exc
    if abs(now.timestamp() - ts) > max_skew_s:
        raise WebhookError("timestamp outside the allowed skew", 401)
    if not hmac.compare_digest(
        sign(secret, ts, body, idempotency_key).encode("utf-8", "surrogatepass"),
        signature.strip().encode("utf-8", "surrogatepass"),
    ):
        raise WebhookError("signature mismatch", 401)
    return ts


def decode(body: bytes, idempotency_key: str | None) -> tuple[WebhookEvent, str]:
    if not idempotency_key or not (1 <= len(idempotency_key) <= 128) or not idempotency_key.isprintable():
        raise WebhookError("Idempotency-Key header is required (1-128 printable characters)")
    try:
        return WebhookEvent.model_validate_json(body), idempotency_key
    except ValidationError as exc:
        raise WebhookError(
            "invalid body: "
            + "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        ) from exc
