"""Positions and alarms of a JT/T 809 link (0x1202/0x1203, the alarm words, 0x1402's alarm events).

:class:`PositionDecoder` is the half of :class:`~.session.Jt809LinkSession` that turns vehicle positions
into ``GpsFix`` records and alarm edges: the general path (``_fix`` → ``_emit``, from decoded frames) and
the hot path (``_fast_1202``: an unencrypted 2011 0x1202 unpacked at once and, with ``direct``, written
straight to JSON as a ``RawFix`` by ``_fast_json``). Both give equal fixes (tested).
"""

from __future__ import annotations

import binascii
import struct
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Any

from alarmhub_events import (
    ALARMS_RAW,
    GPS_SCHEMA,
    TELEMETRY_GPS,
    AlarmEvent,
    AlarmKind,
    Location,
    Protocol,
    Qualifier,
    Source,
    VehicleAttr,
)
from alarmhub_events.fast import iso_z, json_string_memo
from alarmhub_geo import gcj02_to_wgs84

from ..fastfix import RawFix, event_id_bytes, fast_fix
from ..protocols import jt808
from ..protocols import jt809 as p
from ..sessions import ALARM_KINDS
from ..signals import signal_of
from .output import LinkOutput
from .platforms import PlatformRecord

__all__ = ["PositionDecoder"]

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


class PositionDecoder:
    """Position and alarm handling of a link session (its state is set by ``Jt809LinkSession.__init__``)."""

    platform: PlatformRecord | None
    peer: str | None
    vehicles: Any
    direct: bool
    _max_vehicles: int
    _max_future: timedelta
    _last: OrderedDict[str, tuple[float, float]]
    _alarms: OrderedDict[str, frozenset[str]]
    _plates: dict[tuple[bytes, int], tuple[str, str, bytes, bytes]]
    _tkey: tuple[int, ...]
    _tval: datetime | None
    _at_src: tuple[datetime | None, datetime | None]
    _at_iso: bytes
    _now_iso: bytes

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
            bits = {"alarm_bits": alarm_bits, "status_bits": status, VehicleAttr.SPEED_KMH: max(speed, 0.0)}
            text = raw.hex()
            for name in sorted(names - prev):
                self._alarm(vm, ALARM_KINDS.get(name), name, Qualifier.NEW, at, now, text, out, bits)
            for name in sorted(prev - names):
                self._alarm(vm, ALARM_KINDS.get(name), name, Qualifier.RESTORE, at, now, text, out, bits)

    def _fast_1202(self, payload: bytes, now: datetime, out: LinkOutput) -> bool:
        """The hot path: an unencrypted 2011 0x1200/0x1202 decoded with one ``unpack`` and no intermediate
        objects. False (nothing done) for anything else, which the general path then decodes; the two
        give equal fixes (tested). With ``direct`` a fix whose alarm word did not change is written as
        JSON by ``_fast_json``; alarm edges still take ``_emit``, which builds the events."""
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
        known = self._plates.get((plate_b, colour)) or self._fast_vehicle(plate_b, colour)
        if known is None:
            return False
        tkey = (year, month, day, hh, mm, ss)
        if tkey != self._tkey:
            self._tkey, self._tval = tkey, p.local_time(year, month, day, hh, mm, ss)
        names = _alarm_names(alarm) if alarm else _NONE
        if self.direct and names == self._alarms.get(known[1], _NONE):
            self._fast_json(
                known, lat, lon, penc, vec1, vec2, vec3, direction, alt, state, alarm, names, now, out
            )
            return True
        self._emit(
            known[0],
            colour,
            known[1],
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

    def _fast_vehicle(self, plate_b: bytes, colour: int) -> tuple[str, str, bytes, bytes] | None:
        """A vehicle new to the fast path's memo: its plate, device id and, for ``direct``, its fix JSON's
        text from the schema to ``"lat":`` and the attributes' platform/plate/colour; None (memo untouched)
        when the platform may not report it."""
        plate = plate_b.split(b"\x00", 1)[0].decode("gbk", errors="replace").strip()
        device_id = f"{plate}:{colour}"
        assert self.platform is not None
        if not plate or not self.platform.allows(plate, device_id):
            return None
        if len(self._plates) >= self._max_vehicles:
            self._plates.clear()
        known = self._plates[(plate_b, colour)] = (
            plate,
            device_id,
            f'","schema":"{GPS_SCHEMA}","device_id":{_jstr(device_id)},"protocol":"jt809","lat":'.encode(),
            f',"platform":{_jstr(self.platform.label)},"plate":{_jstr(plate)},"plate_colour":{colour}'.encode(),
        )
        return known

    def _fast_json(
        self,
        known: tuple[str, str, bytes, bytes],
        lat: int,
        lon: int,
        penc: int,
        vec1: int,
        vec2: int,
        vec3: int,
        direction: int,
        alt: int,
        state: int,
        alarm: int,
        names: frozenset[str],
        now: datetime,
        out: LinkOutput,
    ) -> None:
        """The direct path of ``_fast_1202`` (its unpacked fields, the vehicle's memo entry): what ``_emit``
        + ``fast_fix`` + ``fix_json`` give for a fix without alarm edges, written as a ``RawFix``."""
        device_id = known[1]
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
        sig = signal_of(code, attrs)
        if (
            sig is not None
        ):  # the shared vehicle vocabulary (alarmhub_events.VehicleSignal), as trackers write it
            extra[VehicleAttr.SIGNAL] = sig.value
            extra.setdefault(VehicleAttr.ARMED, False)
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
