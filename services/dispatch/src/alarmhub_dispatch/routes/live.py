"""Cameras around an incident, their live view through the media relay, and snapshots.

- ``GET /api/v1/incidents/{id}/cameras?radius_m=``: registered cameras within the radius (default
  ``ALARMHUB_CAMERAS_NEAR_M``), nearest first, each with its distance and how it can be looked through;
- ``POST /api/v1/cameras/{id}/live``: a stream token and the HLS playlist's URL (``/media/<token>/…``);
  the refusals carry a ``code`` the console explains: ``camera_unreachable`` (502), ``viewer_limit``
  (429), ``codec_unplayable`` (415), ``no_stream`` / ``gb28181_invite`` (409), ``live_off`` (503);
- ``GET /api/v1/cameras/{id}/snapshot``: one JPEG frame, for when live view is not possible;
- ``GET /api/v1/cameras/{id}/channels``: a GB/T 28181 camera's channels, from a Catalog query ingest-camera
  sends the device now (``status`` says how it went; ``last_complete`` is the last full list when this
  one was not); refusals: ``not_gb28181`` (409), ``catalog_off`` (503), ``ingest_unreachable`` (502);
- ``GET /media/{token}/{file}`` and ``POST /media/{token}/close``: the player's requests, authorized by
  the stream token alone (never the user's bearer token in a URL).

Live view and snapshots are for police units (dispatcher, supervisor, department); alarm companies and
vehicle owners get 403. Opening a view is an audited action like every other POST under ``/api/v1``.
"""

# no "from __future__ import annotations": FastAPI resolves the dependency aliases at definition time

import uuid
from typing import Annotated, Any
from urllib.parse import quote, urlsplit, urlunsplit

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response

from ..auth import Principal
from ..camera_catalog import CameraCatalog, CatalogUnavailable
from ..cameras_near import cameras_near, live_kind
from ..media_relay import CameraUnreachable, CodecUnplayable, LiveError, MediaRelay, ViewerLimit
from .deps import D, Who, visible_incident

__all__ = ["media_router", "router"]

router = APIRouter()
media_router = APIRouter()

VIEWING_ROLES = frozenset({"dispatcher", "supervisor", "department"})
_STATUS = {CameraUnreachable: 502, ViewerLimit: 429, CodecUnplayable: 415}
_TYPES = {".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/mp2t"}


def get_relay(request: Request) -> MediaRelay | None:
    relay: MediaRelay | None = getattr(request.app.state, "relay", None)
    return relay


Relay = Annotated[MediaRelay | None, Depends(get_relay)]


def _refuse(status: int, code: str, message: str) -> HTTPException:
    return HTTPException(status, {"code": code, "message": message})


def _may_view(who: Principal) -> None:
    if who.role not in VIEWING_ROLES or who.unit is None:
        raise HTTPException(403, "cameras are for police units")


def _with_credentials(url: str, username: str | None, password: str | None) -> str:
    if not username:
        return url
    p = urlsplit(url)
    auth = quote(username, safe="") + (":" + quote(password, safe="") if password else "")
    return urlunsplit((p.scheme, f"{auth}@{p.netloc}", p.path, p.query, p.fragment))


def _redact(text: str, cam: dict[str, Any]) -> str:
    """ffmpeg's last words may repeat the URL it was given: never hand the camera's password back."""
    for secret in (cam.get("password"), cam.get("username")):
        if secret:
            text = text.replace(quote(secret, safe=""), "***").replace(secret, "***")
    return text


async def _camera(d: Any, camera_id: str) -> dict[str, Any]:
    cam = await d.store.registry.camera_stream(camera_id)
    if cam is None:
        raise HTTPException(404, "no such camera")
    kind = live_kind(cam["id"], cam["stream_url"] is not None)
    if kind == "gb28181":
        raise _refuse(
            409,
            "gb28181_invite",
            "a GB/T 28181 camera without a stream URL: live view over SIP INVITE is not done; "
            "register its RTSP URL (stream_url) to watch it",
        )
    if kind is None:
        raise _refuse(409, "no_stream", "the registry has no stream URL for this camera")
    return cam


