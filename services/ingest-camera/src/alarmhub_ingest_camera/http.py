"""The HTTP shell on port 8081: ``/events/isapi``, ``/events/onvif``, ``/events/webhook``.

Thin: read the body (bounded), decode with the pure protocol module, hand observations to
:class:`CameraIngest`, answer. 200 only after the broker confirmed the write; malformed or oversize
input gets a 4xx with the reason and a DLQ record; a broker failure gets 503 so the sender retries.

Who may push (docs/security.md): with ``ALARMHUB_CAMERA_INTAKE_AUTH=registered`` an ISAPI or ONVIF push
speaks for a registered camera only when it carries that camera's intake token (``?token=`` or
``Authorization: Bearer``) or comes from the camera's registered address; anything else is refused 403
(counted, not dead-lettered). The webhook is signed per integrator, the idempotency key included, and an
integrator speaks only for the cameras registered to it (``cameras.integrator``).
"""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from alarmhub_events import Protocol, clean_text
from alarmhub_kafka import PublishError
from alarmhub_runtime import TrustedProxies, get_logger
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from .config import CameraSettings
from .events import from_isapi, from_onvif, from_webhook, isapi_device_id
from .ingest import CameraIngest
from .protocols import isapi, onvif, webhook
from .protocols.isapi import IsapiError
from .protocols.onvif import OnvifError
from .protocols.webhook import WebhookError, verify_signature
from .registry import Camera

__all__ = ["IdempotencyStore", "TooLarge", "build_http_app", "read_body"]

log = get_logger("alarmhub.ingest_camera.http")


class TooLarge(Exception):
    """A body over its limit; ``head``: what was read of it (nothing when its declared length said so)."""

    def __init__(self, head: bytes) -> None:
        self.head = head


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(b"")
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            raise TooLarge(bytes(buf[:limit]))
    return bytes(buf)


def _registered_addresses(camera: Camera) -> set[str]:
    """Where a camera's pushes may come from: its registered ``ip`` and the host of its ``onvif_url`` (the
    device we subscribed to ourselves, notify mode)."""
    out = {camera.ip} if camera.ip else set()
    if camera.onvif_url:
        host = urlsplit(camera.onvif_url).hostname
        if host:
            out.add(host)
    return out


def _peer(request: Request) -> str:
    c = request.client
    return f"{c.host}:{c.port}" if c else "unknown"


class IdempotencyStore:
    """Idempotency keys in Redis: ``SET NX`` a pending marker before publishing, ``done`` after.

    A retry while the first attempt is still publishing gets 409; after it succeeded, 200 with the
    first answer; if it failed, the marker is deleted so the retry can publish.
    """

    def __init__(self, redis: Any, prefix: str, ttl_s: int) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl = ttl_s

    def _key(self, key: str) -> str:
        return f"{self._prefix}camera:idem:{hashlib.sha256(key.encode()).hexdigest()}"

    async def claim(self, key: str) -> str | None:
        """None when claimed; otherwise the existing state (``pending`` or ``done``)."""
        k = self._key(key)
        if await self._redis.set(k, "pending", nx=True, ex=60):
            return None
        value = await self._redis.get(k)
        return value.decode() if isinstance(value, bytes) else (value or "pending")

    async def done(self, key: str) -> None:
        await self._redis.set(self._key(key), "done", ex=self._ttl)

    async def release(self, key: str) -> None:
        await self._redis.delete(self._key(key))


