"""Ademco Contact ID (SIA DC-05) payloads as carried in DC-09 ``ADM-CID`` messages. Pure.

DC-05 on a phone line is ``ACCT 18 QXYZ GG CCC S``; inside DC-09 the data block is ``#acct|QXYZ GG CCC``
(some transmitters drop the ``#``, or the spaces). ``Q`` is the qualifier (1 new event / opening,
3 restore / closing, 6 previously reported, still present), ``XYZ`` the event code, ``GG`` the
partition (group) and ``CCC`` the zone or, for open/close and access events, the user number.

Event codes map onto the contract's ``kind`` through :data:`EVENTS`; the original code is kept as
``E120`` / ``R120`` / ``P120`` (new / restore / status) so nothing is lost for operators.

Edition: SIA DC-05-1999.09 (Ademco Contact ID), as carried by ANSI/SIA DC-09. The face is
:func:`decode` (a data block → :class:`CidEvent`); :func:`event_kind` looks a code up. Choices: the
qualifiers 1, 3 and 6 only; hex digits are read (``A`` as 0, as DC-05 dials it); an unknown event
code falls back to its group's kind (never dropped); anything else in the block is refused (``DUH``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from alarmhub_events import AlarmKind, Qualifier

from .dc09 import UnsupportedError

__all__ = ["EVENTS", "CidEvent", "decode", "event_kind"]

K = AlarmKind

#: Contact ID event codes: code -> (kind, description, concerns). ``concerns`` is "zone" or "user"
#: and says what CCC numbers. Codes not listed fall back to their group (see :func:`event_kind`).
EVENTS: Final[dict[str, tuple[AlarmKind, str, str]]] = {
    # 100 medical
    "100": (K.MEDICAL, "Medical", "zone"),
    "101": (K.MEDICAL, "Personal emergency", "zone"),
    "102": (K.MEDICAL, "Fail to report in", "zone"),
    # 110 fire
    "110": (K.FIRE, "Fire", "zone"),
    "111": (K.FIRE, "Smoke", "zone"),
    "112": (K.FIRE, "Combustion", "zone"),
    "113": (K.FIRE, "Water flow", "zone"),
    "114": (K.FIRE, "Heat", "zone"),
    "115": (K.FIRE, "Pull station", "zone"),
    "116": (K.FIRE, "Duct", "zone"),
    "117": (K.FIRE, "Flame", "zone"),
    "118": (K.FIRE, "Near alarm (fire)", "zone"),
    # 120 panic
    "120": (K.PANIC, "Panic", "zone"),
    "121": (K.DURESS, "Duress", "user"),
    "122": (K.PANIC, "Silent panic", "zone"),
    "123": (K.PANIC, "Audible panic", "zone"),
    "124": (K.DURESS, "Duress - access granted", "zone"),
    "125": (K.DURESS, "Duress - egress granted", "zone"),
    "126": (K.PANIC, "Hold-up suspicion print", "zone"),
    "129": (K.PANIC, "Panic verifier", "zone"),
    # 130 burglary
    "130": (K.BURGLARY, "Burglary", "zone"),
    "131": (K.BURGLARY, "Perimeter", "zone"),
    "132": (K.BURGLARY, "Interior", "zone"),
    "133": (K.BURGLARY, "24 hour (safe)", "zone"),
    "134": (K.BURGLARY, "Entry/exit", "zone"),
    "135": (K.BURGLARY, "Day/night", "zone"),
    "136": (K.BURGLARY, "Outdoor", "zone"),
    "137": (K.TAMPER, "Tamper", "zone"),
    "138": (K.BURGLARY, "Near alarm (burglary)", "zone"),
    "139": (K.BURGLARY, "Intrusion verifier", "zone"),
    # 140 general alarm
    "140": (K.OTHER, "General alarm", "zone"),
    "141": (K.TROUBLE, "Polling loop open", "zone"),
    "142": (K.TROUBLE, "Polling loop short", "zone"),
    "143": (K.TROUBLE, "Expansion module failure", "zone"),
    "144": (K.TAMPER, "Sensor tamper", "zone"),
    "145": (K.TAMPER, "Expansion module tamper", "zone"),
    "146": (K.BURGLARY, "Silent burglary", "zone"),
    "147": (K.SUPERVISION, "Sensor supervision failure", "zone"),
    # 150/160 24-hour non-burglary. Gas and CO are life-safety hazards answered like fire.
    "150": (K.OTHER, "24 hour non-burglary", "zone"),
    "151": (K.FIRE, "Gas detected", "zone"),
    "152": (K.TROUBLE, "Refrigeration", "zone"),
    "153": (K.TROUBLE, "Loss of heat", "zone"),
    "154": (K.TROUBLE, "Water leakage", "zone"),
    "155": (K.BURGLARY, "Foil break", "zone"),
    "156": (K.TROUBLE, "Day trouble", "zone"),
    "157": (K.TROUBLE, "Low bottled gas level", "zone"),
    "158": (K.TROUBLE, "High temperature", "zone"),
    "159": (K.TROUBLE, "Low temperature", "zone"),
    "161": (K.TROUBLE, "Loss of air flow", "zone"),
    "162": (K.FIRE, "Carbon monoxide detected", "zone"),
    "163": (K.TROUBLE, "Tank level", "zone"),
    # 200 fire supervisory
    "200": (K.TROUBLE, "Fire supervisory", "zone"),
    "201": (K.TROUBLE, "Low water pressure", "zone"),
    "202": (K.TROUBLE, "Low CO2", "zone"),
    "203": (K.TROUBLE, "Gate valve sensor", "zone"),
    "204": (K.TROUBLE, "Low water level", "zone"),
    "205": (K.TROUBLE, "Pump activated", "zone"),
    "206": (K.TROUBLE, "Pump failure", "zone"),
    # 300 system troubles
    "300": (K.TROUBLE, "System trouble", "zone"),
    "301": (K.POWER_CUT, "AC loss", "zone"),
    "302": (K.TROUBLE, "Low system battery", "zone"),
    "303": (K.TROUBLE, "RAM checksum bad", "zone"),
    "304": (K.TROUBLE, "ROM checksum bad", "zone"),
    "305": (K.TROUBLE, "System reset", "zone"),
    "306": (K.TROUBLE, "Panel programming changed", "zone"),
    "307": (K.TROUBLE, "Self-test failure", "zone"),
    "308": (K.TROUBLE, "System shutdown", "zone"),
    "309": (K.TROUBLE, "Battery test failure", "zone"),
    "310": (K.TROUBLE, "Ground fault", "zone"),
    "311": (K.TROUBLE, "Battery missing/dead", "zone"),
    "312": (K.TROUBLE, "Power supply overcurrent", "zone"),
    "313": (K.TROUBLE, "Engineer reset", "user"),
    "314": (K.POWER_CUT, "Primary power supply failure", "zone"),
    "316": (K.TAMPER, "System tamper", "zone"),
    # 320 sounder/relay
    "320": (K.TROUBLE, "Sounder/relay", "zone"),
    "321": (K.TROUBLE, "Bell 1", "zone"),
    "322": (K.TROUBLE, "Bell 2", "zone"),
    "323": (K.TROUBLE, "Alarm relay", "zone"),
    "324": (K.TROUBLE, "Trouble relay", "zone"),
    "325": (K.TROUBLE, "Reversing relay", "zone"),
    "326": (K.TROUBLE, "Notification appliance circuit 3", "zone"),
    "327": (K.TROUBLE, "Notification appliance circuit 4", "zone"),
    # 330/340 system peripheral
    "330": (K.TROUBLE, "System peripheral trouble", "zone"),
    "331": (K.TROUBLE, "Polling loop open", "zone"),
    "332": (K.TROUBLE, "Polling loop short", "zone"),
    "333": (K.TROUBLE, "Expansion module failure", "zone"),
    "334": (K.TROUBLE, "Repeater failure", "zone"),
    "335": (K.TROUBLE, "Local printer out of paper", "zone"),
    "336": (K.TROUBLE, "Local printer failure", "zone"),
    "337": (K.TROUBLE, "Expansion module DC loss", "zone"),
    "338": (K.TROUBLE, "Expansion module low battery", "zone"),
    "339": (K.TROUBLE, "Expansion module reset", "zone"),
    "341": (K.TAMPER, "Expansion module tamper", "zone"),
    "342": (K.POWER_CUT, "Expansion module AC loss", "zone"),
    "343": (K.TROUBLE, "Expansion module self-test failure", "zone"),
    "344": (K.TAMPER, "RF receiver jam detected", "zone"),
    # 350 communication
    "350": (K.TROUBLE, "Communication trouble", "zone"),
    "351": (K.TROUBLE, "Telco 1 fault", "zone"),
    "352": (K.TROUBLE, "Telco 2 fault", "zone"),
    "353": (K.TROUBLE, "Long range radio transmitter fault", "zone"),
    "354": (K.TROUBLE, "Failure to communicate event", "zone"),
    "355": (K.SUPERVISION, "Loss of radio supervision", "zone"),
    "356": (K.SUPERVISION, "Loss of central polling", "zone"),
    "357": (K.TROUBLE, "Long range radio VSWR problem", "zone"),
    "358": (K.TROUBLE, "Periodic communication test failure", "zone"),
    # 370 protection loop
    "370": (K.TROUBLE, "Protection loop", "zone"),
    "371": (K.TROUBLE, "Protection loop open", "zone"),
    "372": (K.TROUBLE, "Protection loop short", "zone"),
    "373": (K.TROUBLE, "Fire trouble", "zone"),
    "374": (K.BURGLARY, "Exit error alarm (zone)", "zone"),
    "375": (K.TROUBLE, "Panic zone trouble", "zone"),
    "376": (K.TROUBLE, "Hold-up zone trouble", "zone"),
    "377": (K.TROUBLE, "Swinger trouble", "zone"),
    "378": (K.TROUBLE, "Cross-zone trouble", "zone"),
    # 380/390 sensor trouble
    "380": (K.TROUBLE, "Sensor trouble", "zone"),
    "381": (K.SUPERVISION, "Loss of supervision - RF", "zone"),
    "382": (K.SUPERVISION, "Loss of supervision - RPM", "zone"),
    "383": (K.TAMPER, "Sensor tamper", "zone"),
    "384": (K.TROUBLE, "RF low battery", "zone"),
    "385": (K.TROUBLE, "Smoke detector high sensitivity", "zone"),
    "386": (K.TROUBLE, "Smoke detector low sensitivity", "zone"),
    "387": (K.TROUBLE, "Intrusion detector high sensitivity", "zone"),
    "388": (K.TROUBLE, "Intrusion detector low sensitivity", "zone"),
    "389": (K.TROUBLE, "Sensor self-test failure", "zone"),
    "391": (K.TROUBLE, "Sensor watch trouble", "zone"),
    "392": (K.TROUBLE, "Drift compensation error", "zone"),
    "393": (K.TROUBLE, "Maintenance alert", "zone"),
    # 400 open/close (CCC is the user)
    "400": (K.OPEN_CLOSE, "Open/close", "user"),
    "401": (K.OPEN_CLOSE, "Open/close by user", "user"),
    "402": (K.OPEN_CLOSE, "Group open/close", "user"),
    "403": (K.OPEN_CLOSE, "Automatic open/close", "user"),
    "404": (K.OPEN_CLOSE, "Late to open/close", "user"),
    "405": (K.OPEN_CLOSE, "Deferred open/close", "user"),
    "406": (K.CANCEL, "Cancel", "user"),
    "407": (K.OPEN_CLOSE, "Remote arm/disarm", "user"),
    "408": (K.OPEN_CLOSE, "Quick arm", "user"),
    "409": (K.OPEN_CLOSE, "Keyswitch open/close", "user"),
    # 410 remote access
    "411": (K.OTHER, "Callback request made", "user"),
    "412": (K.OTHER, "Successful download/access", "user"),
    "413": (K.TAMPER, "Unsuccessful access", "user"),
    "414": (K.OTHER, "System shutdown command received", "user"),
    "415": (K.OTHER, "Dialer shutdown command received", "user"),
    "416": (K.OTHER, "Successful upload", "user"),
    # 420/430 access control
    "421": (K.OTHER, "Access denied", "user"),
    "422": (K.OTHER, "Access report by user", "user"),
    "423": (K.BURGLARY, "Forced access", "zone"),
    "424": (K.OTHER, "Egress denied", "user"),
    "425": (K.OTHER, "Egress granted", "user"),
    "426": (K.TROUBLE, "Access door propped open", "zone"),
    "427": (K.TROUBLE, "Access point door status monitor trouble", "zone"),
    "428": (K.TROUBLE, "Access point request to exit trouble", "zone"),
    "429": (K.OTHER, "Access program mode entry", "user"),
    "430": (K.OTHER, "Access program mode exit", "user"),
    "431": (K.OTHER, "Access threat level change", "user"),
    "432": (K.TROUBLE, "Access relay/trigger failure", "zone"),
    "433": (K.OTHER, "Access request to exit shunt", "zone"),
    "434": (K.OTHER, "Access door status monitor shunt", "zone"),
    # 440/450 special arming
    "441": (K.OPEN_CLOSE, "Armed stay", "user"),
    "442": (K.OPEN_CLOSE, "Keyswitch armed stay", "user"),
    "450": (K.OPEN_CLOSE, "Exception open/close", "user"),
    "451": (K.OPEN_CLOSE, "Early open/close", "user"),
    "452": (K.OPEN_CLOSE, "Late open/close", "user"),
    "453": (K.OPEN_CLOSE, "Failed to open", "user"),
    "454": (K.OPEN_CLOSE, "Failed to close", "user"),
    "455": (K.TROUBLE, "Auto-arm failed", "user"),
    "456": (K.OPEN_CLOSE, "Partial arm", "user"),
    "457": (K.OPEN_CLOSE, "Exit error (user)", "user"),
    "458": (K.OTHER, "User on premises", "user"),
    "459": (K.OTHER, "Recent close", "user"),
    "461": (K.TAMPER, "Wrong code entry", "zone"),
    "462": (K.OTHER, "Legal code entry", "user"),
    "463": (K.OPEN_CLOSE, "Re-arm after alarm", "user"),
    "464": (K.OTHER, "Auto-arm time extended", "user"),
    "465": (K.OTHER, "Panic alarm reset", "zone"),
    "466": (K.OTHER, "Service on/off premises", "user"),
    # 500 disables/bypasses
    "501": (K.OTHER, "Access reader disable", "zone"),
    "520": (K.OTHER, "Sounder/relay disable", "zone"),
    "521": (K.OTHER, "Bell 1 disable", "zone"),
    "522": (K.OTHER, "Bell 2 disable", "zone"),
    "523": (K.OTHER, "Alarm relay disable", "zone"),
    "524": (K.OTHER, "Trouble relay disable", "zone"),
    "525": (K.OTHER, "Reversing relay disable", "zone"),
    "526": (K.OTHER, "Notification appliance circuit 3 disable", "zone"),
    "527": (K.OTHER, "Notification appliance circuit 4 disable", "zone"),
    "531": (K.OTHER, "Module added", "zone"),
    "532": (K.OTHER, "Module removed", "zone"),
    "551": (K.OTHER, "Dialer disabled", "zone"),
    "552": (K.OTHER, "Radio transmitter disabled", "zone"),
    "553": (K.OTHER, "Remote upload/download disabled", "zone"),
    "570": (K.OTHER, "Zone/sensor bypass", "zone"),
    "571": (K.OTHER, "Fire bypass", "zone"),
    "572": (K.OTHER, "24 hour zone bypass", "zone"),
    "573": (K.OTHER, "Burglary bypass", "zone"),
    "574": (K.OTHER, "Group bypass", "user"),
    "575": (K.OTHER, "Swinger bypass", "zone"),
    "576": (K.OTHER, "Access zone shunt", "zone"),
    "577": (K.OTHER, "Access point bypass", "zone"),
    # 600 test / misc
    "601": (K.TEST, "Manual trigger test report", "zone"),
    "602": (K.TEST, "Periodic test report", "zone"),
    "603": (K.TEST, "Periodic RF transmission", "zone"),
    "604": (K.TEST, "Fire test", "user"),
    "605": (K.OTHER, "Status report to follow", "zone"),
    "606": (K.OTHER, "Listen-in to follow", "zone"),
    "607": (K.TEST, "Walk test mode", "user"),
    "608": (K.TEST, "Periodic test - system trouble present", "zone"),
    "609": (K.OTHER, "Video transmitter active", "zone"),
    "611": (K.TEST, "Point tested OK", "zone"),
    "612": (K.TEST, "Point not tested", "zone"),
    "613": (K.TEST, "Intrusion zone walk tested", "zone"),
    "614": (K.TEST, "Fire zone walk tested", "zone"),
    "615": (K.TEST, "Panic zone walk tested", "zone"),
    "616": (K.TROUBLE, "Service request", "zone"),
    "621": (K.OTHER, "Event log reset", "zone"),
    "622": (K.OTHER, "Event log 50% full", "zone"),
    "623": (K.OTHER, "Event log 90% full", "zone"),
    "624": (K.OTHER, "Event log overflow", "zone"),
    "625": (K.OTHER, "Time/date reset", "user"),
    "626": (K.TROUBLE, "Time/date inaccurate", "zone"),
    "627": (K.OTHER, "Program mode entry", "zone"),
    "628": (K.OTHER, "Program mode exit", "zone"),
    "629": (K.OTHER, "32 hour event log marker", "zone"),
    "630": (K.OTHER, "Schedule change", "zone"),
    "631": (K.OTHER, "Exception schedule change", "zone"),
    "632": (K.OTHER, "Access schedule change", "zone"),
    "654": (K.TROUBLE, "System inactivity", "zone"),
}

#: Kind of a code's hundred/ten group when the code itself is not in :data:`EVENTS`.
_GROUPS: Final[dict[str, AlarmKind]] = {
    "10": K.MEDICAL,
    "11": K.FIRE,
    "12": K.PANIC,
    "13": K.BURGLARY,
    "14": K.OTHER,
    "15": K.OTHER,
    "16": K.OTHER,
    "2": K.TROUBLE,
    "3": K.TROUBLE,
    "4": K.OPEN_CLOSE,
    "5": K.OTHER,
    "6": K.OTHER,
    "7": K.OTHER,
    "9": K.OTHER,
}

_LETTERS: Final = {Qualifier.NEW: "E", Qualifier.RESTORE: "R", Qualifier.STATUS: "P"}
_QUALIFIERS: Final = {"1": (Qualifier.NEW, "E"), "3": (Qualifier.RESTORE, "R"), "6": (Qualifier.STATUS, "P")}
_CID_RE: Final = re.compile(
    r"\A(?:#?(?P<acct>[0-9A-Fa-f]{3,16})\|)?(?P<q>[136])(?P<xyz>[0-9A-Fa-f]{3}) ?"
    r"(?P<gg>[0-9A-Fa-f]{2}) ?(?P<ccc>[0-9A-Fa-f]{3})\s*\Z"
)


@dataclass(frozen=True, slots=True)
class CidEvent:
    """One Contact ID event, decoded."""

    account: str | None
    qualifier: Qualifier
    event: str
    partition: str
    number: str
    kind: AlarmKind
    description: str
    concerns: str

    @property
    def code(self) -> str:
        """``E120`` / ``R120`` / ``P120``: the event code with its qualifier letter, as operators write it."""
        return _LETTERS[self.qualifier] + self.event


def event_kind(event: str) -> tuple[AlarmKind, str, str]:
    """Kind, description and concerns ("zone"/"user") of a three-digit event code."""
    hit = EVENTS.get(event)
    if hit is not None:
        return hit
    group = _GROUPS.get(event[:2]) or _GROUPS.get(event[:1], K.OTHER)
    return group, f"Event {event}", "user" if group is K.OPEN_CLOSE else "zone"


def decode(data: str) -> CidEvent:
    """Decode a DC-09 ``ADM-CID`` data block (``#acct|QXYZ GG CCC``). Raises UnsupportedError (→ DUH).

    DC-05 sends the digit 0 as ``A`` on the phone line; a few communicators forward that unchanged,
    so hex digits are accepted and ``A`` is read as 0.
    """
    m = _CID_RE.match(data)
    if m is None:
        raise UnsupportedError("contactid", data[:40])
    qualifier, _ = _QUALIFIERS[m.group("q")]
    event = m.group("xyz").upper().replace("A", "0")
    kind, description, concerns = event_kind(event)
    acct = m.group("acct")
    return CidEvent(
        account=acct.upper() if acct else None,
        qualifier=qualifier,
        event=event,
        partition=m.group("gg").upper().replace("A", "0"),
        number=m.group("ccc").upper().replace("A", "0"),
        kind=kind,
        description=description,
        concerns=concerns,
    )
