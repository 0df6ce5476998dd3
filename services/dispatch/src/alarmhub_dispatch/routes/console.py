"""The dispatchers' web console: its page and its static assets (packaged in ``alarmhub_dispatch/console``)."""

# no "from __future__ import annotations": FastAPI resolves the route annotations at definition time

from importlib import resources
from importlib.resources.abc import Traversable

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, Response

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".svg": "image/svg+xml"}


def _console() -> Traversable:
    return resources.files("alarmhub_dispatch").joinpath("console")


@router.get("/", response_class=HTMLResponse)
async def index() -> HTMLResponse:
    return HTMLResponse(
        _console().joinpath("index.html").read_text("utf-8"), headers={"Cache-Control": "no-cache"}
    )


@router.get("/console/{name:path}")
async def asset(name: str) -> Response:
    parts = name.split("/")
    suffix = name[name.rfind(".") :] if "." in parts[-1] else ""
    if any(p in ("", ".", "..") for p in parts) or suffix not in _TYPES:
        raise HTTPException(404)
    f = _console().joinpath("assets")
    for p in parts:
        f = f.joinpath(p)
    if not f.is_file():
        raise HTTPException(404)
    return Response(f.read_bytes(), media_type=_TYPES[suffix], headers={"Cache-Control": "max-age=300"})