@router.get("/incidents/{incident_id}/cameras")
async def incident_cameras(
    who: Who,
    d: D,
    request: Request,
    incident_id: uuid.UUID,
    radius_m: float | None = Query(None, gt=0, le=5000),
    limit: int = Query(50, ge=1, le=500),
) -> dict[str, Any]:
    """Registered cameras within ``radius_m`` of the incident's position, nearest first."""
    _may_view(who)
    row = await visible_incident(d, who, incident_id)
    radius = radius_m or float(getattr(request.app.state, "cameras_near_m", 500.0))
    if row["lat"] is None or row["lon"] is None:
        return {"items": [], "count": 0, "radius_m": radius, "center": None}
    items = await cameras_near(d.store, row["lat"], row["lon"], radius, limit)
    return {
        "items": items,
        "count": len(items),
        "radius_m": radius,
        "center": {"lat": row["lat"], "lon": row["lon"]},
    }


@router.post("/cameras/{camera_id}/live")
async def camera_live(who: Who, d: D, relay: Relay, camera_id: str) -> dict[str, Any]:
    """Start (or join) the camera's relay; the answer's ``playlist`` is what the player loads."""
    _may_view(who)
    if relay is None or relay.max_streams == 0:
        raise _refuse(503, "live_off", "live view is turned off on this server")
    cam = await _camera(d, camera_id)
    url = _with_credentials(cam["stream_url"], cam["username"], cam["password"])
    try:
        token, stream = await relay.open(camera_id, url, who.user)
    except LiveError as exc:
        raise _refuse(_STATUS.get(type(exc), 502), exc.code, _redact(str(exc), cam)) from None
    return {
        "camera_id": camera_id,
        "token": token,
        "playlist": f"/media/{token}/index.m3u8",
        "close": f"/media/{token}/close",
        "codec": "h264",
        "source_codec": stream.codec,
        "transcoded": stream.transcoded,
        "token_ttl_s": relay.token_ttl_s,
    }


@router.get(
    "/cameras/{camera_id}/snapshot", response_class=Response, responses={200: {"content": {"image/jpeg": {}}}}
)
async def camera_snapshot(who: Who, d: D, relay: Relay, camera_id: str) -> Response:
    _may_view(who)
    cam = await _camera(d, camera_id)
    url = _with_credentials(cam["stream_url"], cam["username"], cam["password"])
    try:
        jpeg = await (relay or MediaRelay()).snapshot(url)
    except LiveError as exc:
        raise _refuse(502, exc.code, _redact(str(exc), cam)) from None
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get("/cameras/{camera_id}/channels")
async def camera_channels(
    who: Who,
    d: D,
    request: Request,
    camera_id: str,
    timeout_s: float = Query(8.0, gt=0, le=30),
) -> dict[str, Any]:
    """The channels a GB/T 28181 camera (or NVR) lists when asked for its Catalog (SIP MESSAGE)."""
    _may_view(who)
    catalog: CameraCatalog | None = getattr(request.app.state, "camera_catalog", None)
    if catalog is None or catalog.token is None:
        raise _refuse(503, "catalog_off", "the GB/T 28181 catalog query is not configured on this server")
    cam = await d.store.registry.camera_stream(camera_id)
    if cam is None:
        raise HTTPException(404, "no such camera")
    if live_kind(cam["id"], False) != "gb28181":
        raise _refuse(409, "not_gb28181", "not a GB/T 28181 device (its id is not a 20-digit code)")
    try:
        result = await catalog.channels(camera_id, timeout_s)
    except CatalogUnavailable as exc:
        raise _refuse(502, "ingest_unreachable", str(exc)) from None
    return {"camera_id": camera_id, **result}


@media_router.get("/media/{token}/{name}", include_in_schema=False)
async def media_file(relay: Relay, token: str, name: str) -> Response:
    path = relay.file(token, name) if relay is not None else None
    if path is None:
        raise HTTPException(404, "no such stream, or its token lapsed")
    try:
        body = path.read_bytes()
    except FileNotFoundError:  # the segment rolled off the playlist meanwhile
        raise HTTPException(404, "segment gone") from None
    return Response(
        body,
        media_type=_TYPES[path.suffix],
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


@media_router.post("/media/{token}/close", status_code=204, include_in_schema=False)
async def media_close(relay: Relay, token: str) -> Response:
    """The player closed (also sent as a beacon when the page goes away); the token is the authority."""
    if relay is not None:
        await relay.close(token)
    return Response(status_code=204)
