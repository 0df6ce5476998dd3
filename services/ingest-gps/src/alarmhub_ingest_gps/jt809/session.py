"""JT/T 809 main-link session (sans-IO).

``Jt809LinkSession`` takes the bytes of one main link and returns, per read, what to publish, what
to answer and whether to open the slave link or close; it never touches a socket. Rules:

- the first accepted message must be 0x1001; anything before it is dropped (and dead-lettered);
- login is checked against the platform registry, the cheap checks first — the user exists, the peer
  IP is inside ``allowed.ips``, the GNSS centre id is the registry's, the platform is enabled — and the
  password last; every refusal is answered with the one code 0x06 (the reason is only in our log and
  metrics: a stranger learns neither which user ids exist nor whether a password was right) and the
  link closed (docs/security.md); with ``defer_password`` (the server) the password hash is not run here:
  ``feed`` hands it out as ``LinkOutput.password_check``, holds the frames read after the login, and
  :meth:`Jt809LinkSession.finish_login` takes the verdict (the server hashes in a bounded thread pool, so
  a slow PBKDF2 never stalls the event loop and every other link);
- the slave link goes to the peer's own address: a login naming another down-link IP gets its slave
  link at the peer's address and port named (never at a third party's);
- 0x1005 → 0x1006, 0x1003 → 0x1004 and close;
- 0x1202 → a live ``GpsFix`` plus alarm edges from the position's alarm word, as the device path does;
  0x1203 → ``GpsFix`` with ``attributes.backfill = true`` and ``attributes.live = false`` and no alarms;
  0x1402 → an ``AlarmEvent`` (protocol ``jt809``, ``source.platform`` the platform's name or user id),
  located at the vehicle's last live fix on this link when there is one;
- positions flagged as offset (GCJ-02) are converted to WGS-84 (``attributes.crs_in = "GCJ02"``);
- a malformed frame never raises out of ``feed``: it is dead-lettered and the link carries on.

Positions and alarms are decoded by its half in ``positions.py``; ``server.py`` is its I/O shell.
"""

from __future__ import annotations

import secrets
import struct
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from alarmhub_events import (
    DEVICES_STATUS,
    AlarmKind,
    DeviceStatus,
    DeviceStatusKind,
    Protocol,
    Qualifier,
    utcnow,
)
from alarmhub_runtime import get_logger
from alarmhub_store import verify_password

from ..protocols import jt809 as p
from ..protocols._common import FrameError
from .output import LinkOutput, SlaveTarget
from .platforms import PlatformDirectory, PlatformRecord, ip_allowed
from .positions import PositionDecoder

__all__ = ["WARN_KINDS", "Jt809LinkSession"]

log = get_logger("alarmhub.ingest_gps.jt809")

#: 0x1402 WARN_TYPE names → the contract's kind. Driving-behaviour reports stay ``other``.
WARN_KINDS: dict[str, AlarmKind] = {
    "overspeed": AlarmKind.OVERSPEED,
    "fatigue": AlarmKind.OTHER,
    "emergency": AlarmKind.VEHICLE_SOS,
    "area_enter": AlarmKind.GEOFENCE,
    "area_exit": AlarmKind.GEOFENCE,
    "road_blocked": AlarmKind.OTHER,
    "dangerous_road": AlarmKind.OTHER,
    "out_of_bounds": AlarmKind.GEOFENCE,
    "theft": AlarmKind.VEHICLE_THEFT,
    "hijack": AlarmKind.DURESS,
    "route_deviation": AlarmKind.GEOFENCE,
    "vehicle_moved": AlarmKind.VEHICLE_THEFT,
    "overtime_driving": AlarmKind.OTHER,
    "other": AlarmKind.OTHER,
    # 2019: warnings the lower platform raises about its terminals and itself — a unit or link that
    # stops reporting properly is a trouble the command centre must see; driving matters stay ``other``
    "tyre_pressure": AlarmKind.TROUBLE,
    "dynamic_info_abnormal": AlarmKind.TROUBLE,
    "report_interval_abnormal": AlarmKind.TROUBLE,
    "report_distance_abnormal": AlarmKind.TROUBLE,
    "platform_disconnected": AlarmKind.TROUBLE,
    "platform_transfer_abnormal": AlarmKind.TROUBLE,
    "terminal_abnormal": AlarmKind.TROUBLE,
    "platform_access_abnormal": AlarmKind.TROUBLE,
    "core_data_abnormal": AlarmKind.TROUBLE,
}


