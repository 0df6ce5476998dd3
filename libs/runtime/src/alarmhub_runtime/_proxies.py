"""The client's address behind trusted reverse proxies (TLS terminators in front of an HTTP service).

``X-Forwarded-For`` is written by whoever sends the request, so it is believed only hop by hop from the
right: starting at the socket's peer, each address that is a trusted proxy hands over to the address it
says it received the request from. The first address that is not a trusted proxy is the client. With no
trusted proxies configured the header is ignored and the socket's peer is the client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = ["TrustedProxies"]

_Net = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """``TrustedProxies("10.0.0.0/8, 127.0.0.1")``; :meth:`client` resolves one request's address."""

    def __init__(self, spec: str | Iterable[str] = "") -> None:
        items = spec.split(",") if isinstance(spec, str) else list(spec)
        self.networks: tuple[_Net, ...] = tuple(
            ipaddress.ip_network(s.strip(), strict=False) for s in items if s.strip()
        )

    def trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip())
        except ValueError:
            return False
        return any(ip in n for n in self.networks)

    def client(self, peer: str, forwarded_for: str | None) -> str:
        """The client address of a request whose socket peer is ``peer``."""
        if not self.networks or not forwarded_for or not self.trusted(peer):
            return peer
        hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
        for hop in reversed(hops):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                return peer  # a garbled header from a trusted proxy: believe only the socket
            if not self.trusted(hop):
                return hop
        return hops[0] if hops else peer
