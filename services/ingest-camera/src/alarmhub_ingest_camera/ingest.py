"""The step every camera source shares: noise gate → locate at the camera → publish, durably.

Servers (HTTP routes, the SIP server, the ONVIF pollers) decode their protocol into observations and
call :meth:`CameraIngest.publish`; it returns only once the broker has every resulting event, which
is when the server may answer the camera. It holds no protocol knowledge.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime

from alarmhub_events import ALARMS_RAW, DEVICES_STATUS, AlarmEvent, DeviceStatus, Event, Protocol, utcnow
from alarmhub_kafka import DurableProducer
from alarmhub_runtime import get_logger

from .events import Liveness, Observation, alarm_event, device_status
from .metrics import CameraMetrics
from .noise import NoiseGate
from .registry import Camera, CameraRegistry

__all__ = ["CameraIngest"]

log = get_logger("alarmhub.ingest_camera")


class CameraIngest:
    def __init__(
        self,
        producer: DurableProducer,
        registry: CameraRegistry,
        metrics: CameraMetrics,
        gate: NoiseGate,
        *,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.producer = producer
        self.registry = registry
        self.metrics = metrics
        self.gate = gate
        self.liveness = Liveness()
        self._clock = clock
        self._mono = monotonic

    def now(self) -> datetime:
        return self._clock()

    async def publish(
        self,
        observations: Sequence[Observation],
        *,
        camera: Camera | None,
        peer: str | None,
        statuses: Sequence[DeviceStatus] = (),
    ) -> list[AlarmEvent]:
        """Gate, locate and write. Raises ``PublishError`` if the broker did not confirm (caller answers 5xx)."""
        now = self._clock()
        mono = self._mono()
        events: list[AlarmEvent] = []
        for obs in observations:
            verdict = self.gate.offer(obs.device_id, obs.rule, obs.active, mono)
            self.metrics.events.labels(obs.protocol.value, obs.kind.value, verdict.decision.value).inc()
            if verdict.publish:
                cam = camera if camera is not None else await self.registry.get(obs.device_id)
                events.append(alarm_event(obs, verdict, cam, peer=peer, now=now))
        items: list[tuple[str, Event, str | None]] = [(ALARMS_RAW, e, None) for e in events]
        items += [(DEVICES_STATUS, s, None) for s in statuses]
        if items:
            await self.producer.send_many(items)
            for e in events:
                log.info(
                    "alarm_published",
                    event_id=str(e.event_id),
                    device_id=e.source.device_id,
                    kind=e.kind.value,
                    qualifier=e.qualifier.value,
                    protocol=e.source.protocol.value,
                )
            for s in statuses:
                await self.registry.set_online(s.device_id, s.status.value == "online")
        return events

    def alive(
        self, device_id: str, protocol: Protocol, timeout_s: float, *, peer: str | None = None
    ) -> DeviceStatus | None:
        """A sign of life; returns the ``online`` status to publish when the device was not known online."""
        if self.liveness.touch(device_id, protocol, self._mono(), timeout_s):
            return device_status(device_id, protocol, True, now=self._clock(), peer=peer)
        return None

    def gone(self, device_id: str, protocol: Protocol, *, reason: str) -> DeviceStatus | None:
        if self.liveness.forget(device_id):
            return device_status(device_id, protocol, False, now=self._clock(), attributes={"reason": reason})
        return None

    def sweep(self) -> list[DeviceStatus]:
        now = self._clock()
        return [
            device_status(d, p, False, now=now, attributes={"reason": "silent"})
            for d, p in self.liveness.sweep(self._mono())
        ]

    async def publish_statuses(self, statuses: Sequence[DeviceStatus]) -> None:
        await self.publish([], camera=None, peer=None, statuses=statuses)
