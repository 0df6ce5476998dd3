"""What every tracker session shares: the read loop, identity and policy, and event building."""

from __future__ import annotations

import struct
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from typing import Protocol as TypingProtocol

from alarmhub_events import (
    ALARMS_RAW,
    DEVICES_STATUS,
    TELEMETRY_GPS,
    AlarmEvent,
    DeviceStatus,
    DeviceStatusKind,
    GpsFix,
    Location,
    Protocol,
    Qualifier,
    Source,
    VehicleAttr,
    VehicleSignal,
)

from ..fastfix import RawFix, direct_fix, fast_fix
from ..protocols._common import FrameError, Position
from ..signals import VehicleWatch, WatchBook, WatchConfig, signal_of
from ._model import (
    ALARM_KINDS,
    Directory,
    Output,
    RegistryWrite,
    SessionConfig,
    UnregisteredPolicy,
    VehicleInfo,
)

#: What a malformed frame can raise from decoding or from validating the contract models built from it
#: (pydantic's ValidationError is a ValueError). These are the peer's fault: DLQ, not crash.
_PEER_ERRORS = (FrameError, ValueError, IndexError, struct.error)


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


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
    protocol_name: str
    """``protocol.value`` (an enum's ``value`` is a property: read per published batch)."""
    direct = True
    """JT/T 808 fixes are written straight to JSON (``RawFix``); False: ``GpsFix`` models (tests compare)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "protocol" in cls.__dict__:
            cls.protocol_name = cls.protocol.value

    def __init__(
        self,
        directory: Directory | Mapping[str, VehicleInfo],
        config: SessionConfig,
        peer: str | None = None,
        watches: WatchBook | None = None,
    ) -> None:
        self.directory = directory
        self.watches = watches
        """The gateway's watches by device: this session's vehicle keeps its watch across reconnects."""
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
        if self.watches is not None:
            self._watch = self.watches.get(device)  # its parked spot, ignition and armed state as last known
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
        fix: GpsFix | RawFix
        if self.protocol is _JT808:
            # hot path: the JT/T 808 decoder types every field and range-checks the coordinates, and the
            # fix's JSON is written here without building the model (``direct_fix``)
            fix = (direct_fix if self.direct else fast_fix)(
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
