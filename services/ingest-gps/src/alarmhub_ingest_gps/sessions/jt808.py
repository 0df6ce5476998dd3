"""The JT/T 808 terminal session: registration and authentication code, locations, commands."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from alarmhub_events import (
    Protocol,
)

from ..protocols import commands_cutoff, jt808
from ..protocols._common import FrameError, Position
from ..signals import WatchBook
from ._base import _Base
from ._model import (
    CommandResult,
    Directory,
    Output,
    RegistryWrite,
    SessionConfig,
    VehicleInfo,
    derive_auth_code,
)

_NONE: frozenset[str] = frozenset()


class Jt808Session(_Base):
    protocol = Protocol.JT808

    def __init__(
        self,
        directory: Directory | Mapping[str, VehicleInfo],
        config: SessionConfig,
        peer: str | None = None,
        *,
        max_frame: int = jt808.MAX_FRAME,
        watches: WatchBook | None = None,
    ) -> None:
        super().__init__(directory, config, peer, watches)
        self.framer = jt808.Framer(max_frame)
        self.reassembler = jt808.Reassembler()
        self._serial = 0
        self.version: int | None = None
        self.phone: str | None = None
        self.pending: dict[int, int] = {}
        """Serials of commands sent to this terminal → their message id (bounded, oldest dropped)."""

    def next_serial(self) -> int:
        self._serial = (self._serial + 1) & 0xFFFF
        return self._serial

    def _decode(self, frame: bytes) -> jt808.Message | None:
        """A whole message, or None while a multi-packet message is incomplete. Sub-packages are
        reassembled for authenticated terminals only (the reassembler is bounded per connection)."""
        msg = jt808.decode(frame)
        if msg.header.package_total is not None and not self.authenticated:
            raise FrameError("sub-package before authentication")
        return self.reassembler.add(msg)

    def _raw(self, frame: bytes) -> bytes:
        return b"\x7e" + frame + b"\x7e"

    def _refuse_body(self, msg: jt808.Message, out: Output) -> None:
        # header intact, body not: NAK with "message error" so the terminal does not wait for a retry
        if msg.header.msg_id != jt808.T_GENERAL_RESPONSE:
            out.reply += jt808.reply(msg.header, self.next_serial(), jt808.RESULT_BAD_MESSAGE)

    def _end_of_read(self, out: Output) -> None:
        if self.framer.oversize:
            out.dlq.append((b"", f"{self.framer.oversize} oversized frame(s) dropped"))
            self.framer.oversize = 0

    def _handle(self, msg: jt808.Message, now: datetime, out: Output) -> None:
        if not (msg.check_ok and msg.length_ok):
            out.tolerated += 1
        h = msg.header
        mid = h.msg_id
        device = jt808.device_id(h.phone)
        if h.encryption:
            # RSA-encrypted bodies need a key exchange nobody deploys; refuse rather than misread.
            out.reply += jt808.reply(h, self.next_serial(), jt808.RESULT_UNSUPPORTED)
            return
        if mid == jt808.T_REGISTER:
            self._register(msg, device, out)
            return
        if mid == jt808.T_AUTH:
            self._authenticate(msg, device, now, out)
            return
        if not self.authenticated or device != self.device_id:
            self._refuse(out)
            out.reply += jt808.reply(h, self.next_serial(), jt808.RESULT_FAILURE)
            return
        raw = msg.raw  # hex only if an alarm carries it: most reports carry none
        tz = self.config.jt808_tz_hours
        if mid == jt808.T_LOCATION:
            self._location(jt808.decode_location(msg.body, tz_hours=tz), now, raw, out)
        elif mid == jt808.T_BATCH:
            for pos in jt808.decode_batch(msg.body, tz_hours=tz).positions:
                self._location(pos, now, raw, out)
        elif mid == jt808.T_POSITION_REPLY:
            serial, pos = jt808.decode_position_reply(msg.body, tz_hours=tz)
            self._location(pos, now, raw, out)
            command = self.pending.pop(serial, jt808.P_QUERY_POSITION)
            out.commands.append(CommandResult(device, serial, command, 0, pos))
        elif mid in (jt808.T_LOCK_LOCATION, jt808.T_LOCK_STORED):
            for pos in jt808.read(msg, tz_hours=tz):
                self._location(pos, now, raw, out)
            if h.vendor_ack:
                out.reply += jt808.reply_lock(h)
            return  # answered with 0x4401 when asked, never with 0x8001
        elif mid in jt808.POSITION_MESSAGES:  # vendors' 0x0210 batch and 0x0900 (type 0xF0) record
            for pos in jt808.read(msg, tz_hours=tz):
                self._location(pos, now, raw, out)
        elif mid == commands_cutoff.T_CONTROL_REPLY:  # 0x0500: the vehicle control's answer
            serial, pos = commands_cutoff.read_control_reply(msg.body, tz_hours=tz)
            self._location(pos, now, raw, out)
            self.pending.pop(serial, None)
            out.commands.append(CommandResult(device, serial, commands_cutoff.P_VEHICLE_CONTROL, 0, pos))
        elif mid == jt808.T_GENERAL_RESPONSE:
            resp = jt808.decode_general_response(msg.body)
            self.pending.pop(resp.reply_serial, None)
            out.commands.append(CommandResult(device, resp.reply_serial, resp.reply_id, resp.result))
            return  # a response is not answered
        elif mid == jt808.T_LOGOUT:
            # the terminal gives its code back: it may register again (a new SIM, a reflash)
            out.registry.append(RegistryWrite(device, self.protocol.value, flagged=False, reset_auth=True))
            out.reply += jt808.reply(h, self.next_serial())
            out.publish.extend(self.connection_lost(now, "logout").publish)
            out.close = True
            return
        elif mid != jt808.T_HEARTBEAT:
            out.reply += jt808.reply(h, self.next_serial(), jt808.RESULT_UNSUPPORTED)
            return
        out.reply += jt808.reply(h, self.next_serial())

    def _location(self, pos: Position, now: datetime, raw: str | bytes, out: Output) -> None:
        bits = pos.alarm_bits
        names = frozenset(jt808.ALARM_BITS[b] for b in jt808.ALARM_BITS if bits >> b & 1) if bits else _NONE
        if pos.alarms:  # vendors' items (protocols/_jt808_items.py)
            names = names | frozenset(pos.alarms)
        self._position(pos, names, now, raw, out, acc=bool(pos.status_bits & 0x01))

    def _register(self, msg: jt808.Message, device: str, out: Output) -> None:
        h = msg.header
        reg = jt808.decode_registration(msg.body, is_2019=h.is_2019)
        if not self._admit(
            device,
            out,
            plate=reg.plate or None,
            plate_colour=reg.plate_colour,
            description=f"{reg.manufacturer} {reg.model} {reg.terminal_id}".strip() or None,
        ):
            self._refuse(out)
            out.reply += jt808.reply_register(h, self.next_serial(), jt808.REG_NO_TERMINAL)
            return
        info = self._lookup(device)
        if info is not None and info.auth_code:
            # The code is given out once. Anyone can name a registered terminal's number in a 0x0100:
            # answering with its code would hand over the terminal (its alarms, its command routing).
            self._refuse(out)
            out.reregistrations += 1
            out.reply += jt808.reply_register(h, self.next_serial(), jt808.REG_TERMINAL_TAKEN)
            return
        code = derive_auth_code(self.config.auth_secret, device)
        if info is not None:
            out.registry.append(
                RegistryWrite(device, self.protocol.value, flagged=info.flagged, auth_code=code)
            )
        elif out.registry and out.registry[-1].device_id == device:
            w = out.registry[-1]
            out.registry[-1] = RegistryWrite(
                w.device_id, w.protocol, w.flagged, code, w.plate, w.plate_colour, w.description
            )
        out.reply += jt808.reply_register(h, self.next_serial(), jt808.REG_OK, code)

    def _authenticate(self, msg: jt808.Message, device: str, now: datetime, out: Output) -> None:
        h = msg.header
        auth = jt808.decode_auth(msg.body, is_2019=h.is_2019)
        info = self._lookup(device)
        # bytes, not str: compare_digest refuses non-ASCII text, and a code is whatever the terminal sent
        code = auth.code.encode("utf-8", "surrogateescape")
        ok = hmac.compare_digest(code, derive_auth_code(self.config.auth_secret, device).encode()) or bool(
            info
            and info.auth_code
            and hmac.compare_digest(code, info.auth_code.encode("utf-8", "surrogateescape"))
        )
        if ok and not self._admit(device, out):
            ok = False
        if not ok:
            self._refuse(out)
            out.reply += jt808.reply(h, self.next_serial(), jt808.RESULT_FAILURE)
            return
        self.version, self.phone = h.version, h.phone
        if not self.authenticated:
            self._online(device, now, out)
        out.reply += jt808.reply(h, self.next_serial())

    # ----------------------------------------------------------------- operator commands

    def command(self, kind: str, **params: Any) -> tuple[int, bytes]:
        """Bytes of an operator command for this terminal and its serial (for correlating the reply)."""
        if not self.authenticated or self.phone is None:
            raise RuntimeError("terminal not authenticated")
        serial = self.next_serial()
        if kind == "query_position":
            frame, mid = (
                jt808.encode_query_position(self.phone, serial, version=self.version),
                jt808.P_QUERY_POSITION,
            )
        elif kind == "track":
            frame = jt808.encode_temporary_tracking(
                self.phone,
                serial,
                int(params.get("interval_s", 10)),
                int(params.get("validity_s", 600)),
                version=self.version,
            )
            mid = jt808.P_TEMP_TRACKING
        elif kind == "text":
            frame = jt808.encode_text_message(
                self.phone, serial, str(params.get("text", "")), version=self.version
            )
            mid = jt808.P_TEXT
        elif kind in ("cutoff", "restore") and isinstance(params.get("spec"), commands_cutoff.CutoffModel):
            mid, frame = commands_cutoff.encode_jt808(
                params["spec"], self.phone, serial, cut=kind == "cutoff", version=self.version
            )
        else:
            raise ValueError(f"unknown command {kind!r}")
        self.pending[serial] = mid
        while len(self.pending) > 64:
            self.pending.pop(next(iter(self.pending)))
        return serial, frame
