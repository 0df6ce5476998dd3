"""The GT06 tracker session: the login packet (IMEI) authenticates; status and alarm packets; operator
commands as 0x80 online commands, answered by the terminal's 0x15/0x21 text.

A command's serial is also its 0x80 server flag, which the terminal echoes in its answer: the answer is
matched by the flag, or — a clone that echoes another flag (Traccar sends 0) — to the oldest command
still waiting. A text naming a failure is a refusal (``commands_cutoff.refused``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from alarmhub_events import (
    Protocol,
    Qualifier,
)

from ..protocols import commands_cutoff, gt06
from ..protocols._common import Position
from ..signals import WatchBook
from ._base import _Base
from ._model import (
    CommandResult,
    Directory,
    Output,
    SessionConfig,
    VehicleInfo,
)

#: the position query of Concox units (user manual §7.1.1): answered ``Lat:N…,Lon:E…,…,DateTime:…`` or
#: ``No data!`` (no fix yet)
WHERE = "WHERE#"


class Gt06Session(_Base):
    protocol = Protocol.GT06
    COMMANDS = ("query_position", "cutoff", "restore")

    def __init__(
        self,
        directory: Directory | Mapping[str, VehicleInfo],
        config: SessionConfig,
        peer: str | None = None,
        *,
        max_frame: int = gt06.MAX_FRAME,
        watches: WatchBook | None = None,
    ) -> None:
        super().__init__(directory, config, peer, watches)
        self.framer = gt06.Framer(max_frame)
        self._serial = 0
        self.pending: dict[int, int] = {}
        """Server flags of commands sent and not yet answered → their serial (bounded, oldest dropped)."""

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
        if msg.protocol in (gt06.STRING_INFO, gt06.STRING_INFO_2):
            self._answer(msg, payload, out)
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

    # ----------------------------------------------------------------- operator commands

    def command(self, kind: str, **params: Any) -> tuple[int, bytes]:
        """A 0x80 online command for this terminal and its serial (also its server flag): ``cutoff`` /
        ``restore`` (the model's text), ``query_position`` (``WHERE#``, answered by a position text)."""
        if not self.authenticated:
            raise RuntimeError("terminal not logged in")
        spec = params.get("spec")
        self._serial = self._serial % 0xFFFF + 1  # 1 … 0xFFFF: never the flag 0 clones echo
        serial = self._serial
        if kind == "query_position":
            frame = commands_cutoff.encode_gt06_text(WHERE, serial, flag=serial)
        elif kind in ("cutoff", "restore") and isinstance(spec, commands_cutoff.CutoffModel):
            frame = commands_cutoff.encode_gt06(
                spec, serial, cut=kind == "cutoff", password=self.config.gt06_password, flag=serial
            )
        else:
            raise ValueError(f"unknown command {kind!r}")
        self.pending[serial] = serial
        while len(self.pending) > 64:
            self.pending.pop(next(iter(self.pending)))
        return serial, frame

    def _answer(self, msg: gt06.Gt06Message, payload: Any, out: Output) -> None:
        """A 0x15/0x21 text while commands wait: the answer of the one whose flag it echoes (or the oldest)."""
        if not self.pending or self.device_id is None:
            return
        c = msg.content
        flag_at = 1 if msg.protocol == gt06.STRING_INFO else 0
        flag = int.from_bytes(c[flag_at : flag_at + 4], "big") if len(c) >= flag_at + 4 else -1
        serial = self.pending.pop(flag, None)
        if serial is None:
            serial = self.pending.pop(next(iter(self.pending)))
        pos = payload if isinstance(payload, Position) else None
        text = str(payload.get("result") or payload.get("iccid") or "") if isinstance(payload, dict) else None
        result = 1 if commands_cutoff.refused(text) else 0
        out.commands.append(
            CommandResult(self.device_id, serial, commands_cutoff.GT06_ONLINE_COMMAND, result, pos, text)
        )
