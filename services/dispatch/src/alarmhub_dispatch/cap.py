"""CAP 1.2 (OASIS Common Alerting Protocol) alerts of dispatched incidents, pure XML building.

One incident is one alert thread: the first alert (``msgType`` Alert) is identified by the incident id
and the sequence of its ``opened`` audit row; every later state is an ``Update`` that
``references`` the first alert (``sender,identifier,sent``); an incident closed as a false alarm or a
test is a ``Cancel``. ``scope`` is Restricted (police networks only). Times are ISO 8601 with an
explicit offset and no fractional seconds, as CAP requires.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree as ET

__all__ = ["CAP_NS", "SENDER", "alert_xml", "feed_xml"]

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS = "http://www.w3.org/2005/Atom"
SENDER = "alarmhub-dispatch@police.invalid"

_CATEGORY = {"fire": "Fire", "medical": "Health", "vehicle_theft": "Security", "vehicle_sos": "Rescue"}
_SEVERITY = {1: "Extreme", 2: "Severe", 3: "Moderate", 4: "Minor", 5: "Minor"}


def _t(v: datetime | str) -> str:
    if isinstance(v, str):
        v = datetime.fromisoformat(v.replace("Z", "+00:00"))
    return v.astimezone(UTC).replace(microsecond=0).isoformat()


def _sub(parent: ET.Element, tag: str, text: Any) -> ET.Element:
    el = ET.SubElement(parent, f"{{{CAP_NS}}}{tag}")
    el.text = str(text)
    return el


def alert_element(inc: dict[str, Any], first_sent: datetime | str, *, sender: str = SENDER) -> ET.Element:
    """The current CAP alert of an incident summary (see module docstring for the thread rules)."""
    first_id = f"alarmhub-{inc['id']}"
    status = inc["status"]
    if inc.get("updated_at") in (None, inc.get("opened_at")):  # nothing happened since it was opened
        msg_type, ident, sent = "Alert", first_id, first_sent
    else:
        cancelled = status == "closed" and inc.get("verdict") in ("false_alarm", "test")
        msg_type = "Cancel" if cancelled else "Update"
        sent = inc["updated_at"]
        ident = f"{first_id}-{_t(sent)[:19].replace('-', '').replace(':', '')}"
    a = ET.Element(f"{{{CAP_NS}}}alert")
    _sub(a, "identifier", ident)
    _sub(a, "sender", sender)
    _sub(a, "sent", _t(sent))
    _sub(a, "status", "Actual")
    _sub(a, "msgType", msg_type)
    _sub(a, "scope", "Restricted")
    _sub(a, "restriction", "police command network only")
    if msg_type != "Alert":
        _sub(a, "references", f"{sender},{first_id},{_t(first_sent)}")
    info = ET.SubElement(a, f"{{{CAP_NS}}}info")
    _sub(info, "language", "zh-CN")
    _sub(info, "category", _CATEGORY.get(inc["kind"], "Security"))
    _sub(info, "event", inc["kind"])
    _sub(info, "urgency", "Past" if status == "closed" else "Immediate")
    _sub(info, "severity", _SEVERITY.get(int(inc["priority"]), "Unknown"))
    _sub(info, "certainty", "Observed" if inc["decision"] == "dispatch" else "Possible")
    _sub(info, "senderName", "alarmhub dispatch")
    _sub(
        info,
        "headline",
        f"{inc['kind']} P{inc['priority']} {inc.get('station_name') or inc.get('station') or ''}".strip(),
    )
    _sub(
        info,
        "description",
        "; ".join(r.get("text_zh") or r.get("text", "") for r in inc.get("reasons") or []) or inc["kind"],
    )
    for name, value in (
        ("incident_id", inc["id"]),
        ("status", status),
        ("station", inc.get("station")),
        ("district", inc.get("district")),
        ("score", inc.get("score")),
        ("verdict", inc.get("verdict")),
    ):
        if value is not None:
            p = ET.SubElement(info, f"{{{CAP_NS}}}parameter")
            _sub(p, "valueName", name)
            _sub(p, "value", value)
    loc = inc.get("location") or {}
    area = ET.SubElement(info, f"{{{CAP_NS}}}area")
    _sub(
        area,
        "areaDesc",
        inc.get("station_name") or inc.get("district_name") or inc.get("station") or "unknown",
    )
    if loc.get("lat") is not None and loc.get("lon") is not None:
        _sub(area, "circle", f"{loc['lat']:.6f},{loc['lon']:.6f} 0.1")
    return a


def alert_xml(inc: dict[str, Any], first_sent: datetime | str) -> bytes:
    ET.register_namespace("", CAP_NS)
    return ET.tostring(alert_element(inc, first_sent), encoding="utf-8", xml_declaration=True)


def feed_xml(incidents: list[tuple[dict[str, Any], datetime | str]], self_url: str, now: datetime) -> bytes:
    """An Atom feed whose entries carry each incident's current CAP alert as content."""
    ET.register_namespace("", ATOM_NS)
    ET.register_namespace("cap", CAP_NS)
    f = ET.Element(f"{{{ATOM_NS}}}feed")
    ET.SubElement(f, f"{{{ATOM_NS}}}id").text = self_url
    ET.SubElement(f, f"{{{ATOM_NS}}}title").text = "alarmhub dispatched incidents (CAP 1.2)"
    ET.SubElement(f, f"{{{ATOM_NS}}}updated").text = _t(now)
    ET.SubElement(f, f"{{{ATOM_NS}}}link", rel="self", href=self_url)
    for inc, first in incidents:
        e = ET.SubElement(f, f"{{{ATOM_NS}}}entry")
        ET.SubElement(e, f"{{{ATOM_NS}}}id").text = f"urn:uuid:{inc['id']}"
        ET.SubElement(e, f"{{{ATOM_NS}}}title").text = f"{inc['kind']} {inc['status']}"
        ET.SubElement(e, f"{{{ATOM_NS}}}updated").text = _t(inc.get("updated_at") or first)
        content = ET.SubElement(e, f"{{{ATOM_NS}}}content", type="application/cap+xml")
        content.append(alert_element(inc, first))
    return ET.tostring(f, encoding="utf-8", xml_declaration=True)
