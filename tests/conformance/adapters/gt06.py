"""GT06 conformance adapter: a captured frame → what our decoder makes of it, in the corpus's vocabulary.

Keys: ``message_id`` (protocol number), ``serial``, ``decoded`` (our decoder interprets this packet type),
``position`` and the position fields, ``alarms``, ``imei`` and ``terminal`` (login), ``satellites``,
``ignition``, ``voltage_level``/``gsm_signal``; for a report without a fix ``cells`` and ``wifi`` (counts).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from alarmhub_ingest_gps.protocols import Position, gt06

_spec = importlib.util.spec_from_file_location("_conformance_gps", Path(__file__).with_name("_gps.py"))
assert _spec is not None and _spec.loader is not None
_gps = sys.modules.setdefault("_conformance_gps", importlib.util.module_from_spec(_spec))
if not hasattr(_gps, "position_view"):
    _spec.loader.exec_module(_gps)


def decode(frame: bytes, context: dict[str, Any]) -> dict[str, Any]:
    msg = gt06.decode(frame)
    view: dict[str, Any] = {"message_id": msg.protocol, "serial": msg.serial, "position": False}
    extra = {"model": context["model"]} if "model" in context else {}
    payload = gt06.read(msg, tz_hours=float(context.get("tz_hours", 0.0)), **extra)
    view["decoded"] = payload is not None
    if isinstance(payload, gt06.Login):
        view.update(imei=payload.imei, terminal=payload.imei)
    elif isinstance(payload, gt06.Heartbeat):
        view.update(payload.attributes)
        view["alarms"] = _gps.alarm_names(
            [payload.attributes.get("alarm"), *payload.attributes.get("alarms", ())]
        )
        if "acc" in payload.attributes:
            view["ignition"] = payload.attributes["acc"]
    elif isinstance(payload, Position):
        view.update(_gps.position_view(payload))
        view["alarms"] = _gps.alarm_names([*getattr(payload, "alarms", ()), payload.attributes.get("alarm")])
        if "acc" in payload.attributes:
            view["ignition"] = payload.attributes["acc"]
    elif isinstance(payload, gt06.Network):
        view.update(payload.attributes)
        view.update(time=_gps.iso(payload.time), cells=len(payload.cells), wifi=len(payload.wifi))
        if "acc" in payload.attributes:
            view["ignition"] = payload.attributes["acc"]
    elif isinstance(payload, dict):
        view.update(payload)
    return view
