"""The dispatchers' web console: its page and its static assets (packaged in ``alarmhub_dispatch/console``)."""

# no "from __future__ import annotations": FastAPI resolves the route annotations at definition time

import html
from importlib import resources
from importlib.resources.abc import Traversable

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".svg": "image/svg+xml"}


def _console() -> Traversable:
    return resources.files("alarmhub_dispatch").joinpath("console")


#: on every view of a district backup's console, above everything else (backup.py)
_BANNER = (
    '<div id="backup-banner" role="status" data-district="{d}">备用副本（只读）：{d} 区的数据副本，'
    "市中心恢复前不能处理警情 · Read-only district backup of district {d}: history, registries and open "
    "incidents as last replicated; no action can be taken here</div>"
)


@router.get("/", response_class=HTMLResponse)
async def index(request: Request) -> HTMLResponse:
    page = _console().joinpath("index.html").read_text("utf-8")
    district = getattr(request.app.state, "backup_district", None)
    if district is not None:
        page = page.replace("<body>", "<body>\n" + _BANNER.format(d=html.escape(district)), 1)
    return HTMLResponse(page, headers={"Cache-Control": "no-cache"})


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
