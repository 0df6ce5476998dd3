"""JT/T 809 conformance adapter: a captured frame → what our decoder makes of it, in the corpus's vocabulary.

``context.edition`` (2011 or 2019) is what the link session learns from the login; ``context.m1/ia1/ic1``
are the platform's cipher constants when the source gives them.

Keys: ``message_id``, ``serial``, ``gnss_center_id``, ``encrypted``, ``key``, ``decoded``; login fields
(``user_id``, ``password``, ``down_link_ip``, ``down_link_port``); for 0x1200/0x1400 the ``sub_type``,
``plate``, ``colour``; positions (``position``, ``lat``, ``lon``, ``time``, ``heading``, ``altitude``,
``alarms`` from the alarm word, ``kinds``); alarms (``warn_type``, ``warn_name``, ``kinds``, ``content``,
``source_platform``).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from alarmhub_ingest_gps.jt809 import WARN_KINDS
from alarmhub_ingest_gps.protocols import jt809 as p
from alarmhub_ingest_gps.protocols.jt808 import ALARM_BITS
from alarmhub_ingest_gps.sessions import ALARM_KINDS

_spec = importlib.util.spec_from_file_location("_conformance_gps", Path(__file__).with_name("_gps.py"))
assert _spec is not None and _spec.loader is not None
_gps = sys.modules.setdefault("_conformance_gps", importlib.util.module_from_spec(_spec))
if not hasattr(_gps, "position_view"):
    _spec.loader.exec_module(_gps)


def _fix(view: dict[str, Any], pos: p.Position) -> None:
    names = [name for bit, name in ALARM_BITS.items() if pos.alarm_bits >> bit & 1]
    view.update(
        position=True,
        lat=pos.lat,
        lon=pos.lon,
        time=_gps.iso(pos.time),
        speed_kmh=pos.speed_kmh,
        alarms=names,
        kinds=sorted({ALARM_KINDS[n].value for n in names if n in ALARM_KINDS}),
    )
    if pos.heading_deg is not None:
        view["heading"] = pos.heading_deg
    if pos.altitude_m is not None:
        view["altitude"] = pos.altitude_m


def decode(frame: bytes, context: dict[str, Any]) -> dict[str, Any]:
    edition = int(context.get("edition", 2011))
    payload = frame[1:-1] if frame[:1] == b"\x5b" and frame[-1:] == b"\x5d" else frame
    cipher = None
    if "m1" in context:
        cipher = p.Cipher(int(context["m1"]), int(context["ia1"]), int(context["ic1"]))
    try:
        fr = p.decode(payload, edition=edition, cipher=cipher)
    except p.FrameError as exc:
        if "no keys" in str(exc):
            raise NotImplementedError(
                "encrypted with cipher constants (M1/IA1/IC1) the source does not give"
            ) from exc
        raise
    h = fr.header
    view: dict[str, Any] = {
        "message_id": h.msg_id,
        "serial": h.serial,
        "gnss_center_id": h.gnss_center_id,
        "encrypted": h.encrypted,
        "key": h.key,
        "decoded": True,
        "position": False,
    }
    if h.msg_id == p.UP_CONNECT_REQ:
        login = p.read(fr, edition=edition)
        view.update(
            user_id=login.user_id,
            password=login.password,
            down_link_ip=login.down_link_ip,
            down_link_port=login.down_link_port,
        )
    elif h.msg_id == p.UP_EXG_MSG:
        vm = p.read(fr)
        view.update(sub_type=vm.sub_type, plate=vm.plate, colour=vm.colour)
        if vm.sub_type == p.UP_EXG_MSG_REAL_LOCATION:
            _fix(view, p.read(vm, edition=edition))
        elif vm.sub_type == p.UP_EXG_MSG_HISTORY_LOCATION:
            fixes = p.read(vm, edition=edition)
            view["positions"] = len(fixes)
            if fixes:
                _fix(view, fixes[0])
    elif h.msg_id == p.UP_WARN_MSG:
        vm = p.read(fr, edition=edition)  # the 2011 head, or 2019's without the plate
        view.update(sub_type=vm.sub_type, plate=vm.plate, colour=vm.colour)
        if vm.sub_type == p.UP_WARN_MSG_ADPT_INFO:
            alarm = p.read(vm, edition=edition)
            view.update(
                warn_type=alarm.warn_type,
                warn_name=alarm.name,
                content=alarm.content,
                source_platform=alarm.source_platform,
                kinds=[WARN_KINDS.get(alarm.name, "other").__str__()],
            )
    return view
