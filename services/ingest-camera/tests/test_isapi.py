"""ISAPI EventNotificationAlert decoding, with real payloads byte for byte."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alarmhub_events import AlarmKind
from alarmhub_ingest_camera.protocols import isapi
from alarmhub_ingest_camera.protocols.isapi import IsapiError

# The ISAPI specification's example alert (note the minute-precision dateTime "2009-11-14T15:27Z"),
# as used in a Rust Hikvision client's test `parse_interesting_body` (store id 4649243).
SPEC_VMD = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<EventNotificationAlert version="2.0" xmlns="http://www.std-cgi.com/ver10/XMLSchema">\n'
    b"<ipAddress>172.6.64.7</ipAddress>\n"
    b"<portNo>80</portNo>\n"
    b"<protocol>HTTP</protocol>\n"
    b"<macAddress>01:17:24:45:D9:F4</macAddress>\n"
    b"<channelID>1</channelID>\n"
    b"<dateTime>2009-11-14T15:27Z</dateTime>\n"
    b"<activePostCount>1</activePostCount>\n"
    b"<eventType>VMD</eventType>\n"
    b"<eventState>active</eventState>\n"
    b"<eventDescription>Motion alarm</eventDescription>\n"
    b"<DetectionRegionList>\n"
    b"<DetectionRegionEntry>\n"
    b"<regionID>2</regionID>\n"
    b"<sensitivityLevel>4</sensitivityLevel>\n"
    b"</DetectionRegionEntry>\n"
    b"</DetectionRegionList>\n"
    b"</EventNotificationAlert>\n"
)

# "Verbatim block captured live from a DS-2CD3T56WDV3-L alert stream" — a Rust alert-stream
# parser's test constant LIVE_BLOCK (store id 59858244784): part headers and the XML.
LIVE_BLOCK = (
    b'--boundary\r\nContent-Type: application/xml; charset="UTF-8"\r\nContent-Length: 515\r\n\r\n'
    b'<EventNotificationAlert version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">\n'
    b"<ipAddress>192.168.0.7</ipAddress>\n<portNo>80</portNo>\n<protocol>HTTP</protocol>\n"
    b"<macAddress>d4:e8:53:87:c0:5c</macAddress>\n<channelID>1</channelID>\n"
    b"<dateTime>2026-07-16T13:48:26+08:00</dateTime>\n<activePostCount>1</activePostCount>\n"
    b"<eventType>VMD</eventType>\n<eventState>active</eventState>\n"
    b"<eventDescription>Motion alarm</eventDescription>\n<DetectionRegionList>\n</DetectionRegionList>\n"
    b"</EventNotificationAlert>\n"
)

# "Verbatim idle heartbeat: a DVR-208G-M1 repeats this every ~9.5s" — a NestJS DVR client's test
# constant HEARTBEAT_ALERT (store id 65812312512). No zone on dateTime.
HEARTBEAT = (
    b'<EventNotificationAlert version="1.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">\n'
    b"<ipAddress>192.168.1.250</ipAddress><portNo>80</portNo><protocol>HTTP</protocol>\n"
    b"<macAddress>3c:1b:f8:38:ba:23</macAddress><channelID>0</channelID>\n"
    b"<dateTime>2026-09-09T17:02:40</dateTime><activePostCount>0</activePostCount>\n"
    b"<eventType>videoloss</eventType><eventState>inactive</eventState>\n"
    b"<eventDescription>videoloss alarm</eventDescription>\n"
    b"</EventNotificationAlert>"
)

# Old (ver10) firmware with the malformed zone "--8:00", kept in a comment of a ZoneMinder
# alert-stream Perl script (store id 24281665937).
OLD_FIRMWARE = (
    b'<EventNotificationAlert version="1.0" xmlns="http://www.hikvision.com/ver10/XMLSchema">\n'
    b"<ipAddress>10.1.10.23</ipAddress>\n<portNo>80</portNo>\n<protocol>HTTP</protocol>\n"
    b"<macAddress>c4:2f:90:27:19:e2</macAddress>\n<channelID>1</channelID>\n"
    b"<dateTime>2015-06-24T19:37:22--8:00</dateTime>\n<activePostCount>1</activePostCount>\n"
    b"<eventType>VMD</eventType>\n<eventState>active</eventState>\n"
    b"<eventDescription>Motion alarm</eventDescription>\n<DetectionRegionList>\n</DetectionRegionList>\n"
    b"</EventNotificationAlert>\n"
)


def test_spec_example_vmd() -> None:
    push = isapi.decode(SPEC_VMD, "application/xml")
    a = push.alert
    assert (a.event_type, a.active, a.channel, a.kind) == ("VMD", True, 1, AlarmKind.MOTION)
    assert a.ip == "172.6.64.7" and a.mac == "01:17:24:45:d9:f4"
    assert a.occurred_at == datetime(2009, 11, 14, 15, 27, tzinfo=UTC)
    assert a.regions == ("2",) and a.active_post_count == 1
    assert not a.is_heartbeat and push.images == ()


def test_live_multipart_with_snapshot_keeps_reference_not_bytes() -> None:
    jpeg = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8 + b"\xff\xd9"
    body = (
        LIVE_BLOCK + b'\r\n--boundary\r\nContent-Disposition: form-data; name="VMD.jpg"; '
        b'filename="VMD.jpg"\r\nContent-Type: image/jpeg\r\n\r\n' + jpeg + b"\r\n--boundary--\r\n"
    )
    push = isapi.decode(body, "multipart/form-data; boundary=boundary")
    assert push.alert.event_type == "VMD" and push.alert.mac == "d4:e8:53:87:c0:5c"
    assert push.alert.occurred_at == datetime(2026, 7, 16, 5, 48, 26, tzinfo=UTC)
    (img,) = push.images
    assert img.name == "VMD.jpg" and img.content_type == "image/jpeg" and img.size == len(jpeg)
    assert img.sha256 == hashlib.sha256(jpeg).hexdigest()


def test_heartbeat_without_zone_uses_default_zone() -> None:
    a = isapi.decode_alert_xml(HEARTBEAT, default_tz=timezone(timedelta(hours=8)))
    assert a.is_heartbeat and a.kind == AlarmKind.TROUBLE and a.active_post_count == 0
    assert a.occurred_at == datetime(2026, 9, 9, 9, 2, 40, tzinfo=UTC)


def test_old_firmware_double_minus_zone() -> None:
    a = isapi.decode_alert_xml(OLD_FIRMWARE)
    assert a.occurred_at == datetime(2015, 6, 25, 3, 37, 22, tzinfo=UTC)


@pytest.mark.parametrize(
    "event_type, kind",
    [
        ("fielddetection", AlarmKind.INTRUSION),
        ("linedetection", AlarmKind.LINE_CROSSING),
        ("tamperdetection", AlarmKind.TAMPER),
        ("shelteralarm", AlarmKind.TAMPER),
        ("faceSnap", AlarmKind.OTHER),
    ],
)
def test_event_type_mapping(event_type: str, kind: AlarmKind) -> None:
    xml = SPEC_VMD.replace(b"<eventType>VMD</eventType>", f"<eventType>{event_type}</eventType>".encode())
    assert isapi.decode_alert_xml(xml).kind == kind


@pytest.mark.parametrize(
    "body",
    [
        b"<EventNotificationAlert><eventType>VMD</eventType>",  # truncated
        b"not xml at all",
        b"<ResponseStatus><statusCode>1</statusCode></ResponseStatus>",  # wrong document
        b"<EventNotificationAlert><eventState>active</eventState></EventNotificationAlert>",  # no type
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
        b"<EventNotificationAlert><eventType>&b;</eventType></EventNotificationAlert>",  # entity expansion
    ],
)
def test_malformed_is_an_isapi_error(body: bytes) -> None:
    with pytest.raises(IsapiError):
        isapi.decode(body, "application/xml")


def test_multipart_without_xml_part() -> None:
    body = b"--b\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8\xff\xd9\r\n--b--\r\n"
    with pytest.raises(IsapiError):
        isapi.decode(body, "multipart/mixed; boundary=b")
