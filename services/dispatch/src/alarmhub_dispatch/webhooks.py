"""Outgoing webhooks: signing, one delivery attempt, and the retry decision (httpx, transport injected).

Each POST carries:

- ``X-Alarmhub-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`` — the
  timestamp is inside the MAC so a captured request cannot be replayed later with a fresh time;
- ``Idempotency-Key: <webhook id>:<audit event id>`` — the same on every retry;
- ``Content-Type: application/json``; the body is ``{"event": IncidentEvent, "incident": {...}}``.

Retry policy: 2xx is delivered; 408, 425, 429 and 5xx and network errors are retried with exponential
backoff (1 s, 2 s, 4 s … capped at 5 min) up to ``max_attempts``; any other status is permanent and
goes straight to the dead-letter list, as do deliveries that exhaust their attempts.

Where a delivery may go (:class:`TargetPolicy`, docs/security.md): the target's name is resolved when the
connection is made, every address it resolves to must be public or inside
``ALARMHUB_WEBHOOK_ALLOW_NETWORKS``, and the request goes to the address that was checked (the name kept
for ``Host`` and TLS), so a name that later resolves to a loopback or private address is refused too.
The receiver's answer body is never kept or shown: only its status (an error page of an internal
service would otherwise come back through the dead-letter list).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

__all__ = ["Attempt", "TargetPolicy", "TargetRefused", "WebhookSender", "backoff", "sign", "verify"]

_Ip = ipaddress.IPv4Address | ipaddress.IPv6Address
#: shared address space (carrier NAT) is not "private" to the ipaddress module but is not the Internet
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


class TargetRefused(Exception):
    """The webhook's target resolves to an address deliveries may not go to."""


class TargetPolicy:
    """Public addresses, plus the networks in ``allow`` (the police network's station systems)."""

    def __init__(self, allow: str = "") -> None:
        self.allow = tuple(
            ipaddress.ip_network(n.strip(), strict=False) for n in allow.split(",") if n.strip()
        )

    def permits(self, ip: _Ip) -> bool:
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in n for n in self.allow):
            return True
        return ip.is_global and not ip.is_multicast and ip not in _CGNAT

    async def resolve(self, host: str, port: int) -> str:
        """The checked address to connect to; raises :class:`TargetRefused`."""
        try:
            addresses: list[_Ip] = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError as exc:
                raise TargetRefused(f"cannot resolve {host}: {exc}") from None
            addresses = [ipaddress.ip_address(str(i[4][0]).split("%", 1)[0]) for i in infos]
        if not addresses:
            raise TargetRefused(f"{host} has no address")
        for ip in addresses:  # every address: a name must not mix a public and an internal one
            if not self.permits(ip):
                raise TargetRefused(f"{host} resolves to {ip}, not a permitted webhook address")
        return str(addresses[0])


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
    return hmac.compare_digest(
        sign(secret, body, ts).encode("utf-8", "surrogatepass"), header.encode("utf-8", "surrogatepass")
    )


def backoff(attempts: int, cap_s: float = 300.0) -> timedelta:
    return timedelta(seconds=min(cap_s, 2.0 ** max(0, attempts - 1)))


@dataclass(frozen=True)
class Attempt:
    delivered: bool
    retry: bool
    status: int | None
    error: str | None


class WebhookSender:
    """One delivery attempt at a time; ``policy`` None (unit tests with an in-memory transport) skips the
    address check."""

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_s: float = 5.0,
        policy: TargetPolicy | None = None,
    ) -> None:
        self._policy = policy
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
        extensions: dict[str, Any] = {}
        target: httpx.URL | str = url
        if self._policy is not None:
            try:
                parsed = httpx.URL(url)
                port = parsed.port or (443 if parsed.scheme == "https" else 80)
                ip = await self._policy.resolve(parsed.host, port)
            except (TargetRefused, httpx.InvalidURL) as exc:
                return Attempt(False, False, None, f"target refused: {exc}"[:500])
            # connect to the address just checked (no second lookup a rebinding name could answer)
            headers["Host"] = parsed.netloc.decode("ascii")
            if parsed.scheme == "https":
                extensions["sni_hostname"] = parsed.host
            target = parsed.copy_with(host=ip)
        try:
            r = await self._client.post(target, content=body, headers=headers, extensions=extensions)
        except httpx.HTTPError as exc:
            return Attempt(False, True, None, type(exc).__name__)
        if 200 <= r.status_code < 300:
            return Attempt(True, False, r.status_code, None)
        retry = r.status_code in RETRYABLE or r.status_code >= 500
        # the status only: the receiver's body is not ours to store or show (SSRF read-back)
        return Attempt(False, retry, r.status_code, f"HTTP {r.status_code}")
