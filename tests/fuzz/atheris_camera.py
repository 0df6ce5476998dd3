"""Coverage-guided fuzzing (atheris / libFuzzer) of the camera intake's parsers and SIP registrar.

The first input byte picks a target — GB/T 28181 SIP (framer, parser and registrar), MANSCDP XML, ISAPI
(XML or multipart), ONVIF notifications, or the webhook's JSON — and the rest is its input. A parser may
answer with its own error (SipError, IsapiError, OnvifError, WebhookError: a SIP 400 or an HTTP 4xx with a
reason at the server); any other exception is a crash, which libFuzzer reports with the input.

    .venv/bin/python tests/fuzz/atheris_camera.py --write-seeds corpus/
    .venv/bin/python tests/fuzz/atheris_camera.py -runs=20000 corpus/

Seeds are real frames from the camera tests (sources noted there); ``tests/fuzz/test_atheris_camera.py``
runs it bounded in the suite.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
M: dict[str, Any] = {}

SEEDS = {
    # services/ingest-camera/tests/test_gb28181.py KEEPALIVE (SPVMN capture), a MESSAGE with its body
    "sip_keepalive": b"\x00"
    + b"MESSAGE sip:34020000002000000001@3402000000 SIP/2.0\r\nVia: SIP/2.0/UDP 172.16.23.205:5060;rport=5060;"
    b"branch=z9hG4bK219387606\r\nFrom: <sip:34020000001320000001@3402000000>;tag=1293913070\r\n"
    b"To: <sip:34020000002000000001@3402000000>\r\nCall-ID: 1375843967\r\nCSeq: 20 MESSAGE\r\n"
    b"Content-Type: Application/MANSCDP+xml\r\nMax-Forwards: 70\r\nContent-Length: 10\r\n\r\n<Notify/>\r\n",
    # GB/T 28181-2016 A.2.5's alarm notification example (test_gb28181.py ALARM_TEXT), UTF-8 here
    "manscdp_alarm": b"\x01"
    + '<?xml version="1.0" encoding="UTF-8"?>\r\n<Notify>\r\n<CmdType>Alarm</CmdType>\r\n<SN>1</SN>\r\n'
    "<DeviceID>64010000001340000001</DeviceID>\r\n<AlarmPriority>4</AlarmPriority>\r\n"
    "<AlarmMethod>2</AlarmMethod>\r\n<AlarmTime>2009-12-04T16:23:32</AlarmTime>\r\n"
    "<AlarmDescription>警情描述</AlarmDescription>\r\n</Notify>\r\n".encode(),
    # the ISAPI specification's example alert (test_isapi.py SPEC_VMD), shortened
    "isapi_vmd": b"\x02" + b'<?xml version="1.0" encoding="UTF-8"?>\n<EventNotificationAlert version="2.0" '
    b'xmlns="http://www.std-cgi.com/ver10/XMLSchema">\n<ipAddress>172.6.64.7</ipAddress>\n<channelID>1'
    b"</channelID>\n<dateTime>2009-11-14T15:27Z</dateTime>\n<activePostCount>1</activePostCount>\n"
    b"<eventType>VMD</eventType>\n<eventState>active</eventState>\n<eventDescription>Motion alarm"
    b"</eventDescription>\n</EventNotificationAlert>\n",
    # services/ingest-camera/tests/data/onvif_hikvision_pullmessages.xml
    "onvif_pull": b"\x03"
    + (
        Path(__file__).parents[2] / "services/ingest-camera/tests/data/onvif_hikvision_pullmessages.xml"
    ).read_bytes(),
    "webhook": b"\x04"
    + b'{"kind": "intrusion", "camera_id": "cam-1", "occurred_at": "2026-11-25T02:00:00Z"}',
}


def one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    target, payload = data[0] % 5, data[1:]
    g, isapi, onvif, webhook = M["gb28181"], M["isapi"], M["onvif"], M["webhook"]
    if target == 0:
        registrar = g.Gb28181Registrar(
            server_id="34020000002000000001", realm="3402000000", default_password="1"
        )
        try:
            frames = g.Framer(max_message=4096).feed(payload)
        except g.SipError:
            frames = []
        for frame in [*frames, payload]:
            try:
                req = g.decode(frame)
            except g.SipError:
                continue
            registrar.handle(req, ("127.0.0.1", 5060), NOW, frame)
    elif target == 1:
        try:
            g.decode_manscdp(payload)
        except g.SipError:
            pass
    elif target == 2:
        for ctype in ("application/xml", "multipart/form-data; boundary=b"):
            try:
                isapi.decode(payload, ctype)
            except isapi.IsapiError:
                pass
    elif target == 3:
        try:
            onvif.decode(payload)
        except onvif.OnvifError:
            pass
    else:
        try:
            webhook.decode(payload, "key-1")
        except webhook.WebhookError:
            pass


def main() -> None:
    if sys.argv[1:2] == ["--write-seeds"]:
        out = Path(sys.argv[2])
        out.mkdir(parents=True, exist_ok=True)
        for name, seed in SEEDS.items():
            (out / name).write_bytes(seed)
        return
    import atheris

    with atheris.instrument_imports(include=["alarmhub_ingest_camera"]):
        from alarmhub_ingest_camera.protocols import gb28181, isapi, onvif, webhook
    M.update(gb28181=gb28181, isapi=isapi, onvif=onvif, webhook=webhook)
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
