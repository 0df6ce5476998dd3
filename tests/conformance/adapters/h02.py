"""H02 conformance adapter: a captured frame → what our decoder makes of it, in the corpus's vocabulary.

Keys: ``terminal`` (device id as sent), ``type`` (V1, V19, NBR, HTBT …, or ``binary``), ``decoded``,
``position`` and the position fields, ``status`` (the 32-bit status word), ``alarms``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from alarmhub_ingest_gps.protocols import h02

_spec = importlib.util.spec_from_file_location("_conformance_gps", Path(__file__).with_name("_gps.py"))
assert _spec is not None and _spec.loader is not None
_gps = sys.modules.setdefault("_conformance_gps", importlib.util.module_from_spec(_spec))
if not hasattr(_gps, "position_view"):
    _spec.loader.exec_module(_gps)


def decode(frame: bytes, context: dict[str, Any]) -> dict[str, Any]:
    if frame[:1] == b"$":  # binary: decoded as the framer hands it on (its length is the framer's business)
        frames = [frame]
    else:
        frames = h02.Framer().feed(frame)
    if len(frames) != 1:
        raise ValueError(f"the framer found {len(frames)} frames in the vector")
    msg = h02.decode(frames[0], tz_hours=float(context.get("tz_hours", 0.0)))
    view: dict[str, Any] = {"terminal": msg.device_id, "type": msg.kind, "decoded": True, "position": False}
    view.update(msg.attributes)
    if msg.position is not None:
        pos = msg.position
        view.update(_gps.position_view(pos))
        if pos.status_bits != 0xFFFFFFFF or "alarms" in pos.attributes:
            view["status"] = pos.status_bits
        view["alarms"] = _gps.alarm_names(pos.attributes.get("alarms", ()))
    return view
