"""Cut fuel/power (immobilise) and restore, per terminal model: which models can, and the bytes they take.

Editions and formats (sources noted in the tests, none copied):

- **JT/T 808-2011 / -2019 0x8500 vehicle control.** 2011: one control-flag byte; the standard defines
  only bit 0 (door lock), bits 1–7 are reserved and vendors put the fuel/power relay there. 2019: a
  WORD count of control types, each a WORD type id and its parameters; the standard defines type
  0x0001 (door, one byte), 0xF001–0xFFFF are the vendor's. The terminal answers 0x0500 (the serial of
  the 0x8500 and a 0x0200 location body), read by :func:`read_control_reply`.
- **JT/T 808 0x8105 terminal control** with a vendor command word (0xF0 stop / 0xF1 resume on many
  clones; 0x64/0x65 on W15L units), answered by the general response 0x0001.
- **GT06 (Concox) 0x80 online command**: a length byte, a 4-byte server flag and ASCII text —
  ``RELAY,1#`` / ``RELAY,0#`` on current firmware, ``DYD,<password>#`` / ``HFYD,<password>#`` on the
  GT06N; the terminal answers 0x15/0x21 with text after the server flag it was sent (the sessions
  put the command's serial there to correlate the answer) — :func:`refused` reads the text.
- **H02 ``S20``**: ``*HQ,<id>,S20,<hhmmss>,1,1#`` cuts, ``…,1,0#`` restores; the terminal answers
  ``*HQ,<id>,V4,S20,DONE|ERROR,<the command's hhmmss>,<its fix>#`` (``protocols/h02.command_answer``).

Choices: a model not in :data:`MODELS` (or registered with another protocol) is *unsupported* — no guessed
bytes go to a moving vehicle. Nothing here knows speeds: the safe-speed rule is dispatch's (it refuses
the command before it reaches the gateway) and the terminals' own (Concox units wait below 20 km/h).
Model names are matched case-insensitively.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime

from . import gt06, jt808
from ._common import FrameError, Position

__all__ = [
    "MODELS",
    "T_CONTROL_REPLY",
    "CutoffModel",
    "encode_gt06",
    "encode_gt06_text",
    "encode_h02",
    "encode_jt808",
    "lookup",
    "read_control_reply",
    "refused",
]

P_TERMINAL_CONTROL = 0x8105
P_VEHICLE_CONTROL = 0x8500
T_CONTROL_REPLY = 0x0500
GT06_ONLINE_COMMAND = 0x80


@dataclass(frozen=True, slots=True)
class CutoffModel:
    """How one terminal model cuts and restores: ``method`` names the message; ``cut``/``restore`` its values.

    - ``jt808-8500``: ``cut`` is the 2011 control-flag bit number, ``restore`` the 2019 vendor control
      type id (its parameter byte is 1 to cut, 0 to restore);
    - ``jt808-8105``: the 0x8105 command words;
    - ``gt06-text``: the command texts (``{password}`` replaced);
    - ``h02-s20``: the S20 parameters.
    """

    protocol: str
    method: str
    cut: int | str
    restore: int | str
    source: str


#: model (upper case) → how it is cut off; deployments add a model by adding its row here, with its source
MODELS: dict[str, CutoffModel] = {
    "GT06": CutoffModel(
        "gt06", "gt06-text", "Relay,1#", "Relay,0#", "Concox GT06 manual, RELAY,1# / RELAY,0#"
    ),
    "GT06N": CutoffModel(
        "gt06", "gt06-text", "DYD,{password}#", "HFYD,{password}#", "Concox GT06N manual, DYD/HFYD"
    ),
    "H02": CutoffModel("h02", "h02-s20", "1,1", "1,0", "H02 (Sinotrack) command list, S20"),
    "JT808": CutoffModel("jt808", "jt808-8105", 0xF0, 0xF1, "JT/T 808 clones, 0x8105 words 0xF0/0xF1"),
    "W15L": CutoffModel("jt808", "jt808-8105", 0x64, 0x65, "W15L JT/T 808 unit, 0x8105 words 0x64/0x65"),
}
#: a 0x8500 terminal's row names its vendor's bit and type, e.g.
#: ``CutoffModel("jt808", "jt808-8500", <2011 flag bit>, <2019 type id>, "<vendor document>")``


def lookup(model: str | None, protocol: str) -> CutoffModel | None:
    """The model's cut-off, or None when this model (on this protocol) has none we know."""
    if not model:
        return None
    spec = MODELS.get(model.strip().upper())
    return spec if spec is not None and spec.protocol == protocol else None


