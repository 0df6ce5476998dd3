"""The internal command endpoint dispatch calls: ``POST /gb28181/catalog`` (a GB/T 28181 Catalog query).

Served on its own listener (``ALARMHUB_CAMERA_COMMAND_HOST``:``ALARMHUB_CAMERA_COMMAND_PORT``, loopback by
default), not on port 8081 where cameras push; every request carries ``Authorization: Bearer
<ALARMHUB_CAMERA_COMMAND_TOKEN>`` (compared in constant time) or gets 401. Without a token configured
the listener is not started at all.

``{"device_id": "<20 digits>", "timeout_s": 10}`` → 200 with the query's result (catalog.py): ``status``
(``complete`` / ``partial`` / ``refused`` / ``no_catalog`` / ``no_answer`` / ``not_registered`` /
``not_connected`` / ``busy``), ``channels``, ``sum_num``, and ``last_complete`` when this one was not.
"""

from __future__ import annotations

import hmac

from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel, Field

from .catalog import CatalogQueries

__all__ = ["CatalogRequest", "build_command_app"]


class CatalogRequest(BaseModel):
    device_id: str = Field(pattern=r"^\d{20}$")
    timeout_s: float | None = Field(default=None, gt=0, le=60)


def build_command_app(catalog: CatalogQueries, token: str, default_timeout_s: float) -> FastAPI:
    app = FastAPI(title="alarmhub ingest-camera commands", docs_url=None, redoc_url=None, openapi_url=None)
    want = f"Bearer {token}".encode()

    def _authorized(authorization: str | None) -> None:
        if not hmac.compare_digest((authorization or "").encode("utf-8", "surrogatepass"), want):
            raise HTTPException(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})

    @app.post("/gb28181/catalog")
    async def gb28181_catalog(
        body: CatalogRequest, authorization: str | None = Header(default=None)
    ) -> dict[str, object]:
        _authorized(authorization)
        return await catalog.query(body.device_id, body.timeout_s or default_timeout_s)

    return app
