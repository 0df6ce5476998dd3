"""JT/T 809 main-link session (sans-IO) and its thin asyncio server with the slave-link client.

``Jt809LinkSession`` takes the bytes of one main link and returns, per read, what to publish, what
to answer and whether to open the slave link or close; it never touches a socket. Rules:

- the first accepted message must be 0x1001; anything before it is dropped (and dead-lettered);
- login is checked against the platform registry: unknown user → 0x03, wrong password → 0x04,
  GNSS centre id differing from the registry → 0x02, peer IP outside ``allowed.ips`` → 0x01;
  a refused login is answered and the link closed;
- 0x1005 → 0x1006, 0x1003 → 0x1004 and close;
- 0x1202 → a live ``GpsFix`` plus alarm edges from the position's alarm word, as the device path does;
  0x1203 → ``GpsFix`` with ``attributes.backfill = true`` and ``attributes.live = false`` and no alarms;
  0x1402 → an ``AlarmEvent`` (protocol ``jt809``, ``source.platform`` the platform's name or user id),
  located at the vehicle's last live fix on this link when there is one;
- positions flagged as offset (GCJ-02) are converted to WGS-84 (``attributes.crs_in = "GCJ02"``);
- a malformed frame never raises out of ``feed``: it is dead-lettered and the link carries on.

``Jt809Server`` is the I/O shell: it awaits the injected ``publish`` (the durable Kafka write) before
writing the replies of a read, connects back to the lower platform's down-link address with 0x9001,
keeps it alive with 0x9005, and sends requests down (0x9205/0x9206 tracking, 0x9401 supervision).
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import ipaddress
import json
import secrets
import struct
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from alarmhub_events import (
    ALARMS_RAW,
    DEVICES_STATUS,
    GPS_SCHEMA,
    TELEMETRY_GPS,
    AlarmEvent,
    AlarmKind,
    DeviceStatus,
    DeviceStatusKind,
    Event,
    Location,
    Protocol,
    Qualifier,
    Source,
    utcnow,
)
from alarmhub_events.fast import iso_z, json_string_memo
from alarmhub_geo import gcj02_to_wgs84
from alarmhub_store import verify_password

from .fastfix import RawFix, event_id_bytes, fast_fix, fix_json, raw_items
from .protocols import jt808
from .protocols import jt809 as p
from .protocols._common import FrameError
from .session import ALARM_KINDS

__all__ = [
    "WARN_KINDS",
    "Jt809LinkSession",
    "Jt809Server",
    "LinkOutput",
    "PlatformDirectory",
    "PlatformRecord",
    "RawFix",
    "fast_fix",
    "fix_json",
    "link_status_writer",
    "load_platforms",
    "raw_items",
    "refresh_platforms",
]

log = structlog.get_logger("alarmhub.ingest_gps.jt809")

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
}

_NONE: frozenset[str] = frozenset()
#: 2011 header, vehicle header and GNSS_DATA of a 0x1200/0x1202 frame (CRC after them)
_FAST = struct.Struct(">I4xH4x3xB4x" + "21sBHI" + "BBBHBBBIIHHIHHII")  # serial, centre, version, key skipped
_FAST_SIZE = _FAST.size + 2


def _alarm_names(bits: int) -> frozenset[str]:
    """The JT/T 808 alarm-bit names set in an alarm word (cached: a fleet repeats a few words)."""
    names = _ALARM_WORDS.get(bits)
    if names is None:
        names = frozenset(jt808.ALARM_BITS[b] for b in jt808.ALARM_BITS if bits >> b & 1)
        if len(_ALARM_WORDS) < 4096:
            _ALARM_WORDS[bits] = names
    return names


_ALARM_WORDS: dict[int, frozenset[str]] = {}
_ALARMS_JSON: dict[frozenset[str], bytes] = {}
_crc = binascii.crc_hqx  # CRC-16/CCITT-FALSE with init 0xFFFF (``p.crc16_ccitt`` without the call)
_jstr = json_string_memo(100_000)  # plates, device ids and platform names repeat
#: ``_registry_attrs`` → its JSON members after the fix's other attributes (direct path)
_REGISTRY_JSON = {
    (): b"",
    (("registered", False),): b',"registered":false',
    (("registered", True),): b',"registered":true',
    (("registered", True), ("armed", True)): b',"registered":true,"armed":true',
}
#: JSON text of the 16-bit speeds and altitudes as floats (``repr`` of a float costs ~0.3 µs; a fleet
#: repeats a few hundred values) and of the heading member for 0–360°
_FLOAT16: dict[int, bytes] = {}
_HEADING = [b',"heading_deg":%a' % float(d) for d in range(361)]


def _float16(v: int) -> bytes:
    text = _FLOAT16.get(v)
    if text is None:
        text = _FLOAT16[v] = b"%a" % float(v)  # at most 65,536 entries: v is a 16-bit field
    return text


def _alarms_json(names: frozenset[str]) -> bytes:
    """``,"alarms":[...]`` (sorted, as ``_emit`` stores them) for the direct path; cached like the words."""
    text = _ALARMS_JSON.get(names)
    if text is None:
        text = (',"alarms":[' + ",".join(_jstr(n) for n in sorted(names)) + "]").encode()
        if len(_ALARMS_JSON) < 4096:
            _ALARMS_JSON[names] = text
    return text


# ------------------------------------------------------------------------------------------ registry


@dataclass(frozen=True, slots=True)
class PlatformRecord:
    """One row of ``platforms``: credentials, GNSS centre id, cipher constants, what it may send."""

    user_id: int
    password: str
    gnss_center_id: int
    name: str | None = None
    cipher: p.Cipher | None = None
    allowed_plates: frozenset[str] | None = None
    allowed_ips: tuple[str, ...] = ()
    plate_prefixes: tuple[str, ...] = ()  # region: plates starting with one of these (粤B = Shenzhen)
    disabled: bool = False

    @property
    def label(self) -> str:
        return self.name or str(self.user_id)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> PlatformRecord:
        enc = row.get("encrypt") or {}
        allowed = row.get("allowed") or {}
        cipher = None
        if enc and all(enc.get(k) is not None for k in ("m1", "ia1", "ic1")):
            cipher = p.Cipher(int(enc["m1"]), int(enc["ia1"]), int(enc["ic1"]))
        plates = allowed.get("plates")
        return cls(
            int(row["user_id"]),
            str(row["password"]),
            int(row["gnss_center_id"]),
            row.get("name"),
            cipher,
            frozenset(plates) if plates else None,
            tuple(allowed.get("ips") or ()),
            tuple(allowed.get("plate_prefixes") or ()),
            bool(row.get("disabled", False)),
        )

    def allows(self, plate: str, device_id: str) -> bool:
        """Whether the platform may forward this vehicle (no list and no prefixes: any vehicle)."""
        if self.allowed_plates is None and not self.plate_prefixes:
            return True
        if self.allowed_plates is not None and (
            plate in self.allowed_plates or device_id in self.allowed_plates
        ):
            return True
        return any(plate.startswith(pre) for pre in self.plate_prefixes)


class PlatformDirectory:
    """Lookup by user id (login) and by GNSS centre id (to decrypt a login before its body is readable)."""

    def __init__(self, records: Iterable[PlatformRecord] = ()) -> None:
        self.by_user: dict[int, PlatformRecord] = {}
        self.by_center: dict[int, PlatformRecord] = {}
        self.replace(records)

    def replace(self, records: Iterable[PlatformRecord]) -> None:
        users = {r.user_id: r for r in records}
        self.by_user = users
        self.by_center = {r.gnss_center_id: r for r in users.values()}


async def load_platforms(database_url: str) -> list[PlatformRecord]:
    """Read the ``platforms`` table (asyncpg); JSON columns arrive as text."""

    import asyncpg

    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        rows = await conn.fetch(
            "SELECT user_id, password, gnss_center_id, name, encrypt, allowed, disabled FROM platforms"
        )
    finally:
        await conn.close()
    out = []
    for r in rows:
        d = dict(r)
        for k in ("encrypt", "allowed"):
            if isinstance(d[k], str):
                d[k] = json.loads(d[k])
        out.append(PlatformRecord.from_row(d))
    return out


async def refresh_platforms(
    directory: PlatformDirectory,
    database_url: str,
    *,
    interval_s: float = 30.0,
    stop: asyncio.Event | None = None,
    on_refresh: Callable[[PlatformDirectory], Any] | None = None,
) -> None:
    """Re-read ``platforms`` every ``interval_s`` until ``stop`` is set (or the task is cancelled).

    A failed read keeps the previous view: a database hiccup must not log every platform out.
    ``on_refresh`` (the server's ``enforce``) runs after each successful read.
    """
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            directory.replace(await load_platforms(database_url))
            if on_refresh is not None:
                on_refresh(directory)
        except Exception as exc:  # asyncpg/OS errors of every kind; the link keeps its last view
            log.warning("jt809_platforms_unavailable", error=repr(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)


def link_status_writer(database_url: str) -> LinkStatusSink:
    """An ``on_link_status`` sink that writes ``platforms.link_status`` (``up``, ``up+slave``, ``down``)."""
    import asyncpg

    async def write(user_id: int, status: str) -> None:
        # link changes are rare: a connection per change, nothing left open at shutdown
        conn = await asyncpg.connect(database_url, timeout=5)
        try:
            await conn.execute(
                "UPDATE platforms SET link_status = $2, link_changed_at = now() WHERE user_id = $1",
                user_id,
                status,
            )
        finally:
            await conn.close()

    return write


# ------------------------------------------------------------------------------------------ session


@dataclass(frozen=True, slots=True)
class SlaveTarget:
    ip: str
    port: int
    verify_code: int


@dataclass(slots=True)
class LinkOutput:
    """What one read produced: events to publish durably, then replies to write, then the rest."""

    publish: list[tuple[str, Event | RawFix]] = field(default_factory=list)
    replies: list[bytes] = field(default_factory=list)
    dlq: list[tuple[bytes, str]] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)
    slave: SlaveTarget | None = None
    close: bool = False
    login_result: int | None = None
    positions: int = 0
    backfilled: int = 0
    alarms: int = 0


class Jt809LinkSession:
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
        return p.encode_frame(
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
        for payload in self.framer.feed(data):
            try:
                self._handle(payload, now, out)
            except (FrameError, struct.error, ValueError, UnicodeError, OverflowError) as exc:
                out.dlq.append((payload, f"{type(exc).__name__}: {exc}"))
            if out.close:
                self.closed = True
                break
        return out

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
                self._refuse(p.LOGIN_UNKNOWN_USER, center, out)
                raise FrameError("encrypted login from an unknown GNSS centre")
            frame = p.decode_frame(payload, edition=self.edition, cipher=cipher)
            self._login(frame, now, out)
            return
        if self.fast and self.edition != p.Edition.V2019 and self._fast_1202(payload, now, out):
            return
        frame = p.decode_frame(payload, edition=self.edition or p.Edition.V2011, cipher=self.platform.cipher)
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
            out.replies.append(self.frame(p.UP_CONNECT_RSP, p.login_reply_body(p.LOGIN_OTHER, 0)))
        else:
            out.answers.append({"msg_id": mid, "body": frame.body.hex()[:512]})

    def _refuse(self, result: int, center: int, out: LinkOutput) -> None:
        self.refused[result] = self.refused.get(result, 0) + 1
        out.login_result = result
        out.replies.append(self.frame(p.UP_CONNECT_RSP, p.login_reply_body(result, 0), center=center))
        out.close = True

    def _login(self, frame: p.Frame, now: datetime, out: LinkOutput) -> None:
        if frame.msg_id != p.UP_CONNECT_REQ:
            raise FrameError("expected 0x1001")
        login = p.decode_login(frame.body, self.edition or p.Edition.V2011)
        center = frame.header.gnss_center_id
        rec = self.directory.by_user.get(login.user_id)
        if rec is None:
            self._refuse(p.LOGIN_UNKNOWN_USER, center, out)
            log.warning("jt809_login_refused", user_id=login.user_id, reason="unknown", peer=self.peer)
            return
        if not verify_password(rec.password, login.password):
            self._refuse(p.LOGIN_BAD_PASSWORD, center, out)
            log.warning("jt809_login_refused", user_id=login.user_id, reason="password", peer=self.peer)
            return
        if rec.gnss_center_id != center:
            self._refuse(p.LOGIN_BAD_ACCESS_CODE, center, out)
            log.warning("jt809_login_refused", user_id=login.user_id, reason="access_code", peer=self.peer)
            return
        if rec.allowed_ips and not _ip_allowed(self.peer, rec.allowed_ips):
            self._refuse(p.LOGIN_BAD_IP, center, out)
            log.warning("jt809_login_refused", user_id=login.user_id, reason="ip", peer=self.peer)
            return
        if rec.disabled:
            self._refuse(p.LOGIN_OTHER, center, out)
            log.warning("jt809_login_refused", user_id=login.user_id, reason="disabled", peer=self.peer)
            return
        self.platform = rec
        code = self._verify() & 0xFFFFFFFF
        out.login_result = p.LOGIN_OK
        out.replies.append(self.frame(p.UP_CONNECT_RSP, p.login_reply_body(p.LOGIN_OK, code)))
        if login.down_link_ip and 0 < login.down_link_port:
            out.slave = SlaveTarget(login.down_link_ip, login.down_link_port, code)
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
        vm = p.decode_vehicle(frame.body)
        if not self._allowed(vm, frame.raw, out):
            return
        ed = self.edition or p.Edition.V2011
        raw = frame.raw
        if vm.sub_type == p.UP_EXG_MSG_REAL_LOCATION:
            self._fix(vm, p.decode_1202(vm.data, ed), now, raw, out, backfill=False)
        elif vm.sub_type == p.UP_EXG_MSG_HISTORY_LOCATION:
            for pos in p.decode_1203(vm.data, ed):
                self._fix(vm, pos, now, raw, out, backfill=True)
        elif vm.sub_type == p.UP_EXG_MSG_REGISTER:
            self._remember(self.registrations, vm.device_id, p.decode_1201(vm.data, ed))
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

    def _remember(self, cache: OrderedDict[str, Any], key: str, value: Any) -> None:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > self._max_vehicles:
            cache.popitem(last=False)

    def _occurred(self, t: datetime | None, now: datetime) -> datetime:
        if t is None or t - now > self._max_future:
            return now
        return t

    def _registry_attrs(self, device_id: str) -> dict[str, Any]:
        if self.vehicles is None:
            return {}
        info = self.vehicles.get(device_id)
        if info is None:
            return {"registered": False}
        attrs: dict[str, Any] = {"registered": True}
        if getattr(info, "armed", False):
            attrs["armed"] = True
        return attrs

    def _fix(
        self,
        vm: p.VehicleMessage,
        pos: p.Position,
        now: datetime,
        raw: bytes,
        out: LinkOutput,
        *,
        backfill: bool,
    ) -> None:
        self._emit(
            vm.plate,
            vm.colour,
            vm.device_id,
            pos.lat,
            pos.lon,
            pos.offset,
            pos.time,
            pos.speed_kmh,
            pos.heading_deg,
            pos.altitude_m,
            pos.status_bits,
            pos.alarm_bits,
            pos.attributes,
            now,
            raw,
            out,
            backfill,
        )

    def _emit(
        self,
        plate: str,
        colour: int,
        device_id: str,
        lat: float,
        lon: float,
        offset: bool,
        time: datetime | None,
        speed: float,
        heading: float | None,
        altitude: float | None,
        status: int,
        alarm_bits: int,
        extra: dict[str, Any],
        now: datetime,
        raw: bytes,
        out: LinkOutput,
        backfill: bool,
    ) -> None:
        """One position → a ``GpsFix`` (and alarm edges when live): the one place both decode paths meet."""
        assert self.platform is not None
        attrs: dict[str, Any] = {
            "alarm_bits": alarm_bits,
            "status_bits": status,
            **extra,
            "platform": self.platform.label,
            "plate": plate,
            "plate_colour": colour,
        }
        if offset:
            lon, lat = gcj02_to_wgs84(lon, lat)
            attrs["crs_in"] = "GCJ02"
        names = _alarm_names(alarm_bits) if alarm_bits else _NONE
        if names:
            attrs["alarms"] = sorted(names)
        if backfill:
            attrs["backfill"] = True
            attrs["live"] = False
        if self.vehicles is not None:
            attrs.update(self._registry_attrs(device_id))
        at = time if time is not None and time - now <= self._max_future else now
        valid = bool(status & 0b10)  # JT/T 808 status bit 1: positioned
        out.publish.append(
            (
                TELEMETRY_GPS,
                fast_fix(
                    device_id=device_id,
                    lat=lat,
                    lon=lon,
                    speed_kmh=max(speed, 0.0),
                    heading_deg=heading,
                    altitude_m=altitude,
                    valid=valid,
                    occurred_at=at,
                    received_at=now,
                    attributes=attrs,
                ),
            )
        )
        if backfill:
            out.backfilled += 1
            return
        out.positions += 1
        if valid and not (lat == 0.0 and lon == 0.0):
            self._remember(self._last, device_id, (lat, lon))
        prev = self._alarms.get(device_id, _NONE)
        if names or prev:
            self._remember(self._alarms, device_id, names)
            vm = p.VehicleMessage(plate, colour, p.UP_EXG_MSG_REAL_LOCATION, b"", device_id)
            bits = {"alarm_bits": alarm_bits, "status_bits": status}
            text = raw.hex()
            for name in sorted(names - prev):
                self._alarm(vm, ALARM_KINDS.get(name), name, Qualifier.NEW, at, now, text, out, bits)
            for name in sorted(prev - names):
                self._alarm(vm, ALARM_KINDS.get(name), name, Qualifier.RESTORE, at, now, text, out, bits)

    def _fast_1202(self, payload: bytes, now: datetime, out: LinkOutput) -> bool:
        """The hot path: an unencrypted 2011 0x1200/0x1202 decoded with one ``unpack`` and no intermediate
        objects. False (nothing done) for anything else, which the general path then decodes; the two
        give equal fixes (tested). With ``direct`` a fix whose alarm word did not change is written as
        JSON here (``RawFix``); alarm edges still take ``_emit``, which builds the events."""
        data = p.unescape(payload)
        if len(data) != _FAST_SIZE:
            return False
        (
            ln,
            mid,
            enc,
            plate_b,
            colour,
            sub,
            dlen,
            penc,
            day,
            month,
            year,
            hh,
            mm,
            ss,
            lon,
            lat,
            vec1,
            vec2,
            vec3,
            direction,
            alt,
            state,
            alarm,
        ) = _FAST.unpack_from(data)
        if (
            mid != p.UP_EXG_MSG
            or sub != p.UP_EXG_MSG_REAL_LOCATION
            or enc
            or dlen != 36
            or ln != _FAST_SIZE + 2
        ):
            return False
        if _crc(data, 0xFFFF):  # over the CRC too: CRC-16/CCITT-FALSE of a frame and its own CRC is 0
            return False
        vkey = (plate_b, colour)
        known = self._plates.get(vkey)
        if known is None:
            plate = plate_b.split(b"\x00", 1)[0].decode("gbk", errors="replace").strip()
            device_id = f"{plate}:{colour}"
            assert self.platform is not None
            if not plate or not self.platform.allows(plate, device_id):
                return False
            if len(self._plates) >= self._max_vehicles:
                self._plates.clear()
            known = self._plates[vkey] = (
                plate,
                device_id,
                f'","schema":"{GPS_SCHEMA}","device_id":{_jstr(device_id)},"protocol":"jt809","lat":'.encode(),
                f',"platform":{_jstr(self.platform.label)},"plate":{_jstr(plate)},"plate_colour":{colour}'.encode(),
            )
        tkey = (year, month, day, hh, mm, ss)
        if tkey != self._tkey:
            self._tkey, self._tval = tkey, p.local_time(year, month, day, hh, mm, ss)
        device_id = known[1]
        names = _alarm_names(alarm) if alarm else _NONE
        if not self.direct or names != self._alarms.get(device_id, _NONE):
            self._emit(
                known[0],
                colour,
                device_id,
                lat / 1e6,
                lon / 1e6,
                penc == 1,
                self._tval,
                float(vec1),
                float(direction) if direction <= 360 else None,
                float(alt),
                state,
                alarm,
                {"vec2_kmh": vec2, "mileage_km": vec3},
                now,
                data,
                out,
                False,
            )
            return True
        # ---- direct: what ``_emit`` + ``fast_fix`` + ``fix_json`` give for a fix without alarm edges
        flat, flon = lat / 1e6, lon / 1e6
        extra = b""
        if penc == 1:
            flon, flat = gcj02_to_wgs84(flon, flat)
            extra = b',"crs_in":"GCJ02"'
        if not (-90.0 <= flat <= 90.0 and -180.0 <= flon <= 180.0):
            raise ValueError(f"coordinates out of range: {flat}, {flon}")
        if names:
            extra += _alarms_json(names)
        if self.vehicles is not None:
            extra += _REGISTRY_JSON[tuple(self._registry_attrs(device_id).items())]
        tv = self._tval
        if (
            tv is not self._at_src[0] or now is not self._at_src[1]
        ):  # once per distinct device second and read
            self._at_src = (tv, now)
            self._now_iso = iso_z(now).encode()
            self._at_iso = (
                iso_z(tv).encode() if tv is not None and tv - now <= self._max_future else self._now_iso
            )
        valid = state & 0b10
        # bytes formatting (%a of a float is its repr): no str of the whole fix to widen and encode
        out.publish.append(
            (
                TELEMETRY_GPS,
                RawFix(
                    device_id,
                    (
                        b'{"event_id":"%s%s%a,"lon":%a,"crs":"WGS84","speed_kmh":%s%s,"altitude_m":%s,"valid":%s,'
                        b'"occurred_at":"%s","received_at":"%s","attributes":{"alarm_bits":%d,"status_bits":%d,'
                        b'"vec2_kmh":%d,"mileage_km":%d%s%s}}'
                        % (
                            event_id_bytes(),
                            known[2],
                            flat,
                            flon,
                            _float16(vec1),
                            _HEADING[direction] if direction <= 360 else b"",
                            _float16(alt),
                            b"true" if valid else b"false",
                            self._at_iso,
                            self._now_iso,
                            alarm,
                            state,
                            vec2,
                            vec3,
                            known[3],
                            extra,
                        )
                    ),
                ),
            )
        )
        out.positions += 1
        if valid and not (flat == 0.0 and flon == 0.0):
            self._remember(self._last, device_id, (flat, flon))
        if names:
            self._remember(self._alarms, device_id, names)
        return True

    def _alarm(
        self,
        vm: p.VehicleMessage,
        kind: AlarmKind | None,
        code: str,
        qualifier: Qualifier,
        at: datetime,
        now: datetime,
        raw: str,
        out: LinkOutput,
        attrs: dict[str, Any],
    ) -> None:
        if kind is None:
            return
        assert self.platform is not None
        last = self._last.get(vm.device_id)
        extra = {"plate": vm.plate, "plate_colour": vm.colour, **attrs, **self._registry_attrs(vm.device_id)}
        out.publish.append(
            (
                ALARMS_RAW,
                AlarmEvent(
                    kind=kind,
                    qualifier=qualifier,
                    source=Source(
                        protocol=Protocol.JT809,
                        device_id=vm.device_id,
                        peer=self.peer,
                        platform=self.platform.label,
                    ),
                    code=code,
                    occurred_at=at,
                    received_at=now,
                    location=Location(lat=last[0], lon=last[1], source="device") if last else None,
                    attributes=extra,
                    raw=raw[:4096],
                ),
            )
        )
        out.alarms += 1

    def _warn(self, frame: p.Frame, now: datetime, out: LinkOutput) -> None:
        vm = p.decode_vehicle(frame.body)
        if not self._allowed(vm, frame.raw, out):
            return
        ed = self.edition or p.Edition.V2011
        if vm.sub_type == p.UP_WARN_MSG_ADPT_INFO:
            a = p.decode_1402(vm.data, ed)
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
        elif vm.sub_type == p.UP_WARN_MSG_URGE_TODO_ACK:
            sid, result = p.decode_1401(vm.data)
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


def _ip_allowed(peer: str | None, allowed: tuple[str, ...]) -> bool:
    if not peer:
        return False
    host = peer.rsplit(":", 1)[0].strip("[]")
    try:
        addr = ipaddress.ip_address(host)
        return any(addr in ipaddress.ip_network(net, strict=False) for net in allowed)
    except ValueError:
        return False


# ------------------------------------------------------------------------------------------ server

#: takes what ``LinkOutput.publish`` holds: events, and ``RawFix`` (a fix already written as JSON)
Publish = Callable[[list[tuple[str, Event | RawFix]]], Awaitable[None]]
DeadLetter = Callable[[bytes, str, str | None], Awaitable[None]]
AnswerSink = Callable[[int, dict[str, Any]], Awaitable[None] | None]
LinkStatusSink = Callable[[int, str], Awaitable[None]]


class _GroupWrite:
    """The reads of every link waiting for the broker, written as one producer call (group commit).

    aiokafka keeps one produce request in flight per broker and takes one batch per partition into
    each, so a call per read made ten links' small reads queue as many small batches, each waiting a
    round trip: ten links reached ~25,000 positions/s with the gateway's CPU 40 % idle, and allowing
    more calls only made the queue outlive the producer's timeout. Here at most ``calls`` producer
    calls run at once; reads arriving meanwhile join the next call, so a call grows with the load.
    Each read gets its own future, settled with the call's outcome (a failed write fails every read
    in it, and their links close; the lower platforms back-fill). ``room`` is the backpressure: once
    ``max_items`` records wait, links stop reading their sockets until the next call takes them.
    """

    def __init__(self, publish: Publish, *, calls: int, max_items: int) -> None:
        self._publish = publish
        self._calls = max(1, calls)
        self._max_items = max(1, max_items)
        self._items: list[tuple[str, Event | RawFix]] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._running = 0
        self._scheduled = False
        self._room = asyncio.Event()
        self._room.set()
        self._tasks: set[asyncio.Task[None]] = set()  # calls running (a reference keeps them alive)
        self.calls_made = 0  # how many producer calls the reads took (tests)

    def submit(self, items: list[tuple[str, Event | RawFix]]) -> asyncio.Future[None]:
        """Queue a read's records; the future is done when they are durably written (or failed)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        fut.add_done_callback(_retrieve)
        self._items.extend(items)
        self._waiters.append(fut)
        if len(self._items) >= self._max_items:
            self._room.clear()
        if not self._scheduled and self._running < self._calls:
            self._scheduled = True
            loop.call_soon(self._flush)  # after this iteration's other reads have joined
        return fut

    async def room(self) -> None:
        await self._room.wait()

    def _flush(self) -> None:
        self._scheduled = False
        if not self._items or self._running >= self._calls:
            return
        items, waiters = self._items, self._waiters
        self._items, self._waiters = [], []
        self._room.set()
        self._running += 1
        self.calls_made += 1
        task = asyncio.ensure_future(self._write(items, waiters))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(
        self, items: list[tuple[str, Event | RawFix]], waiters: list[asyncio.Future[None]]
    ) -> None:
        """One producer call; its reads are settled in the same step as the call returns (as when each
        read awaited its own call), so a link's answers of a read (``_apply``) still come before
        anything woken by ``publish`` itself (a command waiting for a position) runs."""
        ok = False
        exc: Exception | None = None
        try:
            await self._publish(items)
            ok = True
        except Exception as e:
            exc = e
        finally:  # cancellation (shutdown) included: then the reads are cancelled
            self._running -= 1
            for w in waiters:
                if not w.done():
                    if ok:
                        w.set_result(None)
                    elif exc is not None:
                        w.set_exception(exc)
                    else:
                        w.cancel()
            if self._items and not self._scheduled:
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._flush)