#: the sub-types of 0x1200 and of 0x1400 whose data the session reads (the others are answered as they are)
_EXG_READ = frozenset({p.UP_EXG_MSG_REAL_LOCATION, p.UP_EXG_MSG_HISTORY_LOCATION, p.UP_EXG_MSG_REGISTER})
_WARN_READ = frozenset({p.UP_WARN_MSG_ADPT_INFO, p.UP_WARN_MSG_URGE_TODO_ACK})


class Jt809LinkSession(PositionDecoder):
    """One lower platform's main link, sans-IO: ``feed(bytes, now) -> LinkOutput``."""

    def __init__(
        self,
        directory: PlatformDirectory,
        *,
        peer: str | None = None,
        vehicles: Any = None,
        max_frame: int = p.MAX_FRAME,
        max_vehicles: int = 50_000,
        max_future_s: float = 300.0,
        verify_code: Callable[[], int] | None = None,
        direct: bool = False,
        defer_password: bool = False,
    ) -> None:
        self.directory = directory
        self.peer = peer
        self.vehicles = vehicles  # anything with .get(device_id) → VehicleInfo | None (the vehicle registry)
        self.framer = p.Framer(max_frame)
        self._platform: PlatformRecord | None = None
        self.edition: int | None = None
        self.closed = False
        self.refused: dict[int, int] = {}
        self._serial = 0
        self._max_vehicles = max_vehicles
        self._max_future = timedelta(seconds=max_future_s)
        self._verify = verify_code or (lambda: secrets.randbelow(1 << 32))
        self._defer = defer_password
        #: a login whose password is being checked (``finish_login``), and the frames read after it
        self._waiting: tuple[PlatformRecord, p.Login, int] | None = None
        self._held: list[bytes] = []
        self._last: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._alarms: OrderedDict[str, frozenset[str]] = OrderedDict()
        self.registrations: OrderedDict[str, p.Registration] = OrderedDict()
        self.fast = True  # decode plain 2011 0x1202 frames on the hot path (tests compare both paths)
        # the hot path also writes the fix's JSON itself (``RawFix``) instead of a ``GpsFix``: the server
        # turns this on; the sans-IO tests look at models, and a test compares the two outputs' JSON
        self.direct = direct
        # fast path, by raw plate and colour: plate, device id, and for ``direct`` the fix JSON's text
        # from the schema to ``"lat":`` and the attributes' platform/plate/colour (platform-dependent,
        # hence dropped whenever the platform record changes)
        self._plates: dict[tuple[bytes, int], tuple[str, str, bytes, bytes]] = {}
        self._tkey: tuple[int, ...] = ()
        self._tval: datetime | None = None
        # direct path: occurred_at and received_at texts for the last (device time, read time) pair
        self._at_src: tuple[datetime | None, datetime | None] = (None, None)
        self._at_iso = self._now_iso = b""

    @property
    def platform(self) -> PlatformRecord | None:
        return self._platform

    @platform.setter
    def platform(self, rec: PlatformRecord | None) -> None:
        """A new record (login, registry refresh) may change the label and the allowed plates the
        fast path's per-vehicle memo holds: start it afresh."""
        self._platform = rec
        self._plates = {}

    @property
    def logged_in(self) -> bool:
        return self.platform is not None and not self.closed

    def knows(self, device_id: str) -> bool:
        """Whether this link has forwarded (or registered) the vehicle."""
        return device_id in self._last or device_id in self._alarms or device_id in self.registrations

    # -------------------------------------------------------------------- frames out

    def next_serial(self) -> int:
        self._serial = (self._serial + 1) & 0xFFFFFFFF
        return self._serial

    def frame(self, msg_id: int, body: bytes, *, center: int | None = None) -> bytes:
        """A frame to the lower platform, in its edition, unencrypted, with its GNSS centre id."""
        if center is None:
            center = self.platform.gnss_center_id if self.platform else 0
        return p.encode(
            msg_id,
            body,
            serial=self.next_serial(),
            gnss_center_id=center,
            edition=self.edition or p.Edition.V2011,
            time=int(utcnow().timestamp()) if self.edition == p.Edition.V2019 else 0,
        )

    # -------------------------------------------------------------------- frames in

    def feed(self, data: bytes, now: datetime) -> LinkOutput:
        out = LinkOutput()
        if self.closed:
            return out
        self._run(self.framer.feed(data), now, out)
        return out

    def finish_login(self, ok: bool, now: datetime) -> LinkOutput:
        """The verdict of ``LinkOutput.password_check``: answer the login, then go on with what was held."""
        out = LinkOutput()
        if self._waiting is None:
            return out
        rec, login, center = self._waiting
        self._waiting = None
        held, self._held = self._held, []
        self._login_checked(rec, login, center, "password" if not ok else None, now, out)
        if out.close:
            self.closed = True
        elif not self.closed:
            self._run(held, now, out)
        return out

    def _run(self, payloads: list[bytes], now: datetime, out: LinkOutput) -> None:
        for i, payload in enumerate(payloads):
            if self._waiting is not None:
                # frames read while the password is checked wait for the verdict (a peer may pipeline;
                # before a login nothing else is accepted anyway, so the backlog is one read's frames)
                self._held.extend(payloads[i:])
                return
            try:
                self._handle(payload, now, out)
            except (FrameError, struct.error, ValueError, UnicodeError, OverflowError) as exc:
                out.dlq.append((payload, f"{type(exc).__name__}: {exc}"))
            if out.close:
                self.closed = True
                break

    def _peek_id(self, payload: bytes) -> tuple[int, int, bool]:
        data = p.unescape(payload)
        if len(data) < 22:
            raise FrameError("short frame")
        return int.from_bytes(data[8:10], "big"), int.from_bytes(data[10:14], "big"), bool(data[17])

    def _handle(self, payload: bytes, now: datetime, out: LinkOutput) -> None:
        if self.platform is None:
            msg_id, center, encrypted = self._peek_id(payload)
            if msg_id != p.UP_CONNECT_REQ:
                raise FrameError(f"0x{msg_id:04x} before login")
            self.edition = p.detect_edition(p.unescape(payload))
            known = self.directory.by_center.get(center)
            cipher = known.cipher if (encrypted and known) else None
            if encrypted and cipher is None:
                self._refuse(p.LOGIN_OTHER, center, out)
                raise FrameError("encrypted login from an unknown GNSS centre")
            frame = p.decode(payload, edition=self.edition, cipher=cipher)
            self._login(frame, now, out)
            return
        if self.fast and self.edition != p.Edition.V2019 and self._fast_1202(payload, now, out):
            return
        frame = p.decode(payload, edition=self.edition or p.Edition.V2011, cipher=self.platform.cipher)
        mid = frame.msg_id
        if mid == p.UP_EXG_MSG:
            self._vehicle(frame, now, out)
        elif mid == p.UP_LINKTEST_REQ:
            out.replies.append(self.frame(p.UP_LINKTEST_RSP, b""))
        elif mid == p.UP_WARN_MSG:
            self._warn(frame, now, out)
        elif mid == p.UP_DISCONNECT_REQ:
            out.replies.append(self.frame(p.UP_DISCONNECT_RSP, b""))
            out.close = True
            self._link_status(DeviceStatusKind.OFFLINE, now, out, reason="logout")
        elif mid in (p.UP_DISCONNECT_INFORM, p.UP_CLOSELINK_INFORM):
            out.answers.append({"msg_id": mid, "code": frame.body[:1].hex()})
        elif mid == p.UP_CONNECT_REQ:
            out.replies.append(self.frame(p.UP_CONNECT_RSP, p.encode_login_reply(p.LOGIN_OTHER, 0)))
        else:
            out.answers.append({"msg_id": mid, "body": frame.body.hex()[:512]})

    def _refuse(self, result: int, center: int, out: LinkOutput) -> None:
        self.refused[result] = self.refused.get(result, 0) + 1
        out.login_result = result
        out.replies.append(self.frame(p.UP_CONNECT_RSP, p.encode_login_reply(result, 0), center=center))
        out.close = True

    def _login(self, frame: p.Frame, now: datetime, out: LinkOutput) -> None:
        login = p.read(frame, edition=self.edition or p.Edition.V2011)
        if not isinstance(login, p.Login):  # what ``read`` gives for a 0x1001 only
            raise FrameError("expected 0x1001")
        center = frame.header.gnss_center_id
        rec = self.directory.by_user.get(login.user_id)
        reason = (
            "unknown"
            if rec is None
            else "ip"
            if rec.allowed_ips and not ip_allowed(self.peer, rec.allowed_ips)
            else "access_code"
            if rec.gnss_center_id != center
            else "disabled"
            if rec.disabled
            else None
        )
        if reason is None and rec is not None and self._defer:
            self._waiting = (rec, login, center)
            out.password_check = (rec.password, login.password)
            return
        if reason is None and rec is not None and not verify_password(rec.password, login.password):
            reason = "password"
        self._login_checked(rec, login, center, reason, now, out)

    def _login_checked(
        self,
        rec: PlatformRecord | None,
        login: p.Login,
        center: int,
        reason: str | None,
        now: datetime,
        out: LinkOutput,
    ) -> None:
        if reason is not None or rec is None:
            self._refuse(p.LOGIN_OTHER, center, out)
            log.warning("jt809_login_refused", user_id=login.user_id, reason=reason, peer=self.peer)
            return
        self.platform = rec
        code = self._verify() & 0xFFFFFFFF
        out.login_result = p.LOGIN_OK
        out.replies.append(self.frame(p.UP_CONNECT_RSP, p.encode_login_reply(p.LOGIN_OK, code)))
        if login.down_link_ip and 0 < login.down_link_port:
            host = _peer_host(self.peer) or login.down_link_ip
            if host != login.down_link_ip:
                # only the peer's own address: the slave link must not be aimed at a third party
                log.warning(
                    "jt809_slave_address_replaced", named=login.down_link_ip, used=host, user_id=login.user_id
                )
            out.slave = SlaveTarget(host, login.down_link_port, code)
        self._link_status(
            DeviceStatusKind.ONLINE, now, out, down_link=f"{login.down_link_ip}:{login.down_link_port}"
        )
        log.info(
            "jt809_logged_in", user_id=rec.user_id, platform=rec.label, edition=self.edition, peer=self.peer
        )

    def _link_status(self, kind: DeviceStatusKind, now: datetime, out: LinkOutput, **attrs: Any) -> None:
        assert self.platform is not None
        out.publish.append(
            (
                DEVICES_STATUS,
                DeviceStatus(
                    device_id=f"jt809:{self.platform.user_id}",
                    protocol=Protocol.JT809,
                    status=kind,
                    occurred_at=now,
                    received_at=now,
                    peer=self.peer,
                    attributes={"platform": self.platform.label, "link": "main", **attrs},
                ),
            )
        )

    def connection_lost(self, now: datetime) -> LinkOutput:
        """The main link dropped without a logout: say so once."""
        out = LinkOutput()
        if self.platform is not None and not self.closed:
            self._link_status(DeviceStatusKind.OFFLINE, now, out, reason="disconnected")
        self.closed = True
        return out

    # -------------------------------------------------------------------- data

    def _allowed(self, vm: p.VehicleMessage, raw: bytes, out: LinkOutput) -> bool:
        assert self.platform is not None
        if not self.platform.allows(vm.plate, vm.device_id):
            out.dlq.append((raw, f"plate {vm.plate} not allowed for platform {self.platform.label}"))
            return False
        return True

    def _vehicle(self, frame: p.Frame, now: datetime, out: LinkOutput) -> None:
        vm = p.read(frame)  # 0x1200: the vehicle head
        if not isinstance(vm, p.VehicleMessage) or not self._allowed(vm, frame.raw, out):
            return
        raw = frame.raw
        body = p.read(vm, edition=self.edition or p.Edition.V2011) if vm.sub_type in _EXG_READ else None
        if isinstance(body, p.Position):  # 0x1202
            self._fix(vm, body, now, raw, out, backfill=False)
        elif isinstance(body, list):  # 0x1203
            for pos in body:
                self._fix(vm, pos, now, raw, out, backfill=True)
        elif isinstance(body, p.Registration):  # 0x1201
            self._remember(self.registrations, vm.device_id, body)
        elif vm.sub_type in (p.UP_EXG_MSG_RETURN_STARTUP_ACK, p.UP_EXG_MSG_RETURN_END_ACK):
            out.answers.append({"msg_id": p.UP_EXG_MSG, "sub_type": vm.sub_type, "device_id": vm.device_id})
        else:
            out.answers.append(
                {
                    "msg_id": p.UP_EXG_MSG,
                    "sub_type": vm.sub_type,
                    "device_id": vm.device_id,
                    "data": vm.data.hex()[:512],
                }
            )

    def _warn(self, frame: p.Frame, now: datetime, out: LinkOutput) -> None:
        ed = self.edition or p.Edition.V2011
        vm = p.read(frame, edition=ed)  # 0x1400: the 2011 head with the plate, or 2019's without
        if not isinstance(vm, p.VehicleMessage) or (vm.plate and not self._allowed(vm, frame.raw, out)):
            return
        body = p.read(vm, edition=ed) if vm.sub_type in _WARN_READ else None
        if isinstance(body, p.Alarm):  # 0x1402
            a = body
            attrs: dict[str, Any] = {"warn_type": a.warn_type, "warn_src": a.warn_src, "info_id": a.info_id}
            if a.content:
                attrs["info"] = a.content[:1024]
            if a.source_platform:
                attrs["source_platform_id"] = a.source_platform
            self._alarm(
                vm,
                WARN_KINDS.get(a.name, AlarmKind.OTHER),
                a.name,
                Qualifier.NEW,
                self._occurred(a.time, now),
                now,
                frame.raw.hex(),
                out,
                attrs,
            )
        elif isinstance(body, p.SupervisionAnswer):  # 0x1401
            sid, result = body
            out.answers.append(
                {
                    "msg_id": p.UP_WARN_MSG,
                    "sub_type": vm.sub_type,
                    "device_id": vm.device_id,
                    "supervision_id": sid,
                    "result": result,
                }
            )
        else:
            out.answers.append(
                {
                    "msg_id": p.UP_WARN_MSG,
                    "sub_type": vm.sub_type,
                    "device_id": vm.device_id,
                    "data": vm.data.hex()[:512],
                }
            )


def _peer_host(peer: str | None) -> str | None:
    """``"1.2.3.4:5678"`` / ``"[::1]:5678"`` → the host part."""
    if not peer:
        return None
    host = peer.rsplit(":", 1)[0] if peer.count(":") == 1 or peer.startswith("[") else peer
    return host.strip("[]")
