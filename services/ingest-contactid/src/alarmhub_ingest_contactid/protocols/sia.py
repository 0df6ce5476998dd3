"""SIA DCS (DC-03 data) payloads as carried in DC-09 ``SIA-DCS`` messages. Pure.

Data block: ``[#acct|]N<modifiers><CC><number>[/<modifiers><CC><number>…][^text^]`` — ``N`` opens a
new-event block, lower-case two-letter modifiers carry a value (``ri`` area, ``id`` user, ``ti``
time, ``pi`` peripheral…) and stay in force for the following events, each event is a two-letter
code and an optional zone/user number; ``/`` separates several events in one message.

Codes map onto the contract's ``kind`` and qualifier through :data:`CODES`. A code not listed there is
read by its structure, as DC-03 builds most codes: the first letter the zone type (``B`` burglary, ``F``
fire, ``H`` holdup, ``M`` medical, ``P`` panic, ``Q`` emergency, ``S`` sprinkler, ``T`` tamper …), the second
the condition (``A`` alarm, ``H``/``R`` restore, ``T`` trouble, ``J`` trouble restore, ``S`` supervisory,
``B``/``U`` bypass, ``X`` test) — so a sprinkler alarm restore (``SH``) is a fire restore, not a new
alarm of kind other. The rest become ``other`` (an alarm is never dropped for an unknown code — the
original code rides in ``code``).

Edition: ANSI/SIA DC-03 (the SIA format's data), as carried by ANSI/SIA DC-09. The face is
:func:`decode` (a data block → account and :class:`SiaEvent` list). Choices: only new-event (``N``)
blocks are read; modifiers carry over to later events of the same message; a trailing ``^text^``
rides on every event; a block with no event code is refused (``DUH``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from alarmhub_events import AlarmKind, Qualifier

from .dc09 import UnsupportedError

__all__ = ["CODES", "SiaEvent", "code_kind", "decode"]

K = AlarmKind
N, R, S = Qualifier.NEW, Qualifier.RESTORE, Qualifier.STATUS

#: SIA event code -> (kind, qualifier, description).
CODES: Final[dict[str, tuple[AlarmKind, Qualifier, str]]] = {
    "AR": (K.POWER_CUT, R, "AC restoral"),
    "AT": (K.POWER_CUT, N, "AC trouble"),
    "BA": (K.BURGLARY, N, "Burglary alarm"),
    "BB": (K.OTHER, N, "Burglary bypass"),
    "BC": (K.CANCEL, N, "Burglary cancel"),
    "BH": (K.BURGLARY, R, "Burglary alarm restore"),
    "BJ": (K.TROUBLE, R, "Burglary trouble restore"),
    "BR": (K.BURGLARY, R, "Burglary restoral"),
    "BS": (K.SUPERVISION, N, "Burglary supervisory"),
    "BT": (K.TROUBLE, N, "Burglary trouble"),
    "BU": (K.OTHER, R, "Burglary unbypass"),
    "BV": (K.BURGLARY, N, "Burglary verified"),
    "BX": (K.TEST, N, "Burglary test"),
    "CA": (K.OPEN_CLOSE, N, "Automatic closing"),
    "CE": (K.OPEN_CLOSE, N, "Closing extend"),
    "CF": (K.OPEN_CLOSE, N, "Forced closing"),
    "CG": (K.OPEN_CLOSE, N, "Close area"),
    "CI": (K.OPEN_CLOSE, N, "Fail to close"),
    "CJ": (K.OPEN_CLOSE, N, "Late close"),
    "CK": (K.OPEN_CLOSE, N, "Early close"),
    "CL": (K.OPEN_CLOSE, N, "Closing report"),
    "CP": (K.OPEN_CLOSE, N, "Automatic arming"),
    "CR": (K.OPEN_CLOSE, N, "Recent closing"),
    "CS": (K.OPEN_CLOSE, N, "Closing keyswitch"),
    "CT": (K.OPEN_CLOSE, N, "Late to open"),
    "CW": (K.OPEN_CLOSE, N, "Was force armed"),
    "CZ": (K.OPEN_CLOSE, N, "Point closing"),
    "DC": (K.OTHER, N, "Access closed"),
    "DD": (K.OTHER, N, "Access denied"),
    "DF": (K.BURGLARY, N, "Door forced"),
    "DG": (K.OTHER, N, "Access granted"),
    "DK": (K.TAMPER, N, "Access lockout"),
    "DO": (K.OTHER, N, "Access open"),
    "DR": (K.OTHER, R, "Door restoral"),
    "DT": (K.TROUBLE, N, "Access trouble"),
    "EA": (K.BURGLARY, N, "Exit alarm"),
    "ER": (K.TROUBLE, R, "Expansion restoral"),
    "ET": (K.TROUBLE, N, "Expansion trouble"),
    "FA": (K.FIRE, N, "Fire alarm"),
    "FB": (K.OTHER, N, "Fire bypass"),
    "FH": (K.FIRE, R, "Fire alarm restore"),
    "FJ": (K.TROUBLE, R, "Fire trouble restore"),
    "FR": (K.FIRE, R, "Fire restoral"),
    "FS": (K.TROUBLE, N, "Fire supervisory"),
    "FT": (K.TROUBLE, N, "Fire trouble"),
    "FU": (K.OTHER, R, "Fire unbypass"),
    "FX": (K.TEST, N, "Fire test"),
    "GA": (K.FIRE, N, "Gas alarm"),
    "GH": (K.FIRE, R, "Gas alarm restore"),
    "GR": (K.FIRE, R, "Gas restoral"),
    "GT": (K.TROUBLE, N, "Gas trouble"),
    "HA": (K.DURESS, N, "Holdup alarm"),
    "HH": (K.DURESS, R, "Holdup alarm restore"),
    "HR": (K.DURESS, R, "Holdup restoral"),
    "HT": (K.TROUBLE, N, "Holdup trouble"),
    "HJ": (K.TROUBLE, R, "Holdup trouble restore"),
    "JA": (K.TAMPER, N, "User code tamper"),
    "KA": (K.FIRE, N, "Heat alarm"),
    "KH": (K.FIRE, R, "Heat alarm restore"),
    "KR": (K.FIRE, R, "Heat restoral"),
    "KT": (K.TROUBLE, N, "Heat trouble"),
    "LR": (K.TROUBLE, R, "Phone line restoral"),
    "LT": (K.TROUBLE, N, "Phone line trouble"),
    "MA": (K.MEDICAL, N, "Medical alarm"),
    "MH": (K.MEDICAL, R, "Medical alarm restore"),
    "MR": (K.MEDICAL, R, "Medical restoral"),
    "MT": (K.TROUBLE, N, "Medical trouble"),
    "NA": (K.TROUBLE, N, "No activity"),
    "OA": (K.OPEN_CLOSE, N, "Automatic opening"),
    "OC": (K.CANCEL, N, "Cancel report"),
    "OG": (K.OPEN_CLOSE, N, "Open area"),
    "OI": (K.OPEN_CLOSE, N, "Fail to open"),
    "OJ": (K.OPEN_CLOSE, N, "Late open"),
    "OK": (K.OPEN_CLOSE, N, "Early open"),
    "OP": (K.OPEN_CLOSE, N, "Opening report"),
    "OR": (K.OPEN_CLOSE, N, "Disarm from alarm"),
    "OS": (K.OPEN_CLOSE, N, "Opening keyswitch"),
    "OT": (K.OPEN_CLOSE, N, "Late to close"),
    "OZ": (K.OPEN_CLOSE, N, "Point opening"),
    "PA": (K.PANIC, N, "Panic alarm"),
    "PH": (K.PANIC, R, "Panic alarm restore"),
    "PR": (K.PANIC, R, "Panic restoral"),
    "PT": (K.TROUBLE, N, "Panic trouble"),
    "QA": (K.MEDICAL, N, "Emergency alarm"),
    "QR": (K.MEDICAL, R, "Emergency restoral"),
    "RP": (K.TEST, N, "Automatic test"),
    "RX": (K.TEST, N, "Manual test"),
    "RR": (K.TROUBLE, N, "Power up"),
    "SA": (K.FIRE, N, "Sprinkler alarm"),
    "SR": (K.FIRE, R, "Sprinkler restoral"),
    "ST": (K.TROUBLE, N, "Sprinkler trouble"),
    "TA": (K.TAMPER, N, "Tamper alarm"),
    "TR": (K.TAMPER, R, "Tamper restoral"),
    "TX": (K.TEST, N, "Test report"),
    "UA": (K.OTHER, N, "Untyped zone alarm"),
    "UR": (K.OTHER, R, "Untyped zone restoral"),
    "UT": (K.TROUBLE, N, "Untyped zone trouble"),
    "WA": (K.OTHER, N, "Water alarm"),
    "WR": (K.OTHER, R, "Water restoral"),
    "XT": (K.TROUBLE, N, "Transmitter battery trouble"),
    "XR": (K.TROUBLE, R, "Transmitter battery restoral"),
    "YC": (K.TROUBLE, N, "Communications fail"),
    "YK": (K.TROUBLE, R, "Communications restoral"),
    "YM": (K.TROUBLE, N, "System battery missing"),
    "YP": (K.TROUBLE, N, "Power supply trouble"),
    "YQ": (K.TROUBLE, R, "Power supply restored"),
    "YR": (K.TROUBLE, R, "System battery restoral"),
    "YS": (K.TROUBLE, N, "Communications trouble"),
    "YT": (K.TROUBLE, N, "System battery trouble"),
    "YX": (K.TROUBLE, N, "Service required"),
    "ZA": (K.TROUBLE, N, "Freeze alarm"),
    "ZR": (K.TROUBLE, R, "Freeze restoral"),
    # read by structure too, listed for their names or because the structure would misread them
    "AA": (K.TAMPER, N, "Alarm panel substitution"),
    "AB": (K.CANCEL, N, "Abort"),
    "BG": (K.BURGLARY, N, "Unverified event burglary"),
    "BM": (K.BURGLARY, N, "Burglary alarm cross point"),
    "CQ": (K.OPEN_CLOSE, N, "Remote closing"),
    "EJ": (K.TAMPER, R, "Expansion tamper restore"),
    "EM": (K.TROUBLE, N, "Expansion device missing"),
    "EN": (K.TROUBLE, R, "Expansion missing restore"),
    "ES": (K.TAMPER, N, "Expansion device tamper"),
    "FC": (K.CANCEL, N, "Fire cancel"),
    "FG": (K.FIRE, N, "Unverified event fire"),
    "FI": (K.TEST, N, "Fire test begin"),
    "FK": (K.TEST, N, "Fire test end"),
    "FM": (K.FIRE, N, "Fire alarm cross point"),
    "FQ": (K.TROUBLE, R, "Fire supervisory trouble restore"),
    "FV": (K.TROUBLE, R, "Fire supervision restore"),
    "FW": (K.TROUBLE, N, "Fire supervisory trouble"),
    "FY": (K.TROUBLE, N, "Missing fire trouble"),
    "IA": (K.TROUBLE, N, "Equipment failure"),
    "IR": (K.TROUBLE, R, "Equipment failure restoral"),
    "ND": (K.DURESS, N, "Night mode deactivated duress"),
    "NL": (K.OPEN_CLOSE, N, "Perimeter armed"),
    "NR": (K.TROUBLE, R, "Network restoral"),
    "NT": (K.TROUBLE, N, "Network failure"),
    "OH": (K.OPEN_CLOSE, N, "Early to open from alarm"),
    "OL": (K.OPEN_CLOSE, N, "Late to open from alarm"),
    "OQ": (K.OPEN_CLOSE, N, "Remote opening"),
    "RY": (K.TROUBLE, N, "Test off normal"),
    "TC": (K.TEST, N, "All points tested"),
    "TE": (K.TEST, N, "Test end"),
    "TH": (K.TAMPER, R, "Tamper alarm restore"),
    "TJ": (K.TROUBLE, R, "Tamper trouble restore"),
    "TP": (K.TEST, N, "Walk test point"),
    "TS": (K.TEST, N, "Test start"),
    "TT": (K.TROUBLE, N, "Tamper trouble"),
    "UX": (K.OTHER, N, "Undefined alarm"),
    "XJ": (K.TAMPER, R, "RF receiver tamper restoral"),
    "XQ": (K.TROUBLE, N, "RF interference"),
    "XH": (K.TROUBLE, R, "RF interference restoral"),
    "XS": (K.TAMPER, N, "RF receiver tamper"),
    "XX": (K.TROUBLE, N, "Fail to test"),
    "YA": (K.TROUBLE, N, "Bell fault"),
    "YH": (K.TROUBLE, R, "Bell restored"),
}

#: DC-03's zone-type letters (a code's first) → the kind of an alarm of that type
_ZONE_TYPES: Final[dict[str, AlarmKind]] = {
    "B": K.BURGLARY,
    "F": K.FIRE,
    "G": K.FIRE,  # gas, as GA
    "H": K.DURESS,  # holdup, as HA
    "K": K.FIRE,  # heat, as KA
    "M": K.MEDICAL,
    "P": K.PANIC,
    "Q": K.MEDICAL,  # emergency, as QA
    "S": K.FIRE,  # sprinkler, as SA
    "T": K.TAMPER,
    "U": K.OTHER,  # untyped
    "W": K.OTHER,  # water
    "Z": K.TROUBLE,  # freeze, as ZA
}

#: the condition letter (a code's second) → (the kind, None: the zone type's; the qualifier). Only the
#: conditions DC-03 uses across every zone type; the others (G unverified, M cross point, V verified, C
#: cancel, W/Y/Q supervisory and missing) are listed per code above, since vendors reuse those letters
#: (Ajax's PG "photo by scenario disable" would otherwise read as a panic)
_CONDITIONS: Final[dict[str, tuple[AlarmKind | None, Qualifier]]] = {
    "A": (None, N),  # alarm
    "H": (None, R),  # alarm restore
    "R": (None, R),  # restoral
    "T": (K.TROUBLE, N),
    "S": (K.TROUBLE, N),  # supervisory: an unsafe system condition
    "J": (K.TROUBLE, R),
    "B": (K.OTHER, N),  # bypass
    "U": (K.OTHER, R),  # unbypass
    "X": (K.TEST, N),
}


def code_kind(code: str) -> tuple[AlarmKind, Qualifier, str]:
    """(kind, qualifier, description) of a two-letter SIA event code: listed, else read by its
    structure (zone type, condition), else ``other``."""
    listed = CODES.get(code)
    if listed is not None:
        return listed
    zone, condition = _ZONE_TYPES.get(code[:1]), _CONDITIONS.get(code[1:2])
    if zone is not None and condition is not None:
        kind, qualifier = condition
        return (zone if kind is None else kind), qualifier, f"SIA {code}"
    return K.OTHER, N, f"SIA {code}"


_SEGMENT_RE: Final = re.compile(
    r"\A(?P<mods>(?:[a-z]{2}[0-9:.-]*?)*?)(?P<code>[A-Z]{2})(?P<num>[0-9]{0,4})(?P<extra>.*)\Z"
)
_MOD_RE: Final = re.compile(r"([a-z]{2})([0-9:.-]*)")


@dataclass(frozen=True, slots=True)
class SiaEvent:
    code: str
    number: str | None
    kind: AlarmKind
    qualifier: Qualifier
    description: str
    modifiers: dict[str, str] = field(default_factory=dict)
    text: str | None = None


def decode(data: str) -> tuple[str | None, list[SiaEvent]]:
    """Decode a ``SIA-DCS`` data block into (account, events). Raises UnsupportedError (→ DUH)."""
    account: str | None = None
    body = data
    if "|" in body:
        head, body = body.split("|", 1)
        account = head.lstrip("#").upper() or None
    text: str | None = None
    caret = body.find("^")
    if caret >= 0:
        text = body[caret:].strip("^").strip() or None
        body = body[:caret]
    if not body.startswith("N"):
        raise UnsupportedError("sia", data[:40])
    body = body[1:]
    modifiers: dict[str, str] = {}
    events: list[SiaEvent] = []
    for segment in body.split("/"):
        if not segment:
            continue
        m = _SEGMENT_RE.match(segment)
        if m is None:
            # a modifiers-only segment (``Nri1/BA01``): keep the modifiers for the events that follow
            mods = _MOD_RE.findall(segment)
            if not mods or "".join(a + b for a, b in mods) != segment:
                raise UnsupportedError("sia", segment[:40])
            modifiers.update(mods)
            continue
        modifiers.update(_MOD_RE.findall(m.group("mods")))
        code = m.group("code")
        kind, qualifier, description = code_kind(code)
        events.append(
            SiaEvent(
                code=code,
                number=m.group("num") or None,
                kind=kind,
                qualifier=qualifier,
                description=description,
                modifiers=dict(modifiers),
                text=text,
            )
        )
    if not events:
        raise UnsupportedError("sia", "no event code")
    return account, events
