"""The H02 tracker session: no login, the first frame names the device; a later frame without a device
id (some firmware leaves it empty) is the connection's device, as the deployed decoders take it.

Operator commands are ``*HQ,<id>,<command>,<hhmmss>,…#`` text; the terminal acknowledges with a V4 frame
naming the command and echoing its ``hhmmss`` (``protocols/h02.command_answer``), which is what matches
answer to command: two commands to one unit are never stamped with the same second. A V4 echoing no
waiting stamp answers the oldest waiting command of that name. ``ERROR`` (or another failure word) is a
refusal; the V4's fix is published like any other and travels with the answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from alarmhub_events import (
    Protocol,
)

from ..protocols import commands_cutoff, h02
from ..signals import WatchBook
from ._base import _Base
from ._model import (
    CommandResult,
    Directory,
    Output,
    SessionConfig,
    VehicleInfo,
)


class H02Session(_Base):
    protocol = Protocol.H02
    COMMANDS = ("cutoff", "restore")

    def __init__(
        self,
        directory: Directory | Mapping[str, VehicleInfo],
        config: SessionConfig,
        peer: str | None = None,
        *,
        max_frame: int = h02.MAX_FRAME,
        watches: WatchBook | None = None,
    ) -> None:
        super().__init__(directory, config, peer, watches)
        self.framer = h02.Framer(max_frame)
        self._serial = 0
        self.pending: dict[str, tuple[int, str]] = {}
        """Stamps (``hhmmss``) of commands sent and not yet acknowledged → (serial, command name)."""

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
        answer = h02.command_answer(msg)
        if answer is not None:
            self._answer(answer, msg, out)

    # ----------------------------------------------------------------- operator commands

    def command(self, kind: str, *, now: datetime | None = None, **params: Any) -> tuple[int, bytes]:
        """An ``S20`` cut/restore for this unit, stamped with ``now`` (a second no waiting command holds)."""
        if not self.authenticated or not self.device_id:
            raise RuntimeError("terminal not identified")
        spec = params.get("spec")
        if kind not in ("cutoff", "restore") or not isinstance(spec, commands_cutoff.CutoffModel):
            raise ValueError(f"unknown command {kind!r}")
        at = now or self.last_seen
        assert at is not None  # identified: it has sent a frame
        for _ in range(len(self.pending) + 1):
            if f"{at:%H%M%S}" not in self.pending:
                break
            at += timedelta(seconds=1)
        frame = commands_cutoff.encode_h02(spec, self.device_id, at, cut=kind == "cutoff")
        self._serial = (self._serial + 1) & 0xFFFF
        self.pending[f"{at:%H%M%S}"] = (self._serial, "S20")
        while len(self.pending) > 64:
            self.pending.pop(next(iter(self.pending)))
        return self._serial, frame

    def _answer(self, answer: h02.CommandAnswer, msg: h02.H02Message, out: Output) -> None:
        assert self.device_id is not None
        waiting = self.pending.pop(answer.stamp, None)
        if waiting is None:
            stamp = next((k for k, (_, name) in self.pending.items() if name == answer.command), None)
            if stamp is None:
                return  # an acknowledgement of a command sent by someone else (SMS, another platform)
            waiting = self.pending.pop(stamp)
        serial, name = waiting
        result = 1 if commands_cutoff.refused(answer.word) else 0
        out.commands.append(
            CommandResult(self.device_id, serial, name, result, msg.position, answer.word or None)
        )
