"""JT/T 808 conformance adapter: a captured frame → what our decoder (and, for registration and
authentication, our session) makes of it, in the corpus's vocabulary.

Keys: ``message_id``, ``terminal`` (as sent, lower case), ``decoded``, ``position`` and the position
fields, ``alarms`` (alarm word and vendor items), ``satellites`` …, ``reply_id`` (the message id our
gateway answers a 0x0100/0x0102 with), ``positions`` (0x0704 count).
"""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alarmhub_ingest_gps.protocols import jt808
from alarmhub_ingest_gps.sessions import Jt808Session, SessionConfig

_spec = importlib.util.spec_from_file_location("_conformance_gps", Path(__file__).with_name("_gps.py"))
assert _spec is not None and _spec.loader is not None
_gps = sys.modules.setdefault("_conformance_gps", importlib.util.module_from_spec(_spec))
if not hasattr(_gps, "position_view"):
    _spec.loader.exec_module(_gps)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _alarms(pos: Any) -> list[str]:
    names = [name for bit, name in jt808.ALARM_BITS.items() if pos.alarm_bits >> bit & 1]
    names += list(getattr(pos, "alarms", ()) or ())
    return _gps.alarm_names(names)


def decode(frame: bytes, context: dict[str, Any]) -> dict[str, Any]:
    if context.get("unescaped"):  # the bytes after a frame decoder: escape them as they travel
        frame = b"\x7e" + jt808.escape(frame.strip(b"\x7e")) + b"\x7e"
    msg = jt808.decode(frame)
    h = msg.header
    view: dict[str, Any] = {"message_id": h.msg_id, "terminal": h.phone, "decoded": True, "position": False}
    if h.version is not None:
        view["version"] = h.version
    if h.package_total is not None:
        view["package"] = [h.package_index, h.package_total]
        return view  # one part of a sub-packaged message: nothing to decode alone
    mid = h.msg_id
    if mid in (jt808.T_REGISTER, jt808.T_AUTH):
        session = Jt808Session({}, SessionConfig(), peer="127.0.0.1:1")
        out = session.feed(frame if frame[:1] == b"\x7e" else b"\x7e" + frame + b"\x7e", NOW)
        replies = jt808.Framer().feed(out.reply)
        if replies:
            view["reply_id"] = jt808.decode(replies[0]).header.msg_id
        if mid == jt808.T_REGISTER:
            reg = jt808.decode_registration(msg.body, is_2019=h.is_2019)
            view.update(plate=reg.plate, edition=reg.edition, terminal_id=reg.terminal_id)
        else:
            view["auth_code"] = jt808.decode_auth(msg.body, is_2019=h.is_2019).code
        return view
    if mid in jt808.POSITION_MESSAGES:
        tz = float(context.get("tz_hours", 8.0))
        extra = {"model": context["model"]} if "model" in context else {}
        positions = jt808.read(msg, tz_hours=tz, **extra)
        if mid in (jt808.T_BATCH, jt808.T_BATCH_VENDOR):
            view["positions"] = len(positions)
        if not positions:
            return view
        view.update(_gps.position_view(positions[0]))
        view["alarms"] = sorted({a for p in positions for a in _alarms(p)})
        return view
    if mid in (jt808.T_HEARTBEAT, jt808.T_LOGOUT):
        return view
    if mid == jt808.T_GENERAL_RESPONSE:
        r = jt808.decode_general_response(msg.body)
        view.update(reply_serial=r.reply_serial, reply_to=r.reply_id, result=r.result)
        return view
    # any other message (platform commands, media, transparent data): the header is all we read of it;
    # the gateway answers a terminal's with 'unsupported'
    return view