def encode_jt808(
    spec: CutoffModel, phone: str, serial: int, *, cut: bool, version: int | None = None
) -> tuple[int, bytes]:
    """(message id, frame): a 0x8500 (edition by ``version``: None → 2011) or a 0x8105 with the vendor's word."""
    if spec.method == "jt808-8105":
        word = int(spec.cut if cut else spec.restore)
        return P_TERMINAL_CONTROL, jt808.encode(
            P_TERMINAL_CONTROL, phone, serial, bytes([word]), version=version
        )
    if spec.method != "jt808-8500":
        raise ValueError(f"{spec.method} is not a JT/T 808 cut-off")
    if version is None:  # 2011: one control-flag byte, the vendor's bit set to cut, clear to restore
        body = bytes([(1 << int(spec.cut)) if cut else 0])
    else:  # 2019: one control type, its one parameter byte
        body = struct.pack(">HHB", 1, int(spec.restore), 1 if cut else 0)
    return P_VEHICLE_CONTROL, jt808.encode(P_VEHICLE_CONTROL, phone, serial, body, version=version)


def read_control_reply(body: bytes, *, tz_hours: float = 8.0) -> tuple[int, Position]:
    """0x0500: the serial of the 0x8500 it answers and the position after the control."""
    if len(body) < 30:
        raise FrameError("0x0500 body shorter than 30 bytes")
    (serial,) = struct.unpack_from(">H", body)
    return serial, jt808.decode_location(body[2:], tz_hours=tz_hours)


def encode_gt06(
    spec: CutoffModel, serial: int, *, cut: bool, password: str = "123456", flag: int = 0
) -> bytes:
    """A GT06 0x80 online command: length, the 4-byte server ``flag`` (the terminal echoes it in its
    0x15/0x21 answer), the ASCII text; ``serial`` is the frame's."""
    if spec.method != "gt06-text":
        raise ValueError(f"{spec.method} is not a GT06 cut-off")
    return encode_gt06_text(
        str(spec.cut if cut else spec.restore).replace("{password}", password), serial, flag
    )


def encode_gt06_text(text: str, serial: int, flag: int = 0) -> bytes:
    """Any GT06 0x80 online command (``WHERE#``, a cut-off's text): length, server flag, ASCII text."""
    raw = text.encode("ascii")
    content = bytes([4 + len(raw)]) + struct.pack(">I", flag & 0xFFFFFFFF) + raw
    return gt06.encode(GT06_ONLINE_COMMAND, content, serial)


#: words of a GT06 text answer (or an H02 V4 result) saying the command was not carried out
_REFUSALS = ("fail", "error", "invalid", "wrong", "refuse", "denied", "not ", "unknown", "limit", "no data")


def refused(text: str | None) -> bool:
    """Whether a terminal's text answer refuses the command (``Cut off the fuel supply: Success!`` does
    not, ``Command error!`` does). A text naming no failure counts as carried out; the text itself
    travels with the answer either way."""
    low = (text or "").lower()
    if "success" in low:
        return False
    return any(word in low for word in _REFUSALS)


def encode_h02(spec: CutoffModel, device_id: str, at: datetime, *, cut: bool) -> bytes:
    """``*HQ,<id>,S20,<hhmmss>,<params>#``; ``at`` is the time the command is stamped with."""
    if spec.method != "h02-s20":
        raise ValueError(f"{spec.method} is not an H02 cut-off")
    return f"*HQ,{device_id},S20,{at:%H%M%S},{spec.cut if cut else spec.restore}#".encode("ascii")