class _Intake:
    """The three intake routes and what they share (who sent it, who may speak for a camera, refusals)."""

    def __init__(self, settings: CameraSettings, ingest: CameraIngest, idem: IdempotencyStore | None) -> None:
        self.settings, self.ingest, self.idem = settings, ingest, idem
        self.metrics = ingest.metrics
        self.producer = ingest.producer
        self.tz = timezone(timedelta(hours=settings.isapi_tz_hours))
        self.secrets = settings.integrator_secrets()
        self.proxies = TrustedProxies(settings.trusted_proxies)
        self.registered_only = settings.intake_auth == "registered"

    def sender(self, request: Request) -> str:
        host = request.client.host if request.client else "unknown"
        return self.proxies.client(host, request.headers.get("x-forwarded-for"))

    def presented_token(self, request: Request) -> str | None:
        auth = request.headers.get("authorization") or ""
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip() or None
        return request.query_params.get("token") or None

    def bound(self, cam: Camera | None, integrator: str) -> bool:
        """An integrator's signature speaks only for the cameras registered to it (``cameras.integrator``);
        with intake auth 'open' (dev stack) an unbound or unregistered camera is anyone's."""
        if cam is not None and cam.integrator is not None:
            return cam.integrator == integrator
        return not self.registered_only

    def refused(self, protocol: str, status: int, reason: str, peer: str) -> Response:
        # unauthenticated input is counted and logged but not dead-lettered (an anonymous sender must not
        # be able to fill the DLQ)
        self.metrics.requests.labels(protocol, "unauthorized").inc()
        log.warning("camera_push_refused", protocol=protocol, peer=peer, reason=reason)
        return JSONResponse({"error": reason}, status_code=status)

    async def authenticated(
        self, request: Request, claimed: Camera | None, claimed_id: str | None
    ) -> tuple[Camera | None, str | None]:
        """(camera, None) when the push may speak for the camera; (None, reason) when it may not.

        A token names its camera (and must agree with any camera the push claims); without one, the
        claimed camera must be registered with the sender's address.
        """
        token = self.presented_token(request)
        if token is not None:
            cam = await self.ingest.registry.by_intake_token(token)
            if cam is None:
                return None, "unknown intake token"
            if claimed_id is not None and claimed_id != cam.id:
                return None, "the token belongs to another camera"
            return cam, None
        if claimed is None:
            return None, "camera not registered"
        if self.sender(request) not in _registered_addresses(claimed):
            return None, "camera not registered at this address"
        return claimed, None

    async def reject(
        self, protocol: str, status: int, reason: str, raw: bytes, peer: str, stage: str = "decode"
    ) -> Response:
        self.metrics.requests.labels(protocol, "rejected").inc()
        try:
            await self.producer.dead_letter(
                stage=stage, source_id=peer, error=reason, raw=raw, protocol=protocol, peer=peer
            )
        except PublishError as exc:
            log.error("dlq_write_failed", error=repr(exc))
        return JSONResponse({"error": reason}, status_code=status)

    def unavailable(self, protocol: str, exc: Exception) -> Response:
        self.metrics.requests.labels(protocol, "unavailable").inc()
        log.error("publish_failed", protocol=protocol, error=repr(exc))
        return JSONResponse({"error": "event store unavailable, retry"}, status_code=503)

    async def isapi(self, request: Request) -> Response:
        t0 = time.perf_counter()
        peer = _peer(request)
        try:
            body = await read_body(request, self.settings.max_body_bytes)
        except TooLarge as big:
            return await self.reject(
                "isapi", 413, f"body exceeds {self.settings.max_body_bytes} bytes", big.head, peer
            )
        try:
            push = isapi.decode(body, request.headers.get("content-type"), default_tz=self.tz)
        except IsapiError as exc:
            return await self.reject("isapi", 400, str(exc), body, peer)
        a = push.alert
        camera = await self.ingest.registry.find_isapi(a.mac, a.ip, a.channel)
        if self.registered_only:
            # a body naming another registered camera than the token's is refused, as ?camera= is (ONVIF)
            camera, why = await self.authenticated(request, camera, camera.id if camera else None)
            if camera is None:
                return self.refused("isapi", 403, why or "refused", peer)
        device_id = camera.id if camera else isapi_device_id(push)
        statuses = []
        try:
            if a.is_heartbeat or device_id in self.ingest.liveness:
                st = self.ingest.alive(device_id, Protocol.ISAPI, self.settings.isapi_offline_s, peer=peer)
                if st is not None:
                    statuses.append(st)
            obs = [] if a.is_heartbeat else [from_isapi(push, device_id)]
            events = await self.ingest.publish(obs, camera=camera, peer=peer, statuses=statuses)
        except PublishError as exc:
            return self.unavailable("isapi", exc)
        self.metrics.requests.labels("isapi", "heartbeat" if a.is_heartbeat else "ok").inc()
        self.metrics.ack_seconds.labels("isapi").observe(time.perf_counter() - t0)
        return JSONResponse({"status": "ok", "published": len(events)})

    async def onvif(self, request: Request, camera: str | None = None) -> Response:
        t0 = time.perf_counter()
        peer = _peer(request)
        try:
            body = await read_body(request, self.settings.max_body_bytes)
        except TooLarge as big:
            return await self.reject(
                "onvif", 413, f"body exceeds {self.settings.max_body_bytes} bytes", big.head, peer
            )
        try:
            notes = onvif.decode(body)
        except OnvifError as exc:
            return await self.reject("onvif", 400, str(exc), body, peer)
        if camera:
            # a control character in the id (a NUL) would make PostgreSQL refuse the lookup and the alarm
            camera = clean_text(camera)
        cam = await self.ingest.registry.get(camera) if camera else None
        if cam is None and not camera and request.client is not None:
            cam = await self.ingest.registry.find_by_ip(self.sender(request))
        if self.registered_only:
            # ?camera= is a claim like any other: it cannot name another camera and inherit its place
            cam, why = await self.authenticated(request, cam, camera or None)
            if cam is None:
                return self.refused("onvif", 403, why or "refused", peer)
        device_id = (
            cam.id if cam else (camera or f"onvif:{request.client.host if request.client else 'unknown'}")
        )
        obs = [o for n in notes if (o := from_onvif(n, device_id, body)) is not None]
        try:
            await self.ingest.publish(obs, camera=cam, peer=peer)
        except PublishError as exc:
            return self.unavailable("onvif", exc)
        self.metrics.requests.labels("onvif", "ok").inc()
        self.metrics.ack_seconds.labels("onvif").observe(time.perf_counter() - t0)
        return Response(status_code=200)

    async def webhook(self, request: Request) -> Response:
        t0 = time.perf_counter()
        peer = _peer(request)
        if not self.secrets or self.idem is None:
            return JSONResponse({"error": "webhook endpoint is not configured"}, status_code=503)
        integrator = request.headers.get("x-alarmhub-integrator") or "default"
        secret = self.secrets.get(integrator)
        if secret is None:
            return self.refused("webhook", 401, "unknown integrator", peer)
        try:
            body = await read_body(request, min(self.settings.max_body_bytes, 256 * 1024))
        except TooLarge as big:
            return await self.reject("webhook", 413, "body exceeds 262144 bytes", big.head, peer)
        try:
            verify_signature(
                secret,
                request.headers.get("x-alarmhub-timestamp"),
                request.headers.get("x-alarmhub-signature"),
                body,
                self.ingest.now(),
                self.settings.webhook_max_skew_s,
                request.headers.get("idempotency-key") or "",
            )
        except WebhookError as exc:
            # Unauthenticated input is counted but not dead-lettered: the DLQ is no place an anonymous
            # sender may fill.
            self.metrics.requests.labels("webhook", "unauthorized").inc()
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        try:
            event, key = webhook.decode(body, request.headers.get("idempotency-key"))
        except WebhookError as exc:
            return await self.reject("webhook", exc.status, str(exc), body, peer)
        try:
            cam = await self.ingest.registry.get(event.camera_id)
        except Exception as exc:  # the registry (PostgreSQL) down: retry later, never publish unchecked
            return self.unavailable("webhook", exc)
        if not self.bound(cam, integrator):
            return self.refused(
                "webhook",
                403,
                f"camera {event.camera_id!r} is not registered to integrator {integrator!r}",
                peer,
            )
        slot = f"{integrator}\x1f{key}"  # one integrator's keys cannot collide with another's
        try:
            state = await self.idem.claim(slot)
        except Exception as exc:  # Redis down: refuse rather than risk duplicates or losses
            return self.unavailable("webhook", exc)
        if state == "done":
            self.metrics.requests.labels("webhook", "duplicate").inc()
            return JSONResponse({"status": "duplicate"})
        if state is not None:
            return JSONResponse(
                {"error": "a request with this Idempotency-Key is in progress"}, status_code=409
            )
        try:
            events = await self.ingest.publish(
                [from_webhook(event, key, body, integrator)], camera=cam, peer=peer
            )
        except PublishError as exc:
            await self.idem.release(slot)
            return self.unavailable("webhook", exc)
        await self.idem.done(slot)
        self.metrics.requests.labels("webhook", "ok").inc()
        self.metrics.ack_seconds.labels("webhook").observe(time.perf_counter() - t0)
        return JSONResponse(
            {"status": "ok", "published": len(events), "event_ids": [str(e.event_id) for e in events]}
        )


def build_http_app(settings: CameraSettings, ingest: CameraIngest, idem: IdempotencyStore | None) -> FastAPI:
    # the intake port serves the three routes only, no API description (tests/security/authz_matrix.py)
    app = FastAPI(title="alarmhub ingest-camera", docs_url=None, redoc_url=None, openapi_url=None)
    intake = _Intake(settings, ingest, idem)
    app.add_api_route("/events/isapi", intake.isapi, methods=["POST"])
    app.add_api_route("/events/onvif", intake.onvif, methods=["POST"])
    app.add_api_route("/events/webhook", intake.webhook, methods=["POST"])
    return app
