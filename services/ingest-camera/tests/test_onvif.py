"""ONVIF notification decoding with a real camera capture, and the SOAP requests we build."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alarmhub_events import AlarmKind
from alarmhub_ingest_camera.protocols import onvif
from alarmhub_ingest_camera.protocols.onvif import OnvifError

DATA = Path(__file__).parent / "data"

# A Notify as pushed to a consumer endpoint: the fixture of a Go ONVIF client's test
# TestParseEvents_AllTypes (store id 52021542833), first message and envelope, byte for byte.
NOTIFY_CELL_MOTION = b"""<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"
            xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2">
  <s:Body>
    <wsnt:Notify>
      <wsnt:NotificationMessage>
        <wsnt:Topic>tns1:RuleEngine/CellMotionDetector/Motion</wsnt:Topic>
        <wsnt:Message>
          <tt:Message xmlns:tt="http://www.onvif.org/ver10/schema">
            <tt:Data>
              <tt:SimpleItem Name="IsMotion" Value="true"/>
            </tt:Data>
          </tt:Message>
        </wsnt:Message>
      </wsnt:NotificationMessage>
      <wsnt:NotificationMessage>
        <wsnt:Topic>tns1:VideoSource/SignalLoss</wsnt:Topic>
        <wsnt:Message>
          <tt:Message xmlns:tt="http://www.onvif.org/ver10/schema">
            <tt:Data>
              <tt:SimpleItem Name="State" Value="false"/>
            </tt:Data>
          </tt:Message>
        </wsnt:Message>
      </wsnt:NotificationMessage>
    </wsnt:Notify>
  </s:Body>
</s:Envelope>"""

# The tamper NotificationMessage a camera reports, from the comment in SharpOnvif's
# SharpOnvifServer/OnvifEvents.cs (store id 37622223190), wrapped in the standard Notify envelope.
TAMPER_MESSAGE = b"""<wsnt:NotificationMessage>
            <wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">tns1:RuleEngine/TamperDetector/Tamper</wsnt:Topic>
            <wsnt:Message>
                <tt:Message UtcTime="2024-05-25T23:59:38Z" PropertyOperation="Initialized">
                    <tt:Source>
                        <tt:SimpleItem Name="VideoSourceConfigurationToken" Value="VideoSourceToken"/>
                        <tt:SimpleItem Name="VideoAnalyticsConfigurationToken" Value="VideoAnalyticsToken"/>
                        <tt:SimpleItem Name="Rule" Value="MyTamperDetectorRule"/>
                    </tt:Source>
                    <tt:Data>
                        <tt:SimpleItem Name="IsTamper" Value="false"/>
                    </tt:Data>
                </tt:Message>
            </wsnt:Message>
        </wsnt:NotificationMessage>"""


def test_hikvision_pullmessages_capture() -> None:
    msgs = onvif.decode((DATA / "onvif_hikvision_pullmessages.xml").read_bytes())
    assert len(msgs) == 10
    by_path = {m.path: m for m in msgs}
    motion = by_path["VideoSource/MotionAlarm"]
    assert motion.kind == AlarmKind.MOTION and motion.active is False and motion.operation == "Initialized"
    assert motion.rule == "VideoSource_1" and motion.utc_time == datetime(2024, 5, 25, 23, 59, 38, tzinfo=UTC)
    cell = by_path["RuleEngine/CellMotionDetector/Motion"]
    assert cell.kind == AlarmKind.MOTION and cell.active is False and cell.rule == "MyMotionDetectorRule"
    field = by_path["RuleEngine/FieldDetector/ObjectsInside"]
    assert (
        field.kind == AlarmKind.INTRUSION
        and field.key == {"ObjectId": "0"}
        and field.rule == "MyFieldDetector1"
    )
    assert by_path["VideoSource/GlobalSceneChange/ImagingService"].kind == AlarmKind.TAMPER
    assert (
        by_path["Monitoring/ProcessorUsage"].kind is None
        and by_path["Monitoring/ProcessorUsage"].active is None
    )


def test_notify_push() -> None:
    msgs = onvif.decode(NOTIFY_CELL_MOTION)
    assert [(m.kind, m.active) for m in msgs] == [(AlarmKind.MOTION, True), (AlarmKind.TROUBLE, False)]
    assert msgs[0].utc_time is None and msgs[0].rule == ""


def test_tamper_message_in_notify_envelope() -> None:
    body = (
        b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2"'
        b' xmlns:tt="http://www.onvif.org/ver10/schema"><s:Body><wsnt:Notify>'
        + TAMPER_MESSAGE
        + b"</wsnt:Notify></s:Body></s:Envelope>"
    )
    (m,) = onvif.decode(body)
    assert m.kind == AlarmKind.TAMPER and m.active is False and m.rule == "MyTamperDetectorRule"


@pytest.mark.parametrize(
    "body",
    [
        b"<s:Envelope",
        b"<html><body>hi</body></html>",
        b"<Envelope><Body><NotificationMessage/></Body></Envelope>",
    ],
)
def test_malformed(body: bytes) -> None:
    with pytest.raises(OnvifError):
        onvif.decode(body)


def test_requests_are_well_formed_and_parse_back() -> None:
    from defusedxml import ElementTree

    for req in (
        onvif.encode_subscribe("http://cam/onvif/Events", "http://me:8081/events/onvif", 600),
        onvif.encode_create_pullpoint("http://cam/onvif/Events", 600),
        onvif.encode_pull_messages("http://cam/sub/1", 5, 100),
        onvif.encode_renew("http://cam/sub/1", 600),
        onvif.encode_unsubscribe("http://cam/sub/1"),
    ):
        root = ElementTree.fromstring(req)
        assert root.tag.endswith("Envelope")
    assert b"<wsa:Address>http://me:8081/events/onvif</wsa:Address>" in onvif.encode_subscribe(
        "http://cam/onvif/Events", "http://me:8081/events/onvif", 600
    )


def test_subscription_response_and_fault() -> None:
    ok = (
        b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2"'
        b' xmlns:wsa="http://www.w3.org/2005/08/addressing"><s:Body><wsnt:SubscribeResponse>'
        b"<wsnt:SubscriptionReference><wsa:Address>http://cam/sub/7</wsa:Address></wsnt:SubscriptionReference>"
        b"<wsnt:CurrentTime>2026-11-25T08:00:00Z</wsnt:CurrentTime>"
        b"<wsnt:TerminationTime>2026-11-25T08:10:00Z</wsnt:TerminationTime>"
        b"</wsnt:SubscribeResponse></s:Body></s:Envelope>"
    )
    info = onvif.decode_subscription_response(ok)
    assert info.address == "http://cam/sub/7"
    assert info.termination_time == datetime(2026, 11, 25, 8, 10, tzinfo=UTC)
    fault = (
        b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault><s:Reason>'
        b"<s:Text>not authorized</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>"
    )
    with pytest.raises(OnvifError, match="not authorized"):
        onvif.decode_subscription_response(fault)
