"""The HTTP shell: the FastAPI app of the contract's Dispatch API, the SSE stream and the console.

Routes hold no business rules: they authenticate, check the caller's scope, and call the
:class:`~.service.Dispatcher`, the store or the registry mappers. Each resource is a router in
``routes/``; this module puts them together with the parts they depend on (``app.state``), the audit
middleware and the error handlers.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI

from .audit import AuditMiddleware, AuditWriter
from .body_limit import BodyLimit
from .routes import (
    audit,
    cap,
    console,
    incidents,
    live,
    me,
    oidc,
    owners,
    people,
    platforms,
    registry,
    reports,
    site,
    stream,
    theft,
    tokens,
    totp,
    units,
    webhooks,
)
from .routes import devices as device_routes
from .routes.errors import install_error_handlers
from .routes.registry import MAX_CSV_BYTES
from .service import Dispatcher
from .store import REGISTRY_CHANNEL

__all__ = ["REGISTRY_CHANNEL", "build_api"]

#: the ``/api/v1`` routers in the order they match (JT/T 809 platforms before the generic registry)
ORDER = (
    incidents.router,
    cap.router,
    webhooks.router,
    reports.router,
    stream.router,
    units.router,
    tokens.router,
    platforms.router,
    registry.router,
    theft.router,
    owners.router,
    people.router,
    totp.router,
    oidc.router,
    audit.router,
    live.router,
    me.router,
    site.router,
)


#: JSON bodies of the API (the largest legitimate ones are registry records and people, a few KiB)
MAX_BODY_BYTES = 1024 * 1024


def build_api(dispatcher: Dispatcher | None, tracks: Any = None, *, devices: Any = None) -> FastAPI:
    """The app over ``dispatcher`` (None: the routes only, for the OpenAPI document, ``openapi.py``)."""
    app = FastAPI(
        title="alarmhub dispatch",
        version="1.0",
        description="Incidents, routing to police stations, registries and the live stream.",
    )
    app.state.dispatcher = dispatcher
    app.state.tracks = tracks
    app.state.devices = devices
    install_error_handlers(app)
    if dispatcher is not None:
        app.state.audit = AuditWriter(dispatcher.store, dispatcher.metrics)
        app.add_middleware(AuditMiddleware, writer=app.state.audit)
    api = APIRouter(prefix="/api/v1")
    for router in ORDER:
        api.include_router(router)
    if devices is not None:
        api.include_router(device_routes.router)
    app.include_router(api)
    app.include_router(live.media_router)  # /media/<stream token>/…: the player's, outside /api/v1
    app.include_router(console.router)
    # outermost: no body is read or parsed (authentication included) before it is bounded
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES, import_limit=MAX_CSV_BYTES)
    return app
