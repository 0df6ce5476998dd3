"""GB/T 28181's MANSCDP XML bodies (Annex A): decoding with the declared or guessed encoding, the
platform's answer to an alarm Notify, and the Catalog query (A.2.4.3) with its Response's device list
(A.2.6.4). Private: the face is :mod:`.gb28181`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

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
    """
    return encode_manscdp_request(
        server_id=server_id,
        realm=realm,
        device_id=sip_device_id,
        body=encode_alarm_response_body(alarm.device_id or sip_device_id, alarm.sn),
        peer=peer,
        local=local,
        transport=transport,
        call_id=call_id,
        branch=branch,
        from_tag=from_tag,
        cseq=cseq,
    )


# ---------------------------------------------------------------- Catalog (§9.5.1 device catalog query)


def encode_catalog_query_body(device_id: str, sn: int) -> bytes:
    """``<Query><CmdType>Catalog`` for a device (A.2.4.3). Declared GB2312 as the platforms devices are
    tested against send it (the content is ASCII, so the bytes are the same in every encoding)."""
    return (
        f'<?xml version="1.0" encoding="GB2312"?>\r\n<Query>\r\n<CmdType>Catalog</CmdType>\r\n'
        f"<SN>{sn}</SN>\r\n<DeviceID>{device_id}</DeviceID>\r\n</Query>\r\n"
    ).encode("gb18030")


#: GB/T 28181-2016 Annex D: digits 11-13 of a 20-digit code give the kind of device it names
CODE_KINDS = {
    "111": "dvr",
    "112": "video_server",
    "113": "encoder",
    "114": "decoder",
    "118": "nvr",
    "131": "camera",
    "132": "ipc",
    "133": "display",
    "134": "alarm_input",
    "135": "alarm_output",
    "136": "voice_input",
    "137": "voice_output",
    "200": "sip_server",
    "215": "business_group",
    "216": "virtual_organization",
}
#: Item fields kept (the Item's ``Password``, which some devices send, is dropped on purpose)
_ITEM_TEXT = {
    "DeviceID": "device_id",
    "Name": "name",
    "Manufacturer": "manufacturer",
    "Model": "model",
    "Owner": "owner",
    "CivilCode": "civil_code",
    "Block": "block",
    "Address": "address",
    "ParentID": "parent_id",
    "BusinessGroupID": "business_group_id",
    "IPAddress": "ip_address",
    "Status": "status",
    "Secrecy": "secrecy",
    "RegisterWay": "register_way",
    "SafetyWay": "safety_way",
    "PTZType": "ptz_type",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_FIELD = 256


@dataclass(frozen=True)
class CatalogPage:
    """One Catalog Response MESSAGE: the device's total (``SumNum``) and the items this message carries."""

    sn: str | None
    device_id: str
    sum_num: int | None
    items: list[dict[str, Any]] = field(default_factory=list)


def _float(text: str | None, low: float, high: float) -> float | None:
    try:
        v = float(text or "")
    except ValueError:
        return None
    # 0/0 is what devices send when nobody entered a position
    return v if low <= v <= high and v != 0.0 else None


def _item(el: Any) -> dict[str, Any] | None:
    raw: dict[str, str] = {}
    for child in el.iter():
        if child is el or child.tag in raw:
            continue
        raw[child.tag] = _CONTROL.sub("", (child.text or "").strip())[:MAX_FIELD]
    device_id = raw.get("DeviceID", "")
    if not device_id:
        return None
    item: dict[str, Any] = {key: raw.get(tag) or None for tag, key in _ITEM_TEXT.items()}
    item["kind"] = CODE_KINDS.get(device_id[10:13]) if len(device_id) == 20 and device_id.isdigit() else None
    item["parental"] = raw.get("Parental") == "1"
    status = (raw.get("Status") or "").upper()
    item["online"] = (
        True if status in ("ON", "ONLINE", "OK") else False if status in ("OFF", "OFFLINE") else None
    )
    item["lon"] = _float(raw.get("Longitude"), -180.0, 180.0)
    item["lat"] = _float(raw.get("Latitude"), -90.0, 90.0)
    port = raw.get("Port", "")
    item["port"] = int(port) if port.isdigit() and 0 < int(port) < 65536 else None
    return item


def decode_catalog(message: ManscdpMessage, max_items: int = 4096) -> CatalogPage:
    """The device list of a Catalog Response (A.2.6.4): ``SumNum`` and ``DeviceList/Item``s.

    ``SumNum`` counts the whole list; a device with many channels splits it over several MESSAGEs,
    each with its own ``DeviceList Num=`` (devices differ in how many per message: one, a few, or all).
    Items are read wherever they sit under the root (some devices omit the ``DeviceList`` wrapper).
    """
    stripped = re.sub(r"^\s*<\?xml[^>]*\?>", "", message.text).strip()
    try:
        root = SafeET.fromstring(stripped)
    except Exception as exc:  # decode_manscdp already parsed it; kept for callers that build messages
        raise SipError(f"malformed Catalog body: {exc}") from exc
    items: list[dict[str, Any]] = []
    for el in root.iter("Item"):
        if len(items) >= max_items:
            break
        item = _item(el)
        if item is not None:
            items.append(item)
    sum_text = message.get("SumNum") or ""
    sum_num = int(sum_text) if sum_text.isdigit() else None
    return CatalogPage(message.sn, message.device_id, sum_num, items)


def encode_manscdp_request(
    *,
    server_id: str,
    realm: str,
    device_id: str,
    body: bytes,
    peer: tuple[str, int],
    local: tuple[str, int],
    transport: str,
    call_id: str,
    branch: str,
    from_tag: str,
    cseq: int = 1,
) -> bytes:
    """A MESSAGE from the platform to a device carrying a MANSCDP body (a query or an answer).

    Sent to the address the device's requests come from (its REGISTER's, NAT-friendly as devices
    expect); the random parts are parameters so the function stays pure."""
    headers = [
        ("Via", f"SIP/2.0/{transport.upper()} {local[0]}:{local[1]};rport;branch=z9hG4bK{branch}"),
        ("From", f"<sip:{server_id}@{realm}>;tag={from_tag}"),
        ("To", f"<sip:{device_id}@{realm}>"),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} MESSAGE"),
        ("Max-Forwards", "70"),
        ("User-Agent", "alarmhub"),
        ("Content-Type", "Application/MANSCDP+xml"),
    ]
    return SipMessage("MESSAGE", f"sip:{device_id}@{peer[0]}:{peer[1]}", None, None, headers, body).to_bytes()
