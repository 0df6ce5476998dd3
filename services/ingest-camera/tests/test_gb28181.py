"""GB/T 28181 SIP: parsing, framing, digest, MANSCDP bodies (GBK and UTF-8), the registrar exchange."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alarmhub_ingest_camera.protocols import gb28181
from alarmhub_ingest_camera.protocols.gb28181 import (
    Gb28181Registrar,
    SipError,
    SipEventType,
    decode_manscdp,
    digest_response,
)


def _crlf(text: str) -> bytes:
    """The capture below was published as Markdown (each line ends in two spaces); restore CRLF lines."""
    lines = [line.rstrip() for line in text.strip("\n").split("\n")]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# A camera registering with a platform, captured with the SPVMN test tool and published in a
# GB/T 28181 SIP UA write-up (store id 5276299067): the first REGISTER, and the second one answering
# the challenge `WWW-Authenticate: Digest realm="3402000000",nonce="c98f6d56cb2ab8e6"`.
REGISTER_1 = _crlf("""
REGISTER sip:34020000002000000001@3402000000:5060 SIP/2.0
Via: SIP/2.0/UDP 172.16.23.205:5060;rport=5060;branch=z9hG4bK486745920;received=172.16.23.205
From: <sip:34020000001320000001@3402000000:5060>;tag=664773380
To: <sip:34020000001320000001@3402000000:5060>
Call-ID: 790171336
CSeq: 1 REGISTER
Contact: <sip:34020000001320000001@172.16.23.205:5060>
Max-Forwards: 70
User-Agent: IP Camera
Expires: 3600
Content-Length: 0
""")
REGISTER_2 = _crlf("""
REGISTER sip:34020000002000000001@3402000000:5060 SIP/2.0
Via: SIP/2.0/UDP 172.16.23.205:5060;rport=5060;branch=z9hG4bK1887657866;received=172.16.23.205
From: <sip:34020000001320000001@3402000000:5060>;tag=664773380
To: <sip:34020000001320000001@3402000000:5060>
Call-ID: 790171336
CSeq: 2 REGISTER
Contact: <sip:34020000001320000001@172.16.23.205:5060>
Authorization: Digest username="34020000001320000001",realm="3402000000",nonce="c98f6d56cb2ab8e6",uri="sip:34020000002000000001@3402000000:5060",response="79d8846430436131196c50746cd97fa5",algorithm=MD5
Max-Forwards: 70
User-Agent: IP Camera
Expires: 3600
Content-Length: 0
""")
CAPTURED_NONCE = "c98f6d56cb2ab8e6"
CAPTURED_PASSWORD = "123456"  # the only common default that reproduces the captured response

# The keepalive MESSAGE of the same capture. Its body's blank lines were Markdown artifacts; we keep the
# XML lines as published and recompute Content-Length (the capture said 160).
KEEPALIVE_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>1</SN>\r\n'
    b"<DeviceID>34020000001320000001</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n"
)
KEEPALIVE = (
    _crlf(f"""
