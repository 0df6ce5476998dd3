"""GB/T 28181's MANSCDP XML bodies (Annex A): decoding with the declared or guessed encoding, and the
platform's answer to an alarm Notify. Private: the face is :mod:`.gb28181`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from defusedxml import ElementTree as SafeET

from ._gb28181_sip import SipError, SipMessage

# ---------------------------------------------------------------- MANSCDP bodies


@dataclass(frozen=True)
class ManscdpMessage:
    """A decoded MANSCDP+xml body: root (Notify/Response/Query/Control), CmdType and its fields."""

    root: str
    cmd_type: str
    sn: str | None
    device_id: str
    fields: dict[str, str]
    text: str
    encoding: str

    def get(self, name: str) -> str | None:
        return self.fields.get(name)


_DECL = re.compile(rb'^\s*<\?xml[^>]*?encoding\s*=\s*["\']([A-Za-z0-9_-]+)["\'][^>]*\?>', re.IGNORECASE)


def _decode_body(body: bytes) -> tuple[str, str]:
    """The body as text. A byte that its encoding cannot carry becomes U+FFFD instead of refusing the
    message: an alarm with one damaged byte is still an alarm (the raw bytes travel on in ``raw``)."""
    m = _DECL.match(body)
    declared = m.group(1).decode("ascii").lower() if m else ""
    if declared in ("gb2312", "gbk", "gb18030", "gb-2312"):
        return body.decode("gb18030", errors="replace"), "gb18030"
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        # devices that declare UTF-8 (or nothing) and send GB2312
        return body.decode("gb18030", errors="replace"), "gb18030"


def decode_manscdp(body: bytes) -> ManscdpMessage:
    text, encoding = _decode_body(body)
    # The declaration names a byte encoding; the text is already decoded, so drop it before parsing.
    stripped = re.sub(r"^\s*<\?xml[^>]*\?>", "", text).strip()
    try:
        root = SafeET.fromstring(stripped)
    except SafeET.ParseError as exc:
        raise SipError(f"malformed MANSCDP XML: {exc}") from exc
    except Exception as exc:
        raise SipError(f"forbidden XML construct: {type(exc).__name__}") from exc
    fields: dict[str, str] = {}
    for el in root.iter():
        if el is root:
            continue
        value = (el.text or "").strip()
        if value and el.tag not in fields:
            fields[el.tag] = value
    cmd = fields.get("CmdType", "")
    if not cmd:
        raise SipError("MANSCDP body without CmdType")
    return ManscdpMessage(root.tag, cmd, fields.get("SN"), fields.get("DeviceID", ""), fields, text, encoding)


def encode_alarm_response_body(device_id: str, sn: str | None) -> bytes:
    """The application-level answer to an alarm Notify (A.2.6: ``<Response><CmdType>Alarm`` … OK)."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\r\n<Response>\r\n<CmdType>Alarm</CmdType>\r\n'
        f"<SN>{sn or 0}</SN>\r\n<DeviceID>{device_id}</DeviceID>\r\n<Result>OK</Result>\r\n</Response>\r\n"
    ).encode()


#: GB/T 28181-2016 A.2.5 AlarmMethod codes
ALARM_METHODS = {
    "1": "phone",
    "2": "device",
    "3": "sms",
    "4": "gps",
    "5": "video",
    "6": "device_fault",
    "7": "other",
}
#: AlarmType within method 5 (video): 1 manual, 2 motion, 3 left object, 4 object removed, 5 tripwire,
#: 6 intrusion, 7 reverse, 8 loitering, 9 traffic, 10 fast moving, 11 tamper (video blocked)
VIDEO_ALARM_TYPES = {"2": "motion", "5": "line_crossing", "6": "intrusion", "11": "tamper"}


def encode_alarm_response(
    *,
    server_id: str,
    realm: str,
    sip_device_id: str,
    alarm: ManscdpMessage,
    peer: tuple[str, int],
    local: tuple[str, int],
    transport: str,
    call_id: str,
    branch: str,
    from_tag: str,
    cseq: int = 1,
) -> bytes:
    """The server's MESSAGE that answers a device's alarm Notify (§9.4, A.2.6 ``Response``/``Alarm``/OK).

    The 200 OK to the device's MESSAGE only says the SIP transaction arrived; this request tells the
    device the alarm itself was taken, which is what makes devices stop repeating the notification.
    The random parts (Call-ID, branch, tag) are parameters so the function stays pure.
    """
    headers = [
        ("Via", f"SIP/2.0/{transport.upper()} {local[0]}:{local[1]};rport;branch=z9hG4bK{branch}"),
        ("From", f"<sip:{server_id}@{realm}>;tag={from_tag}"),
        ("To", f"<sip:{sip_device_id}@{realm}>"),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} MESSAGE"),
        ("Max-Forwards", "70"),
        ("User-Agent", "alarmhub"),
        ("Content-Type", "Application/MANSCDP+xml"),
    ]
    body = encode_alarm_response_body(alarm.device_id or sip_device_id, alarm.sn)
    return SipMessage(
        "MESSAGE", f"sip:{sip_device_id}@{peer[0]}:{peer[1]}", None, None, headers, body
    ).to_bytes()
