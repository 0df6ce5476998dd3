"""A GB/T 28181 camera's channels, asked of ingest-camera (which holds the device's SIP registration).

ingest-camera sends the device a Catalog query (§9.5.1) and collects its Response MESSAGEs; dispatch
calls its internal endpoint (``POST /gb28181/catalog`` on ``ALARMHUB_CAMERA_COMMAND_URL``) with its
credential, ``Authorization: Bearer <ALARMHUB_CAMERA_COMMAND_TOKEN>``, and passes the answer on: the
``status`` (``complete``, ``partial``, ``refused``, ``no_catalog``, ``no_answer``, ``not_registered``, …),
the ``channels`` and, when this query was not complete, the ``last_complete`` list. The client takes an
injected httpx transport so that tests can aim it elsewhere.
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = ["CameraCatalog", "CatalogUnavailable"]


class CatalogUnavailable(Exception):
    """ingest-camera did not answer, or refused dispatch's credential (HTTP 502 to the caller)."""


class CameraCatalog:
    def __init__(
        self, url: str, token: str | None, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.url = url
        self.token = token  # None: not configured (the route answers 503 catalog_off)
        self._client = httpx.AsyncClient(transport=transport)

    async def channels(self, device_id: str, timeout_s: float) -> dict[str, Any]:
        if self.token is None:
            raise CatalogUnavailable("no ALARMHUB_CAMERA_COMMAND_TOKEN configured")
        try:
            # ingest-camera waits up to timeout_s for the device; the HTTP hop gets a margin on top
            r = await self._client.post(
                self.url,
                json={"device_id": device_id, "timeout_s": timeout_s},
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=timeout_s + 5.0,
            )
            reply = r.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise CatalogUnavailable(f"ingest-camera's catalog endpoint failed: {exc!r}") from exc
        if r.status_code != 200 or not isinstance(reply, dict) or "status" not in reply:
            raise CatalogUnavailable(f"ingest-camera answered HTTP {r.status_code}")
        return reply

    async def close(self) -> None:
        await self._client.aclose()