MESSAGE sip:34020000002000000001@3402000000 SIP/2.0
Via: SIP/2.0/UDP 172.16.23.205:5060;rport=5060;branch=z9hG4bK219387606;received=172.16.23.205
From: <sip:34020000001320000001@3402000000>;tag=1293913070
To: <sip:34020000002000000001@3402000000>
Call-ID: 1375843967
CSeq: 20 MESSAGE
Content-Type: Application/MANSCDP+xml
Max-Forwards: 70
User-Agent: IP Camera
Content-Length: {len(KEEPALIVE_BODY)}
""")
    + KEEPALIVE_BODY
)

# GB/T 28181-2016 A.2.5's alarm notification example, as quoted in wvp-GB28181-pro's
# XMLElementNotify.java (store id 39344807318), declared and encoded GB2312 as devices send it.
ALARM_TEXT = (
    '<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Alarm</CmdType>\r\n<SN>1</SN>\r\n'
    "<DeviceID>64010000001340000001</DeviceID>\r\n<AlarmPriority>4</AlarmPriority>\r\n"
    "<AlarmMethod>2</AlarmMethod>\r\n<AlarmTime>2009-12-04T16:23:32</AlarmTime>\r\n"
    "<AlarmDescription>警情描述</AlarmDescription>\r\n<Longitude>171.3</Longitude>\r\n"
    "<Latitude>34.2</Latitude>\r\n</Notify>\r\n"
)
ALARM_GBK = ALARM_TEXT.encode("gb2312")


def _message(
    body: bytes, device: str = "34020000001320000001", cseq: int = 21, branch: str = "z9hG4bK1"
) -> bytes:
    head = (
        f"MESSAGE sip:34020000002000000001@3402000000 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5060;rport;branch={branch}\r\n"
        f"From: <sip:{device}@3402000000>;tag=1\r\nTo: <sip:34020000002000000001@3402000000>\r\n"
        f"Call-ID: c{cseq}\r\nCSeq: {cseq} MESSAGE\r\nContent-Type: Application/MANSCDP+xml\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def test_parse_captured_register() -> None:
    msg = gb28181.decode(REGISTER_2)
    assert msg.method == "REGISTER" and msg.uri == "sip:34020000002000000001@3402000000:5060"
    assert (
        msg.from_user == "34020000001320000001" and msg.cseq == (2, "REGISTER") and msg.call_id == "790171336"
    )
    assert msg.branch == "z9hG4bK1887657866"
    params = gb28181.decode_auth_params(msg.header("Authorization") or "")
    assert params["nonce"] == CAPTURED_NONCE and params["algorithm"] == "MD5"


def test_digest_reproduces_captured_response() -> None:
    assert (
        digest_response(
            username="34020000001320000001",
            realm="3402000000",
            password=CAPTURED_PASSWORD,
            method="REGISTER",
            uri="sip:34020000002000000001@3402000000:5060",
            nonce=CAPTURED_NONCE,
        )
        == "79d8846430436131196c50746cd97fa5"
    )


def _registrar(password: str = CAPTURED_PASSWORD) -> Gb28181Registrar:
    return Gb28181Registrar(
        server_id="34020000002000000001",
        realm="3402000000",
        default_password=password,
        nonce_source=lambda _now: CAPTURED_NONCE,
    )


NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
PEER = ("172.16.23.205", 5060)


def test_captured_register_exchange() -> None:
    reg = _registrar()
    r1 = reg.handle(gb28181.decode(REGISTER_1), PEER, NOW)
    challenge = gb28181.decode(r1.reply or b"")
    assert challenge.status == 401 and challenge.cseq == (1, "REGISTER") and challenge.call_id == "790171336"
    www = gb28181.decode_auth_params(challenge.header("WWW-Authenticate") or "")
    assert www["realm"] == "3402000000" and www["nonce"] == CAPTURED_NONCE
    assert r1.events == []
    r2 = reg.handle(gb28181.decode(REGISTER_2), PEER, NOW + timedelta(seconds=1))
    ok = gb28181.decode(r2.reply or b"")
    assert ok.status == 200 and ok.header("Expires") == "3600" and ok.header("Date")
    assert ";tag=" in (ok.header("To") or "")
    assert [e.type for e in r2.events] == [SipEventType.REGISTERED] and r2.needs_publish
    assert reg.is_registered("34020000001320000001", NOW + timedelta(seconds=2))
    # a retransmission of the same REGISTER is answered from the cache, no second event
    reg.remember_reply(gb28181.decode(REGISTER_2), r2.reply or b"")
    again = reg.handle(gb28181.decode(REGISTER_2), PEER, NOW + timedelta(seconds=2))
    assert again.retransmission and again.reply == r2.reply and again.events == []


def test_wrong_password_is_forbidden() -> None:
    reg = _registrar(password="12345678")
    reg.handle(gb28181.decode(REGISTER_1), PEER, NOW)
    r = reg.handle(gb28181.decode(REGISTER_2), PEER, NOW)
    assert gb28181.decode(r.reply or b"").status == 403
    assert [e.type for e in r.events] == [SipEventType.REJECTED]
    assert not reg.is_registered("34020000001320000001", NOW)


def test_unissued_or_expired_nonce_is_rechallenged() -> None:
    reg = _registrar()
    r = reg.handle(gb28181.decode(REGISTER_2), PEER, NOW)  # nonce never issued by this registrar
    assert gb28181.decode(r.reply or b"").status == 401 and "stale=TRUE" in (
        gb28181.decode(r.reply or b"").header("WWW-Authenticate") or ""
    )
    reg.handle(gb28181.decode(REGISTER_1), PEER, NOW)
    late = reg.handle(gb28181.decode(REGISTER_2), PEER, NOW + timedelta(seconds=301))
    assert gb28181.decode(late.reply or b"").status == 401


def test_a_nonce_or_response_not_in_ascii_is_rechallenged_or_refused() -> None:
    """hmac.compare_digest raises TypeError on str that is not ASCII (the fuzz test found such a nonce):
    the registrar compares bytes and answers as it does any wrong value."""
    reg = Gb28181Registrar(server_id="34020000002000000001", realm="3402000000", default_password="pw")
    challenge = gb28181.decode(reg.handle(gb28181.decode(REGISTER_1), PEER, NOW).reply or b"")
    nonce = gb28181.decode_auth_params(challenge.header("WWW-Authenticate") or "")["nonce"]
    bad_nonce = REGISTER_2.decode().replace("c98f6d56cb2ab8e6", "00000000测试0123456789abcd")
    r = reg.handle(gb28181.decode(bad_nonce.encode()), PEER, NOW)
    assert gb28181.decode(r.reply or b"").status == 401  # an unknown nonce: challenged again
    bad_response = (
        REGISTER_2.decode()
        .replace("c98f6d56cb2ab8e6", nonce)
        .replace("79d8846430436131196c50746cd97fa5", "测试")
    )
    r = reg.handle(gb28181.decode(bad_response.encode()), PEER, NOW)
    assert gb28181.decode(r.reply or b"").status == 403  # a wrong answer to a good nonce: refused


def test_default_nonces_are_self_validating() -> None:
    reg = Gb28181Registrar(server_id="34020000002000000001", realm="3402000000", default_password="pw")
    challenge = gb28181.decode(reg.handle(gb28181.decode(REGISTER_1), PEER, NOW).reply or b"")
    www = gb28181.decode_auth_params(challenge.header("WWW-Authenticate") or "")
    uri = "sip:34020000002000000001@3402000000:5060"
    resp = digest_response(
        username="34020000001320000001",
        realm="3402000000",
        password="pw",
        method="REGISTER",
        uri=uri,
        nonce=www["nonce"],
        qop="auth",
        nc="00000001",
        cnonce="abc",
    )
    text = (
        REGISTER_2.decode()
        .replace('nonce="c98f6d56cb2ab8e6"', f'nonce="{www["nonce"]}",qop=auth,nc=00000001,cnonce="abc"')
        .replace("79d8846430436131196c50746cd97fa5", resp)
    )
    r = reg.handle(gb28181.decode(text.encode()), PEER, NOW + timedelta(seconds=5))
    assert gb28181.decode(r.reply or b"").status == 200


def test_keepalive_and_gbk_alarm_after_register() -> None:
    reg = _registrar()
    reg.handle(gb28181.decode(REGISTER_1), PEER, NOW)
    reg.handle(gb28181.decode(REGISTER_2), PEER, NOW)
    ka = reg.handle(gb28181.decode(KEEPALIVE), PEER, NOW)
    assert gb28181.decode(ka.reply or b"").status == 200
    assert [e.type for e in ka.events] == [SipEventType.KEEPALIVE]
    al = reg.handle(gb28181.decode(_message(ALARM_GBK)), (PEER[0], 5061), NOW)  # same host, another port
    (ev,) = al.events
    assert ev.type == SipEventType.ALARM and ev.device_id == "64010000001340000001"
    assert ev.message is not None and ev.message.get("AlarmDescription") == "警情描述"
    assert ev.message.get("Longitude") == "171.3" and ev.message.encoding == "gb18030"
    via = gb28181.decode(al.reply or b"").header("Via") or ""
    assert "rport=5061" in via and f"received={PEER[0]}" in via


def test_message_from_unregistered_device_is_forbidden() -> None:
    reg = _registrar()
    r = reg.handle(gb28181.decode(_message(ALARM_GBK)), PEER, NOW)
    assert gb28181.decode(r.reply or b"").status == 403
    assert [e.type for e in r.events] == [SipEventType.REJECTED] and not r.needs_publish


def test_manscdp_utf8_and_undeclared_gbk() -> None:
    utf8 = decode_manscdp(ALARM_TEXT.replace("GB2312", "UTF-8").encode())
    assert utf8.get("AlarmDescription") == "警情描述" and utf8.encoding == "utf-8"
    undeclared = decode_manscdp(ALARM_TEXT.split("\r\n", 1)[1].encode("gbk"))
    assert undeclared.get("AlarmDescription") == "警情描述" and undeclared.cmd_type == "Alarm"


@pytest.mark.parametrize(
    "body",
    [
        b"<Notify><CmdType>Alarm</CmdType>",
        b"<Notify><SN>1</SN></Notify>",
        b'<!DOCTYPE x [<!ENTITY a "a">]><Notify><CmdType>&a;</CmdType></Notify>',
    ],
)
def test_manscdp_malformed(body: bytes) -> None:
    with pytest.raises(SipError):
        decode_manscdp(body)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"HELLO\r\n\r\n",
        b"REGISTER sip:x SIP/2.0\r\nVia: x\r\n\r\n",
        b"MESSAGE sip:x SIP/2.0\r\nVia: a\r\nFrom: b\r\nTo: c\r\nCall-ID: d\r\n"
        b"CSeq: 1 MESSAGE\r\nContent-Length: 99\r\n\r\nshort",
    ],
)
def test_bad_sip(data: bytes) -> None:
    with pytest.raises(SipError):
        gb28181.decode(data)


def test_framer_every_split_and_glued() -> None:
    stream = REGISTER_1 + b"\r\n\r\n" + KEEPALIVE + _message(ALARM_GBK)
    for cut in range(1, len(stream)):
        f = gb28181.Framer()
        frames = f.feed(stream[:cut]) + f.feed(stream[cut:])
        assert [gb28181.decode(x).method for x in frames] == ["REGISTER", "MESSAGE", "MESSAGE"]
    f = gb28181.Framer()
    frames = [fr for b in stream for fr in f.feed(bytes([b]))]
    assert gb28181.decode(frames[2]).body == ALARM_GBK


def test_framer_rejects_oversize() -> None:
    f = gb28181.Framer(max_message=1024)
    with pytest.raises(SipError):
        f.feed(b"MESSAGE sip:x SIP/2.0\r\nContent-Length: 5000\r\n\r\n")


def test_alarm_response_request_answers_the_notify() -> None:
    """A.2.6: the server's MESSAGE carrying <Response><CmdType>Alarm … <Result>OK, parseable as SIP."""
    from alarmhub_ingest_camera.protocols.gb28181 import decode_manscdp

    notify = decode_manscdp(
        b'<?xml version="1.0"?>\r\n<Notify>\r\n<CmdType>Alarm</CmdType>\r\n<SN>17</SN>\r\n'
        b"<DeviceID>34020000001340000001</DeviceID>\r\n<AlarmPriority>1</AlarmPriority>\r\n</Notify>\r\n"
    )
    raw = gb28181.encode_alarm_response(
        server_id="34020000002000000001",
        realm="3402000000",
        sip_device_id="34020000001320000001",
        alarm=notify,
        peer=("192.0.2.10", 5060),
        local=("127.0.0.1", 5060),
        transport="udp",
        call_id="c1@127.0.0.1",
        branch="abc",
        from_tag="t1",
    )
    msg = gb28181.decode(raw)
    assert msg.method == "MESSAGE" and msg.uri == "sip:34020000001320000001@192.0.2.10:5060"
    assert msg.header("Via") == "SIP/2.0/UDP 127.0.0.1:5060;rport;branch=z9hG4bKabc"
    assert msg.header("CSeq") == "1 MESSAGE" and msg.call_id == "c1@127.0.0.1"
    body = decode_manscdp(msg.body)
    assert (body.root, body.cmd_type, body.sn, body.device_id) == (
        "Response",
        "Alarm",
        "17",
        "34020000001340000001",
    )
    assert body.fields["Result"] == "OK"
