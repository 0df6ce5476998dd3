"""CAP 1.2 alerts: the first alert, updates referencing it, cancellation of a false alarm."""

from __future__ import annotations

from datetime import UTC, datetime
from xml.etree import ElementTree as ET

from alarmhub_dispatch.cap import CAP_NS, SENDER, alert_xml, feed_xml

NS = {"cap": CAP_NS, "atom": "http://www.w3.org/2005/Atom"}
OPENED = datetime(2026, 11, 25, 8, 0, 0, 123000, tzinfo=UTC)
INC = {
    "id": "6f1c2f9e-8d1e-4c55-9f8e-0a4a4b1e2c3d",
    "status": "routed",
    "decision": "dispatch",
    "priority": 1,
    "score": 90,
    "kind": "panic",
    "station": "440304-S06",
    "district": "440304",
    "station_name": "福田区第06派出所（合成）",
    "location": {"lat": 22.541, "lon": 114.055},
    "reasons": [{"code": "panic_code", "text": "Panic", "text_zh": "紧急求助"}],
    "verdict": None,
    "opened_at": "2026-11-25T08:00:00.123000Z",
    "updated_at": "2026-11-25T08:00:00.123000Z",
}


def _get(root: ET.Element, path: str) -> str:
    el = root.find(path, NS)
    assert el is not None, path
    return el.text or ""


def test_first_alert() -> None:
    a = ET.fromstring(alert_xml(INC, OPENED))
    assert a.tag == f"{{{CAP_NS}}}alert"
    assert _get(a, "cap:identifier") == f"alarmhub-{INC['id']}"
    assert _get(a, "cap:sent") == "2026-11-25T08:00:00+00:00"  # explicit offset, no fraction
    assert (_get(a, "cap:status"), _get(a, "cap:msgType"), _get(a, "cap:scope")) == (
        "Actual",
        "Alert",
        "Restricted",
    )
    assert a.find("cap:references", NS) is None
    assert _get(a, "cap:info/cap:severity") == "Extreme" and _get(a, "cap:info/cap:certainty") == "Observed"
    assert _get(a, "cap:info/cap:area/cap:circle") == "22.541000,114.055000 0.1"
    # the element order CAP's schema requires for the alert block
    order = [c.tag.split("}")[1] for c in a]
    assert order == ["identifier", "sender", "sent", "status", "msgType", "scope", "restriction", "info"]


def test_update_and_cancel_reference_the_first_alert() -> None:
    upd = ET.fromstring(
        alert_xml({**INC, "status": "acknowledged", "updated_at": "2026-11-25T08:01:30Z"}, OPENED)
    )
    assert _get(upd, "cap:msgType") == "Update"
    assert _get(upd, "cap:references") == f"{SENDER},alarmhub-{INC['id']},2026-11-25T08:00:00+00:00"
    assert _get(upd, "cap:identifier") != f"alarmhub-{INC['id']}"
    cancel = ET.fromstring(
        alert_xml(
            {**INC, "status": "closed", "verdict": "false_alarm", "updated_at": "2026-11-25T08:05:00Z"},
            OPENED,
        )
    )
    assert _get(cancel, "cap:msgType") == "Cancel" and _get(cancel, "cap:info/cap:urgency") == "Past"
    genuine = ET.fromstring(
        alert_xml(
            {**INC, "status": "closed", "verdict": "genuine", "updated_at": "2026-11-25T08:05:00Z"}, OPENED
        )
    )
    assert _get(genuine, "cap:msgType") == "Update"


def test_feed_embeds_alerts() -> None:
    feed = ET.fromstring(feed_xml([(INC, OPENED)], "http://127.0.0.1/api/v1/cap", OPENED))
    entries = feed.findall("atom:entry", NS)
    assert len(entries) == 1
    assert entries[0].find("atom:content/cap:alert", NS) is not None
