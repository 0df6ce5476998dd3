"""A small HTTP server for ``/metrics``, ``/healthz`` and ``/readyz``.

Kept on plain asyncio streams so that every service, HTTP or not, exposes the same three paths
without pulling a web framework into its hot path.

- ``/healthz``: the process is alive and its event loop answers (200).
- ``/readyz``: every registered readiness check passes (200) or not (503, with the failing names).
- ``/metrics``: Prometheus text exposition of the service's own registry.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["HealthServer", "ReadinessCheck"]

ReadinessCheck = Callable[[], Awaitable[bool] | bool]


class HealthServer:
    #: every path served, to whoever reaches the port (GET/HEAD): the port is for Prometheus and the
    #: orchestrator's probes, not published (docs/security.md); tests/security/authz_matrix.py lists each
    PATHS = ("/healthz", "/readyz", "/metrics")

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self._registry = registry
        self._host = host
        self._port = port
        self._checks: dict[str, ReadinessCheck] = {}
        self._server: asyncio.Server | None = None
        self.draining = False

    @property
    def registry(self) -> CollectorRegistry:
        """The registry ``/metrics`` serves."""
        return self._registry

    def add_check(self, name: str, check: ReadinessCheck) -> None:
        self._checks[name] = check

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self._host, self._port, limit=8192)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def readiness(self) -> dict[str, bool]:
        results: dict[str, bool] = {}
        for name, check in self._checks.items():
            try:
                res = check()
                if asyncio.iscoroutine(res) or isinstance(res, Awaitable):
                    res = await asyncio.wait_for(res, 2.0)
                results[name] = bool(res)
            except Exception:
                results[name] = False
        if self.draining:
            results["not_draining"] = False
        return results

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5.0)
            while True:  # discard headers
                h = await asyncio.wait_for(reader.readline(), 5.0)
                if h in (b"\r\n", b"\n", b""):
                    break
            parts = line.decode("latin-1").split()
            path = parts[1].split("?", 1)[0] if len(parts) >= 2 else ""
            if len(parts) < 2 or parts[0] not in ("GET", "HEAD"):
                status, ctype, body = "405 Method Not Allowed", "text/plain", b"GET only\n"
            elif path not in self.PATHS:
                status, ctype, body = "404 Not Found", "text/plain", b"not found\n"
            elif path == "/metrics":
                status, ctype, body = "200 OK", CONTENT_TYPE_LATEST, generate_latest(self._registry)
            elif path == "/healthz":
                status, ctype, body = "200 OK", "application/json", b'{"status":"ok"}\n'
            elif path == "/readyz":
                checks = await self.readiness()
                ok = all(checks.values())
                status = "200 OK" if ok else "503 Service Unavailable"
                ctype = "application/json"
                body = (
                    json.dumps({"status": "ready" if ok else "not_ready", "checks": checks}).encode() + b"\n"
                )
            else:
                status, ctype, body = "404 Not Found", "text/plain", b"not found\n"
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
            writer.write(head + (b"" if parts and parts[0] == "HEAD" else body))
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()