def _retrieve(fut: asyncio.Future[None]) -> None:
    """A read whose link is gone is never awaited: mark its failure seen (no 'never retrieved' log)."""
    if not fut.cancelled():
        fut.exception()


@dataclass(slots=True)
class _Link:
    session: Jt809LinkSession
    writer: asyncio.StreamWriter
    slave_writer: asyncio.StreamWriter | None = None
    slave_task: asyncio.Task[None] | None = None
    slave_up: bool = False


class Jt809Server:
    """Main-link server plus slave-link clients. Thin: read → session → await publish → reply."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        directory: PlatformDirectory,
        publish: Publish,
        dead_letter: DeadLetter | None = None,
        on_answer: AnswerSink | None = None,
        vehicles: Any = None,
        registry: Any = None,
        idle_timeout_s: float = 180.0,
        slave_heartbeat_s: float = 60.0,
        slave_enabled: bool = True,
        max_frame: int = p.MAX_FRAME,
        read_size: int = 256 * 1024,
        inflight: int = 4,
        inflight_total: int = 2,
        max_pending: int = 10_000,
        group_commit: bool = True,
        on_link_status: LinkStatusSink | None = None,
        clock: Callable[[], datetime] = utcnow,
        direct: bool = True,
    ) -> None:
        self.host = host
        self._port = port
        self.directory = directory
        self._publish = publish
        self._dead_letter = dead_letter
        self._on_answer = on_answer
        self._vehicles = vehicles
        self._idle = idle_timeout_s
        self._hb = slave_heartbeat_s
        self._slave_enabled = slave_enabled
        self._max_frame = max_frame
        self._read_size = read_size
        self._inflight = inflight
        # every link's reads go to Kafka through one group commit: at most ``inflight_total`` producer calls
        # at once, and beyond ``max_pending`` waiting records the links stop reading their sockets (TCP
        # backpressure) instead of queueing more than the broker confirms within the producer's timeout
        self._writes = _GroupWrite(publish, calls=inflight_total, max_items=max_pending)
        # ``group_commit=False``: each read its own producer call, ``inflight_total`` of them at once (the
        # write pattern before the group commit; kept for A/B runs of bench/jt809.py)
        self._group_commit = group_commit
        self._slots = asyncio.Semaphore(max(1, inflight_total))
        self._on_link = on_link_status
        self._clock = clock
        self._direct = direct  # sessions write live fixes' JSON on the hot path (``RawFix``); False: models
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.links: dict[int, _Link] = {}
        self.stats = {
            "positions": 0,
            "backfilled": 0,
            "alarms": 0,
            "dlq": 0,
            "logins_ok": 0,
            "logins_refused": 0,
        }
        self._metrics = _Metrics(registry) if registry is not None else None

    @property
    def port(self) -> int:
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        return self._port

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, self.host, self._port, limit=self._max_frame * 2
        )
        log.info("jt809_listening", host=self.host, port=self.port)

    async def stop(self) -> None:
        """Stop accepting, close every link (handlers then finish their in-flight writes), cancel stragglers."""
        if self._server is not None:
            self._server.close()
        for link in list(self.links.values()):
            if link.slave_task is not None:
                link.slave_task.cancel()
        for w in list(self._writers):
            w.close()
        if self._conns:
            _, late = await asyncio.wait(list(self._conns), timeout=10)
            for t in late:
                t.cancel()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    # ---------------------------------------------------------------- main link

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read and decode while earlier reads are being written to Kafka (up to ``inflight`` of them).

        Outputs are finished strictly in order, each only after its own publish was acknowledged, so a
        reply never overtakes the durable write of anything received before it.
        """
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        self._writers.add(writer)
        addr = writer.get_extra_info("peername")
        peer = f"{addr[0]}:{addr[1]}" if addr else None
        session = Jt809LinkSession(
            self.directory, peer=peer, vehicles=self._vehicles, max_frame=self._max_frame, direct=self._direct
        )
        link = _Link(session, writer)
        pending: asyncio.Queue[tuple[asyncio.Future[None] | None, LinkOutput] | None] = asyncio.Queue(
            self._inflight
        )
        finisher = asyncio.create_task(self._finish(link, pending), name="jt809-finish")
        try:
            while not session.closed and not finisher.done():
                try:
                    data = await asyncio.wait_for(reader.read(self._read_size), self._idle)
                except TimeoutError:
                    log.info("jt809_idle_closed", peer=peer)
                    break
                if not data:
                    break
                out = session.feed(data, self._clock())
                fut = None
                if out.publish:
                    if self._group_commit:
                        await self._writes.room()
                        fut = self._writes.submit(out.publish)
                    else:
                        await self._slots.acquire()
                        fut = asyncio.ensure_future(self._publish(out.publish))
                        fut.add_done_callback(lambda _f: self._slots.release())
                await pending.put((fut, out))
        except (ConnectionError, OSError) as exc:
            log.info("jt809_link_error", peer=peer, error=repr(exc))
        finally:
            if not finisher.done():
                with contextlib.suppress(asyncio.QueueFull):
                    pending.put_nowait(None)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(finisher), 30)
            finisher.cancel()
            while not pending.empty():  # left behind by a failed write: nothing will reply to them
                left = pending.get_nowait()
                if left is not None and left[0] is not None:
                    left[0].cancel()
            lost = session.connection_lost(self._clock())
            with contextlib.suppress(Exception):
                if lost.publish:
                    await self._publish(lost.publish)
            if session.platform is not None and self.links.get(session.platform.user_id) is link:
                del self.links[session.platform.user_id]
                await self._link_status(session.platform.user_id, "down")
            if link.slave_task is not None:
                link.slave_task.cancel()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._conns.discard(task)
            self._writers.discard(writer)

    async def _link_status(self, user_id: int, status: str) -> None:
        """Record the link state (``platforms.link_status``); best effort, never fails a link."""
        if self._on_link is None:
            return
        try:
            await asyncio.wait_for(self._on_link(user_id, status), 5)
        except Exception as exc:
            log.warning("jt809_link_status_failed", user_id=user_id, error=repr(exc))

    async def _finish(
        self, link: _Link, pending: asyncio.Queue[tuple[asyncio.Future[None] | None, LinkOutput] | None]
    ) -> None:
        while True:
            item = await pending.get()
            if item is None:
                return
            fut, out = item
            try:
                if fut is not None:
                    await fut  # durable before any reply of this read
                await self._apply(link, out)
            except Exception as exc:
                log.warning("jt809_publish_failed", peer=link.session.peer, error=repr(exc))
                link.session.closed = True
                link.writer.close()
                while not pending.empty():
                    nxt = pending.get_nowait()
                    if nxt is not None and nxt[0] is not None:
                        nxt[0].cancel()
                return

    async def _apply(self, link: _Link, out: LinkOutput) -> None:
        for raw, error in out.dlq:
            self.stats["dlq"] += 1
            if self._metrics:
                self._metrics.frames.labels("dlq").inc()
            if self._dead_letter is not None:
                await self._dead_letter(raw, error, link.session.peer)
        if out.replies:
            link.writer.write(b"".join(out.replies))
            await link.writer.drain()
        self.stats["positions"] += out.positions
        self.stats["backfilled"] += out.backfilled
        self.stats["alarms"] += out.alarms
        if self._metrics:
            if out.positions:
                self._metrics.positions.labels("live").inc(out.positions)
            if out.backfilled:
                self._metrics.positions.labels("backfill").inc(out.backfilled)
        if out.login_result is not None:
            ok = out.login_result == p.LOGIN_OK
            self.stats["logins_ok" if ok else "logins_refused"] += 1
            if self._metrics:
                self._metrics.logins.labels(_LOGIN_NAMES.get(out.login_result, "other")).inc()
            if ok and link.session.platform is not None:
                old = self.links.pop(link.session.platform.user_id, None)
                if old is not None and old.slave_task is not None:
                    old.slave_task.cancel()
                self.links[link.session.platform.user_id] = link
                await self._link_status(link.session.platform.user_id, "up")
        if out.slave is not None and self._slave_enabled:
            link.slave_task = asyncio.create_task(self._slave(link, out.slave), name="jt809-slave")
        if self._on_answer is not None and link.session.platform is not None:
            for ans in out.answers:
                res = self._on_answer(link.session.platform.user_id, ans)
                if asyncio.iscoroutine(res):
                    await res

    # ---------------------------------------------------------------- slave link

    async def _slave(self, link: _Link, target: SlaveTarget) -> None:
        """Connect back to the lower platform's down-link, log in with 0x9001, keep it alive with 0x9005."""
        backoff = 1.0
        session = link.session
        while not session.closed:
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(target.ip, target.port), 10)
            except (OSError, TimeoutError) as exc:
                log.info("jt809_slave_connect_failed", target=f"{target.ip}:{target.port}", error=repr(exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)
                continue
            framer = p.Framer(self._max_frame)
            try:
                writer.write(session.frame(p.DOWN_CONNECT_REQ, p.slave_login_body(target.verify_code)))
                await writer.drain()
                ok = await self._await_msg(reader, framer, session, p.DOWN_CONNECT_RSP, 10.0)
                if ok is None or ok.body[:1] != b"\x00":
                    raise ConnectionError(f"slave login refused: {ok.body.hex() if ok else 'timeout'}")
                link.slave_writer, link.slave_up = writer, True
                if session.platform is not None:
                    await self._link_status(session.platform.user_id, "up+slave")
                backoff = 1.0
                log.info("jt809_slave_up", user_id=session.platform.user_id if session.platform else None)
                while not session.closed:
                    writer.write(session.frame(p.DOWN_LINKTEST_REQ, b""))
                    await writer.drain()
                    if await self._await_msg(reader, framer, session, p.DOWN_LINKTEST_RSP, self._hb) is None:
                        raise ConnectionError("slave keepalive unanswered")
                    await asyncio.sleep(self._hb)
            except (OSError, ConnectionError, TimeoutError, FrameError) as exc:
                log.info("jt809_slave_down", error=repr(exc))
            finally:
                link.slave_up, link.slave_writer = False, None
                writer.close()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 60.0)

    async def _await_msg(
        self,
        reader: asyncio.StreamReader,
        framer: p.Framer,
        session: Jt809LinkSession,
        msg_id: int,
        timeout: float,
    ) -> p.Frame | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                return None
            try:
                data = await asyncio.wait_for(reader.read(65536), left)
            except TimeoutError:
                return None
            if not data:
                raise ConnectionError("slave link closed")
            for payload in framer.feed(data):
                try:
                    frame = p.decode_frame(
                        payload,
                        edition=session.edition or p.Edition.V2011,
                        cipher=session.platform.cipher if session.platform else None,
                    )
                except FrameError:
                    continue
                if frame.msg_id == msg_id:
                    return frame

    def enforce(self, directory: PlatformDirectory) -> int:
        """Close the links of platforms removed or disabled in the registry (after a refresh); how many."""
        closed = 0
        for user_id, link in list(self.links.items()):
            rec = directory.by_user.get(user_id)
            if rec is None or rec.disabled:
                log.warning("jt809_link_revoked", user_id=user_id, reason="disabled" if rec else "removed")
                link.session.closed = True
                link.writer.close()
                closed += 1
            elif (
                rec != link.session.platform
            ):  # name, allowed plates, keys: the live link follows the registry
                link.session.platform = rec
        return closed

    # ---------------------------------------------------------------- requests down

    def link_for(self, device_id: str, platform: str | None = None) -> _Link | None:
        """The live link of the platform forwarding ``device_id``.

        ``platform`` (the event's ``source.platform``: registry name or user id) picks the link when it
        is up; otherwise the link that has forwarded the vehicle, else the only link whose allowed plates
        list it. None when no live link fits.
        """
        live = [link for link in self.links.values() if link.session.logged_in]
        if platform:
            for link in live:
                rec = link.session.platform
                if rec is not None and platform in (rec.label, str(rec.user_id)):
                    return link
        for link in live:
            if link.session.knows(device_id):
                return link
        plate = device_id.rpartition(":")[0]
        listed = [
            link
            for link in live
            if link.session.platform is not None
            and link.session.platform.allowed_plates is not None
            and (
                device_id in link.session.platform.allowed_plates
                or plate in link.session.platform.allowed_plates
            )
        ]
        return listed[0] if len(listed) == 1 else None

    async def send_down(self, user_id: int, msg_id: int, body: bytes) -> bool:
        """Send a 0x9xxx request over the slave link (the main link when the slave is down)."""
        link = self.links.get(user_id)
        if link is None or link.session.closed:
            return False
        writer = link.slave_writer if link.slave_up and link.slave_writer is not None else link.writer
        writer.write(link.session.frame(msg_id, body))
        await writer.drain()
        return True

    async def request_tracking(
        self, user_id: int, plate: str, colour: int, *, start: bool = True, reason: int = 2
    ) -> bool:
        """0x9205/0x9206: start/stop forwarding a vehicle's live positions (reason 2 = emergency)."""
        sub = p.DOWN_EXG_MSG_RETURN_STARTUP if start else p.DOWN_EXG_MSG_RETURN_END
        data = p.return_startup_body(reason) if start else p.return_end_body(reason)
        return await self.send_down(user_id, p.DOWN_EXG_MSG, p.vehicle_body(plate, colour, sub, data))

    async def supervise(self, user_id: int, plate: str, colour: int, supervision: p.Supervision) -> bool:
        """0x9401: alarm supervision; the answer comes back as 0x1401 through ``on_answer``."""
        return await self.send_down(
            user_id,
            p.DOWN_WARN_MSG,
            p.vehicle_body(plate, colour, p.DOWN_WARN_MSG_URGE_TODO_REQ, p.supervision_body(supervision)),
        )


_LOGIN_NAMES = {
    p.LOGIN_OK: "ok",
    p.LOGIN_BAD_IP: "bad_ip",
    p.LOGIN_BAD_ACCESS_CODE: "bad_access_code",
    p.LOGIN_UNKNOWN_USER: "unknown_platform",
    p.LOGIN_BAD_PASSWORD: "bad_password",
    p.LOGIN_OTHER: "disabled",
}


class _Metrics:
    def __init__(self, registry: Any) -> None:
        from prometheus_client import Counter

        self.logins = Counter(
            "alarmhub_ingest_gps_jt809_logins_total",
            "JT/T 809 main-link logins by result",
            ["result"],
            registry=registry,
        )
        self.positions = Counter(
            "alarmhub_ingest_gps_jt809_positions_total",
            "JT/T 809 positions taken in",
            ["kind"],
            registry=registry,
        )
        self.frames = Counter(
            "alarmhub_ingest_gps_jt809_frames_total",
            "JT/T 809 frames by result",
            ["result"],
            registry=registry,
        )
