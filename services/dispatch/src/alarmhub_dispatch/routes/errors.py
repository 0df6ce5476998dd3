"""Domain errors → HTTP, once for every route (``{"detail": …}`` as FastAPI's own errors)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
from alarmhub_runtime import get_logger
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ..errors import DispatchError
from ..lifecycle import ActionError
from ..vehicle_commands import GatewayUnreachable, OwnerGone

__all__ = ["install_error_handlers"]

log = get_logger("alarmhub.dispatch.api")


async def _domain(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DispatchError)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)


def _status(code: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=code)

    return handler


async def _bad_value(request: Request, exc: Exception) -> JSONResponse:
    """A value PostgreSQL cannot take (a NUL in text, an integer beyond 64 bits) is the caller's error:
    422, not 500 (found by schemathesis, services/dispatch/tests/test_openapi_fuzz.py)."""
    log.info("request_value_rejected", path=request.url.path, error=type(exc).__name__)
    return JSONResponse({"detail": "invalid value in the request"}, status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DispatchError, _domain)
    app.add_exception_handler(ActionError, _status(409))  # the incident's state refuses the action
    app.add_exception_handler(OwnerGone, _status(503))  # the gateway holding the vehicle went away
    app.add_exception_handler(GatewayUnreachable, _status(502))
    app.add_exception_handler(asyncpg.exceptions.DataError, _bad_value)
    app.add_exception_handler(asyncpg.exceptions._base.DataError, _bad_value)
