"""Operator commands for a stolen vehicle, forwarded to ingest-gps (locate now, track, text, supervise).

ingest-gps owns the terminals' TCP sessions and the JT/T 809 platforms' links, so the command goes to
its internal endpoint (``POST /commands`` on ``ALARMHUB_GPS_COMMAND_URL``); it answers with the
correlated reply (a JT/T 808 0x0201 position or 0x0001 result; a JT/T 809 0x1205/0x1206 acknowledgement
with the first tracked position, or a 0x1401 supervision answer), ``not_connected`` or ``timeout``.
Every call carries dispatch's credential, ``Authorization: Bearer <ALARMHUB_GPS_COMMAND_TOKEN>``: the
endpoint refuses anything else (401). The client takes an injected httpx transport so that tests can aim it at a real local receiver.

Routing: ingest-gps scales out by process, and only the process holding the terminal's TCP session
(or the platform's JT/T 809 link) can send the command. Each process records in Redis, under the
shared prefix (``ALARMHUB_GPS_REDIS_PREFIX``, default ``<topic prefix>gps:``), ``owner:<device_id>``
and ``owner:jt809:<user_id>`` → its gateway id, and ``gateway:<id>`` → its command URL (see
ingest-gps's ``ownership.py``). The command goes to the owner's URL; with no owner known (or Redis
unreachable) it goes to ``ALARMHUB_GPS_COMMAND_URL`` as before. An owner whose gateway key has expired
(the process stopped or crashed) or whose endpoint does not answer is :class:`OwnerGone`: 503 with the
reason, the command was not delivered. An owner that answers ``not_connected`` while the session has
moved meanwhile is asked again once at the new owner.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from alarmhub_runtime import get_logger

log = get_logger("alarmhub.dispatch.vehicle_commands")

__all__ = ["COMMANDS", "COMMANDS_BY_PROTOCOL", "GatewayUnreachable", "OwnerGone", "VehicleCommands"]

#: what an operator may ask of a terminal, as ingest-gps names it
COMMANDS = ("query_position", "track", "text", "track_stop", "supervise", "cutoff", "restore")
#: what each source protocol can carry: a JT/T 808 terminal directly, or the JT/T 809 platform forwarding
#: the vehicle (0x9205 start / 0x9206 stop forwarding its positions, 0x9401 alarm supervision)
COMMANDS_BY_PROTOCOL = {
    "jt808": ("query_position", "track", "text", "cutoff", "restore"),
    "jt809": ("track", "track_stop", "supervise"),
    # cut fuel/power where the terminal's model has one (ingest-gps answers ``unsupported`` otherwise):
    # GT06 0x80 text answered by 0x15/0x21, H02 S20 answered by V4 — ingest-gps's sessions/gt06.py, h02.py
    "gt06": ("query_position", "cutoff", "restore"),  # position now: WHERE#, answered by the fix as text
    "h02": ("cutoff", "restore"),
}


class GatewayUnreachable(Exception):
    """ingest-gps did not answer (HTTP 502 to the caller): the command was not delivered."""


class OwnerGone(GatewayUnreachable):
    """The gateway holding the vehicle's session is gone or unreachable (HTTP 503): not delivered."""


class VehicleCommands:
    def __init__(
        self,
        url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        redis: Any = None,
        prefix: str = "gps:",
        lookups: Any = None,
        platform_user: Callable[[str], Awaitable[int | None]] | None = None,
        token: str = "alarmhub-dev-command-token",
    ) -> None:
        self._url = url
        # dispatch's credential on every gateway's command endpoint (ALARMHUB_GPS_COMMAND_TOKEN)
        self._client = httpx.AsyncClient(transport=transport, headers={"Authorization": f"Bearer {token}"})
        self._redis = redis  # redis.asyncio client; None: always the configured URL
        self._prefix = prefix
        self._lookups = lookups  # Counter with an ``outcome`` label
        self._platform_user = platform_user  # registry name of a JT/T 809 platform → its user id

    def _count(self, outcome: str) -> None:
        if self._lookups is not None:
            self._lookups.labels(outcome).inc()

    async def _session(self, device_id: str, protocol: str | None, platform: str | None) -> str | None:
        """The ownership key's subject: the device, or the platform link forwarding the vehicle."""
        if protocol != "jt809":
            return device_id
        if not platform:
            return None
        if platform.isdigit():
            return f"jt809:{int(platform)}"
        user_id = await self._platform_user(platform) if self._platform_user is not None else None
        return f"jt809:{user_id}" if user_id is not None else None

    async def route(
        self, device_id: str, protocol: str | None = None, platform: str | None = None
    ) -> tuple[str, str | None]:
        """(URL, owner gateway id or None when falling back); OwnerGone when the owner's key has expired."""
        if self._redis is None:
            return self._url, None
        try:
            session = await self._session(device_id, protocol, platform)
            if session is None:
                self._count("fallback")
                return self._url, None
            owner = await self._redis.get(f"{self._prefix}owner:{session}")
            if owner is None:
                self._count("fallback")
                return self._url, None
            owner = owner.decode() if isinstance(owner, bytes) else str(owner)
            url = await self._redis.get(f"{self._prefix}gateway:{owner}")
        except Exception as exc:  # Redis down: the single-gateway behaviour still works
            self._count("lookup_error")
            log.warning("gps_owner_lookup_failed", device_id=device_id, error=repr(exc))
            return self._url, None
        if url is None:
            self._count("owner_gone")
            raise OwnerGone(
                f"the vehicle's session is held by gateway {owner!r}, which is no longer registered "
                "(stopped or crashed); the terminal has to reconnect first"
            )
        self._count("routed")
        return (url.decode() if isinstance(url, bytes) else str(url)), owner

    async def send(
        self,
        device_id: str,
        command: str,
        params: dict[str, Any],
        timeout_s: float,
        *,
        protocol: str | None = None,
        platform: str | None = None,
    ) -> dict[str, Any]:
        url, owner = await self.route(device_id, protocol, platform)
        reply = await self._post(url, owner, device_id, command, params, timeout_s, protocol, platform)
        if owner is not None and reply.get("status") == "not_connected":
            # the session may have moved while we asked: follow it once
            url2, owner2 = await self.route(device_id, protocol, platform)
            if owner2 is not None and owner2 != owner:
                reply = await self._post(
                    url2, owner2, device_id, command, params, timeout_s, protocol, platform
                )
        return reply

    async def _post(
        self,
        url: str,
        owner: str | None,
        device_id: str,
        command: str,
        params: dict[str, Any],
        timeout_s: float,
        protocol: str | None,
        platform: str | None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "device_id": device_id,
            "command": command,
            "params": params,
            "timeout_s": timeout_s,
        }
        if protocol is not None:
            body["protocol"] = protocol
        if platform is not None:
            body["platform"] = platform
        try:
            # the gateway waits up to timeout_s for the terminal; give the HTTP hop a margin on top
            r = await self._client.post(url, json=body, timeout=timeout_s + 5.0)
            reply = r.json()
        except (httpx.HTTPError, ValueError) as exc:
            if owner is not None:
                raise OwnerGone(
                    f"gateway {owner!r} holding the vehicle's session did not answer at {url}: {exc!r}"
                ) from exc
            raise GatewayUnreachable(f"ingest-gps command endpoint failed: {exc!r}") from exc
        if not isinstance(reply, dict) or "status" not in reply:
            raise GatewayUnreachable(f"unexpected answer from ingest-gps (HTTP {r.status_code})")
        return reply

    async def close(self) -> None:
        await self._client.aclose()
        if self._redis is not None:
            await self._redis.aclose()
