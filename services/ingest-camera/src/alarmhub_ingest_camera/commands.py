"""The internal command endpoint dispatch calls: ``POST /gb28181/catalog`` (a GB/T 28181 Catalog query).

Served on its own listener (``ALARMHUB_CAMERA_COMMAND_HOST``:``ALARMHUB_CAMERA_COMMAND_PORT``, loopback by
default), not on port 8081 where cameras push; every request carries ``Authorization: Bearer
<ALARMHUB_CAMERA_COMMAND_TOKEN>`` (compared in constant time) or gets 401 — before anything else, so a
caller without it learns nothing (not which paths exist, not what a body should be). Without a token
configured the listener is not started at all.

``{"device_id": "<20 digits>", "timeout_s": 10}`` → 200 with the query's result (catalog.py): ``status``
(``complete`` / ``partial`` / ``refused`` / ``no_catalog`` / ``no_answer`` / ``not_registered`` /
``not_connected`` / ``busy``), ``channels``, ``sum_num``, and ``last_complete`` when this one was not.
A body over 4 KiB gets 413 unread (the request is ~60 bytes; an authorised caller cannot make the
service buffer megabytes), one that is not such a request 422.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError

from .catalog import CatalogQueries
from .http import TooLarge, read_body

__all__ = ["MAX_COMMAND_BODY", "CatalogRequest", "build_command_app"]

MAX_COMMAND_BODY = 4096


class CatalogRequest(BaseModel):
    device_id: str = Field(pattern=r"^\d{20}$")
    timeout_s: float | None = Field(default=None, gt=0, le=60)


def build_command_app(catalog: CatalogQueries, token: str, default_timeout_s: float) -> FastAPI:
    app = FastAPI(title="alarmhub ingest-camera commands", docs_url=None, redoc_url=None, openapi_url=None)
    want = f"Bearer {token}".encode()

    @app.middleware("http")
    async def authorized(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        got = request.headers.get("authorization", "").encode("utf-8", "surrogatepass")
        if not hmac.compare_digest(got, want):
            return JSONResponse(
                {"detail": "a bearer token is required"}, 401, headers={"WWW-Authenticate": "Bearer"}
            )
        return await call_next(request)

    @app.post("/gb28181/catalog")
    async def gb28181_catalog(request: Request) -> Response:
        try:
            raw = await read_body(request, MAX_COMMAND_BODY)
        except TooLarge:
            return JSONResponse({"detail": f"body exceeds {MAX_COMMAND_BODY} bytes"}, 413)
        try:
            body = CatalogRequest.model_validate_json(raw)
        except ValidationError as exc:  # the reasons, without echoing the input
            return JSONResponse({"detail": json.loads(exc.json(include_url=False, include_input=False))}, 422)
        return JSONResponse(await catalog.query(body.device_id, body.timeout_s or default_timeout_s))

    return app
