"""Operator commands for a stolen vehicle, forwarded to ingest-gps (locate now, track, text, supervise).

ingest-gps owns the terminals' TCP sessions and the JT/T 809 platforms' links, so the command goes to
its internal endpoint (``POST /commands`` on ``ALARMHUB_GPS_COMMAND_URL``); it answers with the
correlated reply (a JT/T 808 0x0201 position or 0x0001 result; a JT/T 809 0x1205/0x1206 acknowledgement
with the first tracked position, or a 0x1401 supervision answer), ``not_connected`` or ``timeout``.
The client takes an injected httpx transport so that tests can aim it at a real local receiver.
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = ["COMMANDS", "COMMANDS_BY_PROTOCOL", "GatewayUnreachable", "VehicleCommands"]

#: what an operator may ask of a terminal, as ingest-gps names it
COMMANDS = ("query_position", "track", "text", "track_stop", "supervise")
#: what each source protocol can carry: a JT/T 808 terminal directly, or the JT/T 809 platform forwarding
#: the vehicle (0x9205 start / 0x9206 stop forwarding its positions, 0x9401 alarm supervision)
COMMANDS_BY_PROTOCOL = {"jt808": ("query_position", "track", "text"),
                        "jt809": ("track", "track_stop", "supervise")}


class GatewayUnreachable(Exception):
    """ingest-gps did not answer (HTTP 502 to the caller): the command was not delivered."""


class VehicleCommands:
    def __init__(self, url: str, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._url = url
        self._client = httpx.AsyncClient(transport=transport)

    async def send(self, device_id: str, command: str, params: dict[str, Any], timeout_s: float, *,
                   protocol: str | None = None, platform: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"device_id": device_id, "command": command, "params": params, "timeout_s": timeout_s}
        if protocol is not None:
            body["protocol"] = protocol
        if platform is not None:
            body["platform"] = platform
        try:
            # the gateway waits up to timeout_s for the terminal; give the HTTP hop a margin on top
            r = await self._client.post(self._url, json=body, timeout=timeout_s + 5.0)
            reply = r.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise GatewayUnreachable(f"ingest-gps command endpoint failed: {exc!r}") from exc
        if not isinstance(reply, dict) or "status" not in reply:
            raise GatewayUnreachable(f"unexpected answer from ingest-gps (HTTP {r.status_code})")
        return reply

    async def close(self) -> None:
        await self._client.aclose()
