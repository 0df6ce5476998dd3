"""The GT06 tracker session: the login packet (IMEI) authenticates; status and alarm packets."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from alarmhub_events import (
    Protocol,
    Qualifier,
)

from ..protocols import gt06
from ..protocols._common import Position
from ._base import _Base
from ._model import (
    Directory,
    Output,
    SessionConfig,
    VehicleInfo,
)


class Gt06Session(_Base):
    protocol = Protocol.GT06

    def __init__(
        self,
        directory: Directory | Mapping[str, VehicleInfo],
        config: SessionConfig,
        peer: str | None = None,
        *,
        max_frame: int = gt06.MAX_FRAME,
    ) -> None:
        super().__init__(directory, config, peer)
        self.framer = gt06.Framer(max_frame)

    def _decode(self, frame: bytes) -> gt06.Gt06Message:
        return gt06.decode(frame)

    def _handle(self, msg: gt06.Gt06Message, now: datetime, out: Output) -> None:
        if not msg.crc_ok or not msg.length_ok:
            out.tolerated += 1
        payload = gt06.read(msg, tz_hours=self.config.gt06_tz_hours)
        if isinstance(payload, gt06.Login):
            if self.authenticated and payload.imei != self.device_id:
                self._refuse(out)
                return
            if not self._admit(payload.imei, out):
                out.close = True
                return
            if not self.authenticated:
                self._online(payload.imei, now, out)
            out.reply += gt06.reply(msg) or b""
            return
        if not self.authenticated:
            self._refuse(out)
            return
        raw = msg.raw.hex()
        if isinstance(payload, gt06.Heartbeat):
            listed = payload.attributes.get("alarms") or (
                [payload.attributes["alarm"]] if "alarm" in payload.attributes else []
            )
            names = frozenset(n for n in listed if isinstance(n, str))
            info = {"terminal_info": payload.terminal_info}
            # the ignition as the packet states it; an alarm or status packet without a status block
            # (0x95, 0x70, AZ735's 0x33 without a fix) says nothing about it
            acc = payload.attributes.get("acc")
            watched = self._state(acc if isinstance(acc, bool) else None, None, now, now, out, info)
            self._edges(names, now, now, raw, out, info)
            for sig, attrs in watched:
                self._alarm(sig.value, Qualifier.NEW, now, now, raw, out, {**info, **attrs})
        elif isinstance(payload, Position):
            # packets with a status block or an event (0x16/0x26/0x27, 0x19, 0xA4, 0xA5, 0x95) name their
            # alarms; plain location packets have none
            names = frozenset(payload.alarms)
            acc = payload.attributes.get("acc")
            self._position(
                payload, names, now, raw, out, level=False, acc=acc if isinstance(acc, bool) else None
            )
        answer = gt06.reply(msg)
        if answer is not None:
            out.reply += answer
