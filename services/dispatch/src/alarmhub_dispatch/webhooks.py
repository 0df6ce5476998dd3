"""Outgoing webhooks: signing, one delivery attempt, and the retry decision (httpx, transport injected).

Each POST carries:

- ``X-Alarmhub-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`` — the
  timestamp is inside the MAC so a captured request cannot be replayed later with a fresh time;
- ``Idempotency-Key: <webhook id>:<audit event id>`` — the same on every retry;
- ``Content-Type: application/json``; the body is ``{"event": IncidentEvent, "incident": {...}}``.

Retry policy: 2xx is delivered; 408, 425, 429 and 5xx and network errors are retried with exponential
backoff (1 s, 2 s, 4 s … capped at 5 min) up to ``max_attempts``; any other status is permanent and
goes straight to the dead-letter list, as do deliveries that exhaust their attempts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

__all__ = ["Attempt", "WebhookSender", "backoff", "sign", "verify"]

RETRYABLE = frozenset({408, 425, 429})


def sign(secret: str, body: bytes, ts: int) -> str:
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def verify(secret: str, body: bytes, header: str, now_ts: int, tolerance_s: int = 300) -> bool:
    """What a receiver does (used by our tests and documented for integrators)."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        ts = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(now_ts - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, body, ts), header)


def backoff(attempts: int, cap_s: float = 300.0) -> timedelta:
    return timedelta(seconds=min(cap_s, 2.0 ** max(0, attempts - 1)))


@dataclass(frozen=True)
class Attempt:
    delivered: bool
    retry: bool
    status: int | None
    error: str | None


class WebhookSender:
    def __init__(self, transport: httpx.AsyncBaseTransport | None = None, timeout_s: float = 5.0) -> None:
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=timeout_s,
            follow_redirects=False,
            headers={"User-Agent": "alarmhub-dispatch/1"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, url: str, secret: str, key: str, payload: dict[str, Any], now: datetime) -> Attempt:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": key,
            "X-Alarmhub-Signature": sign(secret, body, int(now.timestamp())),
        }
        try:
            r = await self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Attempt(False, True, None, repr(exc)[:500])
        if 200 <= r.status_code < 300:
            return Attempt(True, False, r.status_code, None)
        retry = r.status_code in RETRYABLE or r.status_code >= 500
        return Attempt(False, retry, r.status_code, r.text[:500])
