"""The H02 tracker session: no login, the first frame names the device; a later frame without a device
id (some firmware leaves it empty) is the connection's device, as the deployed decoders take it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from alarmhub_events import (
    Protocol,
)

from ..protocols import h02
from ._base import _Base
from ._model import (
    Directory,
    Output,
    SessionConfig,
    VehicleInfo,
)


class H02Session(_Base):
    protocol = Protocol.H02

    def __init__(
        self,
        directory: Directory | Mapping[str, VehicleInfo],
        config: SessionConfig,
        peer: str | None = None,
        *,
        max_frame: int = h02.MAX_FRAME,
    ) -> None:
        super().__init__(directory, config, peer)
        self.framer = h02.Framer(max_frame)

    def _decode(self, frame: bytes) -> h02.H02Message:
        return h02.decode(frame, tz_hours=self.config.h02_tz_hours)

    def _handle(self, msg: h02.H02Message, now: datetime, out: Output) -> None:
        if not self.authenticated:
            if not msg.device_id:  # a frame without a device id cannot name the unit
                self._refuse(out)
                return
            if not self._admit(msg.device_id, out):
                out.close = True
                return
            self._online(msg.device_id, now, out)
        elif msg.device_id and msg.device_id != self.device_id:
            self._refuse(out)
            return
        if msg.position is not None:
            pos = msg.position
            alarms = pos.attributes.get("alarms") or []
            acc = pos.attributes.get("acc")
            self._position(
                pos,
                frozenset(alarms),
                now,
                msg.raw.decode("latin-1") if msg.kind != "binary" else msg.raw.hex(),
                out,
                acc=acc if isinstance(acc, bool) else None,
            )
