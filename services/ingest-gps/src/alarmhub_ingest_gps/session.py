"""Sans-IO tracker sessions: bytes in, events to publish and reply bytes out.

One session object per TCP connection. ``feed(data, now)`` returns an :class:`Output`; the server
publishes ``output.publish`` (and performs ``output.registry`` writes), and only once the broker
confirmed them writes ``output.reply`` to the terminal — so a terminal never hears "got it" for a
position the platform could still lose. Nothing here touches a socket, a clock or a database: the
vehicle registry is a :class:`Directory` (an in-memory view the app refreshes), time is passed in.

Rules, per protocol:

- **JT/T 808** — 0x0100 registration answers 0x8100 with an authentication code **once**: a terminal
  whose registry row already holds a code is answered result 3 (terminal already registered), counted
  (``Output.reregistrations``) and not given the code again, until it logs out (0x0003 clears the stored
  code) or an operator resets it (docs/security.md). 0x0102 must present the code; until then every
  other message is refused with 0x8001 result 1 and nothing is published, sub-packages are not even
  reassembled, and after ``max_refused`` refusals the connection is closed. The code is an HMAC of the
  device id under the gateway's secret, so any gateway process can verify a terminal that registered
  through another one; a code stored in the registry is accepted too.
- **GT06** — the login packet (IMEI) is the authentication; packets before it are dropped.
- **H02** — no login exists: the first frame names the device, later frames must name the same one.

Unregistered terminals follow :class:`UnregisteredPolicy` (default ``reject``): ``reject`` refuses them (0x8100 result 4,
no GT06 login reply, H02 connection closed), ``accept`` lets them in and writes them to the registry
flagged for an operator to review.

Alarm words are levels (the bit stays set while the condition holds), so an alarm is published when
a bit rises (``new``) and when it falls (``restore``), not on every report; GT06 alarm packets are
events and each one is published. Ignition or movement of a vehicle its owner armed is a
``vehicle_theft`` alarm whatever the terminal says (``signals.VehicleWatch``: the parked spot and radius,
so GPS jitter of a parked car never alarms). Every alarm carries the shared vehicle vocabulary
(``alarmhub_events.VehicleSignal`` / ``VehicleAttr``): ``attributes.signal`` and the watch's ``armed``,
``ignition``, ``parked``, ``speed_kmh`` — the words triage's rules read.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from typing import Protocol as TypingProtocol

from alarmhub_events import (
    ALARMS_RAW,
    DEVICES_STATUS,
    TELEMETRY_GPS,
    AlarmEvent,
    AlarmKind,
    DeviceStatus,
    DeviceStatusKind,
    Event,
    GpsFix,
    Location,
    Protocol,
    Qualifier,
    Source,
    VehicleAttr,
    VehicleSignal,
)

from .fastfix import fast_fix
from .protocols import gt06, h02, jt808
from .protocols._common import FrameError, Position
from .signals import VehicleWatch, WatchConfig, signal_of

__all__ = [
    "ALARM_KINDS",
    "CommandResult",
    "Directory",
    "Gt06Session",
    "H02Session",
    "Jt808Session",
    "Output",
    "RegistryWrite",
    "SessionConfig",
    "UnregisteredPolicy",
    "VehicleInfo",
    "derive_auth_code",
]


#: What a malformed frame can raise from decoding or from validating the contract models built from it
#: (pydantic's ValidationError is a ValueError). These are the peer's fault: DLQ, not crash.
_PEER_ERRORS = (FrameError, ValueError, IndexError, struct.error)


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


class UnregisteredPolicy(StrEnum):
    REJECT = "reject"
    ACCEPT = "accept"
    """Accept, and write the terminal to the registry with ``flagged = true``."""


@dataclass(frozen=True, slots=True)
class VehicleInfo:
    device_id: str
    protocol: str = ""
    plate: str | None = None
    plate_colour: int | None = None
    armed: bool = False
    flagged: bool = False
    auth_code: str | None = None


class Directory(TypingProtocol):
    def get(self, device_id: str) -> VehicleInfo | None: ...


class DictDirectory(dict[str, VehicleInfo]):
    """The simplest :class:`Directory` (tests, and the app's in-memory registry view)."""


@dataclass(frozen=True, slots=True)
class RegistryWrite:
    """A row the server upserts into ``vehicles`` before the reply that depends on it."""

    device_id: str
    protocol: str
    flagged: bool
    auth_code: str | None = None
    plate: str | None = None
    plate_colour: int | None = None
    description: str | None = None
    reset_auth: bool = False
    """Clear the stored authentication code (the terminal logged out): it may register again."""


@dataclass(frozen=True, slots=True)
class CommandResult:
    """A terminal's answer to an operator command (0x0001 for 0x8202/0x8300, 0x0201 for 0x8201)."""

    device_id: str
    serial: int
    command: int
    result: int
    position: Position | None = None


@dataclass(slots=True)
class Output:
    publish: list[tuple[str, Event]] = field(default_factory=list)
    reply: bytearray = field(default_factory=bytearray)
    registry: list[RegistryWrite] = field(default_factory=list)
    dlq: list[tuple[bytes, str]] = field(default_factory=list)
    commands: list[CommandResult] = field(default_factory=list)
    frames: int = 0
    refused: int = 0
    reregistrations: int = 0
    """0x0100 refused with result 3: the terminal already holds a code (reflashed tracker or an impostor)."""
    tolerated: int = 0
    """Frames decoded although their check code (or JT/T 808 body length) did not match."""
    close: bool = False


#: the development default of ``ALARMHUB_GPS_AUTH_SECRET``: anyone who reads this file can mint codes with it
DEV_AUTH_SECRET = "alarmhub-dev-secret"


@dataclass(frozen=True, slots=True)
class SessionConfig:
    policy: UnregisteredPolicy = UnregisteredPolicy.ACCEPT  # the service's setting defaults to reject
    auth_secret: bytes = DEV_AUTH_SECRET.encode()
    jt808_tz_hours: float = 8.0
    gt06_tz_hours: float = 0.0
    h02_tz_hours: float = 0.0
    max_refused: int = 5
    armed_speed_kmh: float = 10.0
    """Speed at which an armed vehicle counts as moving (GPS noise stays below it when parked)."""
    parked_radius_m: float = 100.0
    """Distance from where an armed vehicle was parked beyond which it has moved (jitter stays inside)."""
    max_future_s: float = 86_400.0
    """Device times further ahead of the receive time are replaced by it (bad RTC, wrong zone)."""


def derive_auth_code(secret: bytes, device: str) -> str:
    """The JT/T 808 authentication code this gateway issues: stable per device, verifiable anywhere."""
    return hmac.new(secret, device.encode(), hashlib.sha256).hexdigest()[:16].upper()


#: Alarm names from every protocol → the contract's kind. Names absent here stay in attributes only
#: (driving-behaviour warnings such as fatigue are not police matters).
ALARM_KINDS: dict[str, AlarmKind] = {
    "emergency": AlarmKind.VEHICLE_SOS,
    "sos": AlarmKind.VEHICLE_SOS,
    "vehicle_stolen": AlarmKind.VEHICLE_THEFT,
    "illegal_ignition": AlarmKind.VEHICLE_THEFT,
    "illegal_displacement": AlarmKind.VEHICLE_THEFT,
    "illegal_door_open": AlarmKind.VEHICLE_THEFT,
    "displacement": AlarmKind.VEHICLE_THEFT,
    "removal": AlarmKind.TAMPER,
    "tamper": AlarmKind.TAMPER,
    "movement": AlarmKind.VEHICLE_THEFT,
    "tow": AlarmKind.VEHICLE_THEFT,
    "door": AlarmKind.VEHICLE_THEFT,
    "armed_ignition": AlarmKind.VEHICLE_THEFT,
    "armed_movement": AlarmKind.VEHICLE_THEFT,
    "parked_displacement": AlarmKind.VEHICLE_THEFT,
    "vibration": AlarmKind.VIBRATION,
    "collision_warning": AlarmKind.VIBRATION,
    "rollover_warning": AlarmKind.OTHER,
    "collision": AlarmKind.VIBRATION,
    "power_cut": AlarmKind.POWER_CUT,
    "power_off": AlarmKind.POWER_CUT,
    "area_in_out": AlarmKind.GEOFENCE,
    "route_in_out": AlarmKind.GEOFENCE,
    "route_deviation": AlarmKind.GEOFENCE,
    "geofence": AlarmKind.GEOFENCE,
    "geofence_enter": AlarmKind.GEOFENCE,
    "geofence_exit": AlarmKind.GEOFENCE,
    "overspeed": AlarmKind.OVERSPEED,
    "gnss_fault": AlarmKind.TROUBLE,
    "gnss_antenna_cut": AlarmKind.TROUBLE,
    "gnss_antenna_short": AlarmKind.TROUBLE,
    "power_low": AlarmKind.TROUBLE,
    "low_battery": AlarmKind.TROUBLE,
    "low_external_battery": AlarmKind.TROUBLE,
    "low_internal_battery": AlarmKind.TROUBLE,
    "vss_fault": AlarmKind.TROUBLE,
    "fuel_abnormal": AlarmKind.TROUBLE,
    "danger_warning": AlarmKind.OTHER,
}

_NONE: frozenset[str] = frozenset()
_JT808 = Protocol.JT808
_POWER_LOW = frozenset({"power_low", "low_battery", "low_external_battery", "low_internal_battery"})
_POWER_CUT = frozenset({"power_cut", "power_off"})


class _Framer(TypingProtocol):
    """A protocol's stream splitter (``protocols/*.Framer``)."""

    oversize: int

    def feed(self, data: bytes) -> list[bytes]: ...


class _Base:
    """What every protocol session shares: identity, the vehicle's state, and event building."""

    protocol: Protocol

    def __init__(
        self, directory: Directory | Mapping[str, VehicleInfo], config: SessionConfig, peer: str | None = None
    ) -> None:
        self.directory = directory
        self.config = config
        self.peer = peer
        self.device_id: str | None = None
        self.authenticated = False
        self.closed = False
        self.refused = 0
        self.frames = 0
        self.last_seen: datetime | None = None
        self._alarms: frozenset[str] = frozenset()
        self._acc: bool | None = None
        self._watch = VehicleWatch(WatchConfig(config.armed_speed_kmh, config.parked_radius_m))
        self._last_fix: tuple[float, float] | None = None
        self._max_future = timedelta(seconds=config.max_future_s)

    # ----------------------------------------------------------------- bytes in

    framer: _Framer

    def feed(self, data: bytes, now: datetime) -> Output:
        """The one read loop of every tracker protocol: split, decode, handle; a peer's bad frame is
        dead-lettered (and, where the protocol can say so, refused) and the session carries on."""
        out = Output()
        if self.closed:
            return out
        for frame in self.framer.feed(data):
            out.frames += 1
            self.frames += 1
            try:
                msg = self._decode(frame)
            except _PEER_ERRORS as exc:
                out.dlq.append((self._raw(frame), _describe(exc)))  # no trustworthy header: no reply
                continue
            if msg is None:
                continue
            try:
                self._handle(msg, now, out)
            except _PEER_ERRORS as exc:
                out.dlq.append((self._raw(frame), _describe(exc)))
                self._refuse_body(msg, out)
            if out.close:
                break
        self._end_of_read(out)
        self.last_seen = now
        return out

    def _decode(self, frame: bytes) -> Any:
        """One frame → the protocol's message (None: nothing to handle yet); raises on a bad frame."""
        raise NotImplementedError

    def _handle(self, msg: Any, now: datetime, out: Output) -> None:
        raise NotImplementedError

    def _raw(self, frame: bytes) -> bytes:
        """The frame as the dead-letter record keeps it."""
        return frame

    def _refuse_body(self, msg: Any, out: Output) -> None:
        """Answer a message whose header decoded but whose body did not (default: no answer)."""

    def _end_of_read(self, out: Output) -> None:
        """After each read (default: nothing)."""

    # ----------------------------------------------------------------- identity and policy

    def _lookup(self, device: str) -> VehicleInfo | None:
        return self.directory.get(device)

    def _admit(self, device: str, out: Output, **reg: Any) -> bool:
        """Apply the unregistered-terminal policy; queue a flagged registry row when accepting one."""
        info = self._lookup(device)
        if info is not None:
            return True
        if self.config.policy is UnregisteredPolicy.REJECT:
            return False
        out.registry.append(RegistryWrite(device, self.protocol.value, flagged=True, **reg))
        return True

    def _online(self, device: str, now: datetime, out: Output) -> None:
        self.device_id = device
        self.authenticated = True
        out.publish.append(
            (
                DEVICES_STATUS,
                DeviceStatus(
                    device_id=device,
                    protocol=self.protocol,
                    status=DeviceStatusKind.ONLINE,
                    occurred_at=now,
                    received_at=now,
                    peer=self.peer,
                    attributes=self._registry_attrs(device),
                ),
            )
        )

    def _registry_attrs(self, device: str) -> dict[str, Any]:
        info = self._lookup(device)
        if info is None:
            return {"registered": False}
        attrs: dict[str, Any] = {"registered": True}
        if info.plate:
            attrs["plate"] = info.plate
        if info.flagged:
            attrs["flagged"] = True
        return attrs

    def connection_lost(self, now: datetime, reason: str = "disconnected") -> Output:
        """The link is gone (peer closed, idle timeout, logout): publish ``offline`` once."""
        out = Output()
        if self.authenticated and self.device_id and not self.closed:
            out.publish.append(
                (
                    DEVICES_STATUS,
                    DeviceStatus(
                        device_id=self.device_id,
                        protocol=self.protocol,
                        status=DeviceStatusKind.OFFLINE,
                        occurred_at=now,
                        received_at=now,
                        peer=self.peer,
                        attributes={"reason": reason},
                    ),
                )
            )
        self.closed = True
        return out

    def _refuse(self, out: Output) -> None:
        self.refused += 1
        out.refused += 1
        if self.refused >= self.config.max_refused:
            out.close = True

    # ----------------------------------------------------------------- normalization

    def _occurred(self, pos: Position, now: datetime) -> datetime:
        t = pos.time
        if t is None or t - now > self._max_future:
            return now
        return t

    def _status(self, kind: DeviceStatusKind, at: datetime, now: datetime, out: Output, **attrs: Any) -> None:
        assert self.device_id is not None
        out.publish.append(
            (
                DEVICES_STATUS,
                DeviceStatus(
                    device_id=self.device_id,
                    protocol=self.protocol,
                    status=kind,
                    occurred_at=at,
                    received_at=now,
                    peer=self.peer,
                    attributes=attrs,
                ),
            )
        )

    def _alarm(
        self,
        name: str,
        qualifier: Qualifier,
        at: datetime,
        now: datetime,
        raw: str | bytes,
        out: Output,
        attrs: dict[str, Any],
    ) -> None:
        assert self.device_id is not None
        kind = ALARM_KINDS.get(name)
        if kind is None:
            return
        info = self._lookup(self.device_id)
        extra = {**self._watch.context(), **attrs}
        sig = signal_of(name, attrs)
        if sig is not None:
            extra.setdefault(VehicleAttr.SIGNAL, sig.value)
        if info is not None and info.plate:
            extra["plate"] = info.plate
            if info.plate_colour is not None:
                extra["plate_colour"] = info.plate_colour
        out.publish.append(
            (
                ALARMS_RAW,
                AlarmEvent(
                    kind=kind,
                    qualifier=qualifier,
                    source=Source(protocol=self.protocol, device_id=self.device_id, peer=self.peer),
                    code=name,
                    occurred_at=at,
                    received_at=now,
                    location=Location(lat=self._last_fix[0], lon=self._last_fix[1], source="device")
                    if self._last_fix
                    else None,
                    attributes=extra,
                    raw=(raw if isinstance(raw, str) else raw.hex())[:4096],
                ),
            )
        )

    def _position(
        self,
        pos: Position,
        names: frozenset[str],
        now: datetime,
        raw: str | bytes,
        out: Output,
        *,
        level: bool = True,
        acc: bool | None = None,
    ) -> None:
        """Publish the fix, alarm edges, state changes and armed-vehicle alarms of one position."""
        assert self.device_id is not None
        at = self._occurred(pos, now)
        attrs = {"alarm_bits": pos.alarm_bits, "status_bits": pos.status_bits, **pos.attributes}
        if names:
            attrs["alarms"] = sorted(names)
        if self.protocol is _JT808:
            # hot path: the JT/T 808 decoder types every field and range-checks the coordinates
            fix = fast_fix(
                device_id=self.device_id,
                lat=pos.lat,
                lon=pos.lon,
                speed_kmh=pos.speed_kmh,
                heading_deg=pos.heading_deg,
                altitude_m=pos.altitude_m,
                valid=pos.valid,
                occurred_at=at,
                received_at=now,
                attributes=attrs,
                protocol=_JT808,
            )
        else:
            fix = GpsFix(
                device_id=self.device_id,
                protocol=self.protocol,
                lat=pos.lat,
                lon=pos.lon,
                speed_kmh=pos.speed_kmh,
                heading_deg=pos.heading_deg,
                altitude_m=pos.altitude_m,
                valid=pos.valid,
                occurred_at=at,
                received_at=now,
                attributes=attrs,
            )
        out.publish.append((TELEMETRY_GPS, fix))
        if pos.valid and not (pos.lat == 0.0 and pos.lon == 0.0):
            self._last_fix = (pos.lat, pos.lon)  # a Location is built only when an alarm needs one
        bits: dict[str, Any] = {"alarm_bits": pos.alarm_bits, "status_bits": pos.status_bits}
        direction = pos.attributes.get("area_direction")
        if direction is not None and names:
            bits["area_direction"] = direction  # JT/T 808 item 0x12: which way an area was crossed
        watched = self._state(
            acc, pos, at, now, out, bits
        )  # the watch first: alarms carry this fix's context
        if level:
            self._edges(names, at, now, raw, out, bits)
        else:
            for name in sorted(names):
                self._alarm(name, Qualifier.NEW, at, now, raw, out, bits)
        for sig, attrs in watched:
            self._alarm(sig.value, Qualifier.NEW, at, now, raw, out, {**bits, **attrs})

    def _edges(
        self,
        names: frozenset[str],
        at: datetime,
        now: datetime,
        raw: str | bytes,
        out: Output,
        bits: dict[str, Any],
    ) -> None:
        prev = self._alarms
        self._alarms = names
        if names == prev:
            return  # no edge (the usual report: no alarm before, none now)
        for name in sorted(names - prev):
            self._alarm(name, Qualifier.NEW, at, now, raw, out, bits)
            if name in _POWER_CUT:
                self._status(DeviceStatusKind.POWER_CUT, at, now, out, **bits)
            elif name in _POWER_LOW:
                self._status(DeviceStatusKind.LOW_BATTERY, at, now, out, **bits)
        for name in sorted(prev - names):
            self._alarm(name, Qualifier.RESTORE, at, now, raw, out, bits)
            if name in _POWER_CUT:
                self._status(DeviceStatusKind.POWER_RESTORED, at, now, out, **bits)
            elif name in _POWER_LOW:
                self._status(DeviceStatusKind.BATTERY_RESTORED, at, now, out, **bits)

    def _state(
        self,
        acc: bool | None,
        pos: Position | None,
        at: datetime,
        now: datetime,
        out: Output,
        bits: dict[str, Any],
    ) -> list[tuple[VehicleSignal, dict[str, Any]]]:
        """Ignition edges as statuses; the vehicle watch's signals (armed ignition, movement) to publish."""
        assert self.device_id is not None
        info = self._lookup(self.device_id)
        watch = self._watch
        watch.arm(bool(info and info.armed))
        signals: list[tuple[VehicleSignal, dict[str, Any]]] = []
        if acc is not None:
            if acc != self._acc and self._acc is not None:
                self._status(
                    DeviceStatusKind.ACC_ON if acc else DeviceStatusKind.ACC_OFF, at, now, out, **bits
                )
            self._acc = acc
            signals += watch.ignition_changed(acc)
        if pos is not None and pos.valid and not (pos.lat == 0.0 and pos.lon == 0.0):
            signals += watch.position(pos.lat, pos.lon, pos.speed_kmh)
        return signals


class Jt808Session(_Base):
    protocol = Protocol.JT808

    def __init__(
        self,
        directory: Directory | Mapping[str, VehicleInfo],
        config: SessionConfig,
        peer: str | None = None,
        *,
        max_frame: int = jt808.MAX_FRAME,
    ) -> None:
        super().__init__(directory, config, peer)
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
        msg = jt808.parse_frame(frame)
        if msg.header.package_total is not None and not self.authenticated:
            raise FrameError("sub-package before authentication")
        return self.reassembler.add(msg)

    def _raw(self, frame: bytes) -> bytes:
        return b"\x7e" + frame + b"\x7e"

    def _refuse_body(self, msg: jt808.Message, out: Output) -> None:
        # header intact, body not: NAK with "message error" so the terminal does not wait for a retry
        if msg.header.msg_id != jt808.T_GENERAL_RESPONSE:
            out.reply += jt808.general_response(msg.header, self.next_serial(), jt808.RESULT_BAD_MESSAGE)

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
            out.reply += jt808.general_response(h, self.next_serial(), jt808.RESULT_UNSUPPORTED)
            return
        if mid == jt808.T_REGISTER:
            self._register(msg, device, out)
            return
        if mid == jt808.T_AUTH:
            self._authenticate(msg, device, now, out)
            return
        if not self.authenticated or device != self.device_id:
            self._refuse(out)
            out.reply += jt808.general_response(h, self.next_serial(), jt808.RESULT_FAILURE)
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
        elif mid == jt808.T_GENERAL_RESPONSE:
            resp = jt808.decode_general_response(msg.body)
            self.pending.pop(resp.reply_serial, None)
            out.commands.append(CommandResult(device, resp.reply_serial, resp.reply_id, resp.result))
            return  # a response is not answered
        elif mid == jt808.T_LOGOUT:
            # the terminal gives its code back: it may register again (a new SIM, a reflash)
            out.registry.append(RegistryWrite(device, self.protocol.value, flagged=False, reset_auth=True))
            out.reply += jt808.general_response(h, self.next_serial())
            out.publish.extend(self.connection_lost(now, "logout").publish)
            out.close = True
            return
        elif mid != jt808.T_HEARTBEAT:
            out.reply += jt808.general_response(h, self.next_serial(), jt808.RESULT_UNSUPPORTED)
            return
        out.reply += jt808.general_response(h, self.next_serial())

    def _location(self, pos: Position, now: datetime, raw: str | bytes, out: Output) -> None:
        bits = pos.alarm_bits
        names = frozenset(jt808.ALARM_BITS[b] for b in jt808.ALARM_BITS if bits >> b & 1) if bits else _NONE
        if pos.alarms:  # vendors' items (protocols/jt808_items.py)
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
            out.reply += jt808.register_response(h, self.next_serial(), jt808.REG_NO_TERMINAL)
            return
        info = self._lookup(device)
        if info is not None and info.auth_code:
            # The code is given out once. Anyone can name a registered terminal's number in a 0x0100:
            # answering with its code would hand over the terminal (its alarms, its command routing).
            self._refuse(out)
            out.reregistrations += 1
            out.reply += jt808.register_response(h, self.next_serial(), jt808.REG_TERMINAL_TAKEN)
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
        out.reply += jt808.register_response(h, self.next_serial(), jt808.REG_OK, code)

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
            out.reply += jt808.general_response(h, self.next_serial(), jt808.RESULT_FAILURE)
            return
        self.version, self.phone = h.version, h.phone
        if not self.authenticated:
            self._online(device, now, out)
        out.reply += jt808.general_response(h, self.next_serial())

    # ----------------------------------------------------------------- operator commands

    def command(self, kind: str, **params: Any) -> tuple[int, bytes]:
        """Bytes of an operator command for this terminal and its serial (for correlating the reply)."""
        if not self.authenticated or self.phone is None:
            raise RuntimeError("terminal not authenticated")
        serial = self.next_serial()
        if kind == "query_position":
            frame, mid = (
                jt808.query_position(self.phone, serial, version=self.version),
                jt808.P_QUERY_POSITION,
            )
        elif kind == "track":
            frame = jt808.temporary_tracking(
                self.phone,
                serial,
                int(params.get("interval_s", 10)),
                int(params.get("validity_s", 600)),
                version=self.version,
            )
            mid = jt808.P_TEMP_TRACKING
        elif kind == "text":
            frame = jt808.text_message(self.phone, serial, str(params.get("text", "")), version=self.version)
            mid = jt808.P_TEXT
        else:
            raise ValueError(f"unknown command {kind!r}")
        self.pending[serial] = mid
        while len(self.pending) > 64:
            self.pending.pop(next(iter(self.pending)))
        return serial, frame


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
        return gt06.parse_frame(frame)

    def _handle(self, msg: gt06.Gt06Message, now: datetime, out: Output) -> None:
        if not msg.crc_ok:
            out.tolerated += 1
        payload = gt06.decode(msg, tz_hours=self.config.gt06_tz_hours)
        if isinstance(payload, gt06.Login):
            if self.authenticated and payload.imei != self.device_id:
                self._refuse(out)
                return
            if not self._admit(payload.imei, out):
                out.close = True
                return
            if not self.authenticated:
                self._online(payload.imei, now, out)
            out.reply += gt06.reply(msg)
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
            watched = self._state(bool(payload.terminal_info & 0x02), None, now, now, out, info)
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
        if gt06.needs_reply(msg):
            out.reply += gt06.reply(msg)


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
            if not self._admit(msg.device_id, out):
                out.close = True
                return
            self._online(msg.device_id, now, out)
        elif msg.device_id != self.device_id:
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
