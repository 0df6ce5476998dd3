"""ONVIF subscriptions for every registered ONVIF camera: subscribe, renew before expiry, pull or receive.

Two modes (``ALARMHUB_ONVIF_MODE``):

- ``pullpoint`` (default): CreatePullPointSubscription, then PullMessages in a loop (long poll), Renew
  when the termination time comes within ``renew_margin_s``. Works through NAT and firewalls, since
  we open every connection.
- ``notify``: a base-notification Subscribe naming ``<consumer_url>?camera=<id>`` (our
  ``POST /events/onvif``), renewed the same way; events arrive on the HTTP shell.

Each camera has one task; failures back off exponentially (capped) and resubscribe from scratch.
The camera list is re-read every ``refresh_s``; cameras removed from the registry are unsubscribed.
Only ``onvif_url`` (the device's Events service address) and the credentials are read from the row.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import quote

import httpx
from alarmhub_kafka import PublishError
from alarmhub_runtime import get_logger

from .config import CameraSettings
from .events import from_onvif
from .ingest import CameraIngest
from .protocols import onvif
from .registry import Camera

__all__ = ["OnvifSubscriptionManager"]

log = get_logger("alarmhub.ingest_camera.onvif")
SOAP_CT = "application/soap+xml; charset=utf-8"


class OnvifSubscriptionManager:
    def __init__(
        self,
        settings: CameraSettings,
        ingest: CameraIngest,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        nonce: Callable[[], bytes] = lambda: os.urandom(16),
    ) -> None:
        self.settings = settings
        self.ingest = ingest
        self._transport = transport
        self._nonce = nonce
        self._client: httpx.AsyncClient | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._cameras: dict[str, Camera] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self.subscriptions: dict[str, onvif.SubscriptionInfo] = {}
        self.renewals = 0

    async def start(self) -> None:
        if self.settings.onvif_mode == "off":
            return
        self._client = httpx.AsyncClient(transport=self._transport, timeout=httpx.Timeout(10.0, read=30.0))
        self._loop_task = asyncio.create_task(self._refresh_loop(), name="onvif-refresh")

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        for cid in list(self._tasks):
            await self._drop(cid)
        if self._client is not None:
            await self._client.aclose()

    async def _refresh_loop(self) -> None:
        while True:
            try:
                cams = await self.ingest.registry.onvif_cameras(self.settings.onvif_max_cameras)
                self.sync(cams)
            except Exception as exc:
                log.warning("onvif_camera_list_failed", error=repr(exc))
            await asyncio.sleep(self.settings.onvif_refresh_s)

    def sync(self, cameras: list[Camera]) -> None:
        wanted = {c.id: c for c in cameras if c.onvif_url}
        for cid in list(self._tasks):
            if cid not in wanted or wanted[cid] != self._cameras.get(cid):
                self._tasks.pop(cid).cancel()
                self.subscriptions.pop(cid, None)
        for cid, cam in wanted.items():
            if cid not in self._tasks:
                self._cameras[cid] = cam
                self._tasks[cid] = asyncio.create_task(self._run(cam), name=f"onvif-{cid}")
        self.ingest.metrics.onvif_subscriptions.set(len(self.subscriptions))

    async def _drop(self, cid: str) -> None:
        task = self._tasks.pop(cid, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        info = self.subscriptions.pop(cid, None)
        cam = self._cameras.pop(cid, None)
        if info is not None and cam is not None and self._client is not None:
            with contextlib.suppress(Exception):
                await self._post(cam, info.address, onvif.encode_unsubscribe(info.address, self._creds(cam)))

    def _creds(self, cam: Camera) -> onvif.Credentials | None:
        if not cam.username:
            return None
        return onvif.Credentials(cam.username, cam.password or "", self._nonce(), self.ingest.now())

    async def _post(self, cam: Camera, url: str, body: bytes) -> bytes:
        assert self._client is not None
        # HTTP digest only engages when the camera answers 401; WS-UsernameToken is in the body already
        auth: httpx.Auth | httpx._client.UseClientDefault = (
            httpx.DigestAuth(cam.username, cam.password or "") if cam.username else httpx.USE_CLIENT_DEFAULT
        )
        resp = await self._client.post(url, content=body, headers={"Content-Type": SOAP_CT}, auth=auth)
        if resp.status_code >= 400 and b"Fault" not in resp.content:
            raise onvif.OnvifError(f"HTTP {resp.status_code} from {url}")
        return resp.content

    @staticmethod
    def _local_expiry(info: onvif.SubscriptionInfo, now: datetime) -> datetime | None:
        """The termination time on our clock: camera clocks drift, so use the lifetime the camera granted."""
        if info.termination_time is None:
            return None
        if info.current_time is None:
            return info.termination_time
        return now + (info.termination_time - info.current_time)

    def _renew_due(self, expires: datetime | None, now: datetime) -> bool:
        return expires is not None and expires - now <= timedelta(seconds=self.settings.onvif_renew_margin_s)

    async def _subscribe(self, cam: Camera) -> onvif.SubscriptionInfo:
        assert cam.onvif_url
        ttl = self.settings.onvif_ttl_s
        if self.settings.onvif_mode == "notify":
            if not self.settings.onvif_consumer_url:
                raise onvif.OnvifError("notify mode needs ALARMHUB_ONVIF_CONSUMER_URL")
            consumer = f"{self.settings.onvif_consumer_url}?camera={quote(cam.id)}"
            body = onvif.encode_subscribe(cam.onvif_url, consumer, ttl, self._creds(cam))
        else:
            body = onvif.encode_create_pullpoint(cam.onvif_url, ttl, self._creds(cam))
        info = onvif.decode_subscription_response(await self._post(cam, cam.onvif_url, body))
        if not info.address:
            raise onvif.OnvifError("subscription response without a SubscriptionReference address")
        log.info("onvif_subscribed", camera_id=cam.id, mode=self.settings.onvif_mode, address=info.address)
        return info

    async def _renew(self, cam: Camera, info: onvif.SubscriptionInfo) -> onvif.SubscriptionInfo:
        reply = await self._post(
            cam, info.address, onvif.encode_renew(info.address, self.settings.onvif_ttl_s, self._creds(cam))
        )
        renewed = onvif.decode_subscription_response(reply)
        self.renewals += 1
        return onvif.SubscriptionInfo(info.address, renewed.current_time, renewed.termination_time)

    async def _run(self, cam: Camera) -> None:
        delay = 1.0
        while True:
            try:
                info = await self._subscribe(cam)
                expires = self._local_expiry(info, self.ingest.now())
                self.subscriptions[cam.id] = info
                self.ingest.metrics.onvif_subscriptions.set(len(self.subscriptions))
                delay = 1.0
                while True:
                    if self._renew_due(expires, self.ingest.now()):
                        info = await self._renew(cam, info)
                        expires = self._local_expiry(info, self.ingest.now())
                        self.subscriptions[cam.id] = info
                    if self.settings.onvif_mode == "notify":
                        await asyncio.sleep(max(1.0, self._seconds_to_renew(expires)))
                        continue
                    reply = await self._post(
                        cam, info.address, onvif.encode_pull_messages(info.address, 5, 100, self._creds(cam))
                    )
                    await self._deliver(cam, reply)
            except asyncio.CancelledError:
                raise
            except (onvif.OnvifError, httpx.HTTPError, PublishError) as exc:
                self.subscriptions.pop(cam.id, None)
                self.ingest.metrics.onvif_errors.labels(type(exc).__name__).inc()
                log.warning(
                    "onvif_subscription_failed", camera_id=cam.id, error=str(exc)[:200], retry_in_s=delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)

    def _seconds_to_renew(self, expires: datetime | None) -> float:
        if expires is None:
            return 30.0
        left = (expires - self.ingest.now()).total_seconds() - self.settings.onvif_renew_margin_s
        return min(left, 60.0)

    async def _deliver(self, cam: Camera, reply: bytes) -> None:
        notes = onvif.decode(reply)
        # a PullMessagesResponse also carries the new termination time, which PullMessages extends
        obs = [o for n in notes if (o := from_onvif(n, cam.id, reply)) is not None]
        if obs:
            await self.ingest.publish(obs, camera=cam, peer=None)
