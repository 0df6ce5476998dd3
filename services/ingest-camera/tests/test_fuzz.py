"""Property fuzzing of the camera intake's parsers, seeded with the real frames of the protocol tests
(sources noted there): any input gives a parse, the parser's own error (which the server turns into a
SIP 400 or an HTTP 4xx with a reason), or — for the registrar — a reply; never another exception.

The coverage-guided counterpart is ``tests/fuzz/atheris_camera.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from alarmhub_ingest_camera.protocols import gb28181, isapi, onvif, webhook
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .test_gb28181 import ALARM_GBK, KEEPALIVE, KEEPALIVE_BODY, REGISTER_1, REGISTER_2, _message
from .test_isapi import HEARTBEAT, LIVE_BLOCK, OLD_FIRMWARE, SPEC_VMD
from .test_onvif import DATA, NOTIFY_CELL_MOTION

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
SIP_SEEDS = [REGISTER_1, REGISTER_2, KEEPALIVE, _message(ALARM_GBK)]
XML_SEEDS = [SPEC_VMD, LIVE_BLOCK, HEARTBEAT, OLD_FIRMWARE, KEEPALIVE_BODY, ALARM_GBK]
ONVIF_SEEDS = [NOTIFY_CELL_MOTION, (DATA / "onvif_hikvision_pullmessages.xml").read_bytes()]
WEBHOOK_SEEDS = [
    b'{"kind": "intrusion", "camera_id": "cam-1", "occurred_at": "2026-11-25T02:00:00Z"}',
    b'{"kind": "fire", "camera_id": "c\\u0000", "lat": 22.5, "lon": 114.0}',
    b"[]",
    b"{",
]


def mutated(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    @st.composite
    def _mutate(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(st.sampled_from(seeds)))
        for _ in range(draw(st.integers(1, 6))):
            op = draw(st.sampled_from(["flip", "insert", "delete", "nul", "cut"]))
            i = draw(st.integers(0, max(len(data) - 1, 0)))
            if op == "flip" and data:
                data[i] = draw(st.integers(0, 255))
            elif op == "insert":
                data[i:i] = draw(st.binary(min_size=1, max_size=8))
            elif op == "nul":
                data.insert(i, 0)
            elif op == "cut":
                del data[i:]
            elif data:
                del data[i]
        return bytes(data)

    return st.one_of(st.binary(max_size=400), _mutate())


SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(data=mutated(SIP_SEEDS), cut=st.integers(0, 600))
def test_sip_framer_parser_and_registrar_never_raise(data: bytes, cut: int) -> None:
    registrar = gb28181.Gb28181Registrar(
        server_id="34020000002000000001", realm="3402000000", default_password="123456"
    )
    framer = gb28181.Framer(max_message=4096)
    try:
        frames = framer.feed(data[:cut]) + framer.feed(data[cut:])
    except gb28181.SipError:
        frames = []
    for frame in [*frames, data]:
        try:
            req = gb28181.decode(frame)
        except gb28181.SipError:
            continue
        result = registrar.handle(req, ("127.0.0.1", 5060), NOW, frame)
        if result.reply is not None:
            assert gb28181.decode(result.reply).status is not None


@SETTINGS
@given(body=mutated(XML_SEEDS))
def test_manscdp_never_raises_but_its_error(body: bytes) -> None:
    try:
        gb28181.decode_manscdp(body)
    except gb28181.SipError:
        pass


@SETTINGS
@given(
    body=mutated(XML_SEEDS),
    ctype=st.sampled_from([None, "application/xml", "multipart/form-data; boundary=b"]),
)
def test_isapi_never_raises_but_its_error(body: bytes, ctype: str | None) -> None:
    try:
        isapi.decode(body, ctype)
    except isapi.IsapiError:
        pass


@SETTINGS
@given(body=mutated(ONVIF_SEEDS))
def test_onvif_never_raises_but_its_error(body: bytes) -> None:
    try:
        onvif.decode(body)
    except onvif.OnvifError:
        pass


@SETTINGS
@given(body=mutated(WEBHOOK_SEEDS), key=st.one_of(st.none(), st.text(max_size=140)))
def test_webhook_never_raises_but_its_error(body: bytes, key: str | None) -> None:
    try:
        webhook.decode(body, key)
    except webhook.WebhookError as exc:
        assert 400 <= exc.status < 500


def test_alarm_with_a_damaged_byte_is_still_an_alarm() -> None:
    # found by the property above: a GB2312-declared body with a byte GB18030 cannot decode raised
    # UnicodeDecodeError out of the registrar (the UDP handler's caller), losing the alarm
    damaged = ALARM_GBK.replace("警".encode("gb2312"), b"\x80\xff")
    msg = gb28181.decode_manscdp(damaged)
    assert (msg.cmd_type, msg.device_id) == ("Alarm", "64010000001340000001")
