"""Attack: JT/T 808 registration takeover (docs/security.md, "JT/T 808 authentication").

Before: any 0x0100 naming a registered terminal's number was answered with that terminal's
authentication code, after which the caller could send SOS/theft alarms and take over the terminal's
command routing; sub-packages were reassembled before authentication. Now the code is given out once:
a registered terminal's number gets result 3 (counted), until the terminal logs out or an operator
resets it; sub-packages before authentication are refused.
"""

from __future__ import annotations

from datetime import UTC, datetime

from alarmhub_ingest_gps.protocols import jt808
from alarmhub_ingest_gps.sessions import (
    DictDirectory,
    Jt808Session,
    SessionConfig,
    UnregisteredPolicy,
    VehicleInfo,
)

NOW = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
PHONE = "013912345678"
CFG = SessionConfig(policy=UnregisteredPolicy.REJECT, auth_secret=b"production-secret")
REGISTER = bytes(4) + b"ACME\x00" + b"M1".ljust(20, b"\x00") + b"T000001" + b"\x01" + "粤B12345".encode("gbk")


def _reply(out_reply: bytearray) -> jt808.Message:
    return jt808.decode(bytes(out_reply)[1:-1])


def test_registered_terminal_code_is_given_out_once() -> None:
    directory = DictDirectory({PHONE: VehicleInfo(PHONE, "jt808")})  # registered, never connected
    real = Jt808Session(directory, CFG)
    out = real.feed(jt808.encode(0x0100, PHONE, 1, REGISTER), NOW)
    reply = _reply(out.reply)
    assert reply.body[2] == jt808.REG_OK
    code = reply.body[3:]
    (write,) = out.registry
    directory[PHONE] = VehicleInfo(PHONE, "jt808", auth_code=write.auth_code)  # what the server stores

    # an impostor naming the same number on another connection learns nothing
    impostor = Jt808Session(directory, CFG)
    out = impostor.feed(jt808.encode(0x0100, PHONE, 1, REGISTER), NOW)
    reply = _reply(out.reply)
    assert reply.body[2] == jt808.REG_TERMINAL_TAKEN and code not in bytes(out.reply)
    assert out.reregistrations == 1 and not out.registry
    # and cannot send an alarm either
    sos = jt808.encode(0x0200, PHONE, 2, (1).to_bytes(4, "big") + bytes(24))
    assert impostor.feed(sos, NOW).publish == [] and not impostor.authenticated

    # the real terminal authenticates with its code; its logout gives the code back
    out = real.feed(jt808.encode(0x0102, PHONE, 2, code), NOW)
    assert real.authenticated
    out = real.feed(jt808.encode(0x0003, PHONE, 3, b""), NOW)
    assert [w.reset_auth for w in out.registry] == [True]


def test_sub_packages_before_authentication_are_refused() -> None:
    s = Jt808Session(DictDirectory({PHONE: VehicleInfo(PHONE, "jt808")}), CFG)
    part = jt808.encode(0x0200, PHONE, 1, bytes(28), package=(200, 1))
    out = s.feed(part, NOW)
    assert out.dlq and "before authentication" in out.dlq[0][1]
    assert s.reassembler._pending == {}  # nothing held for an unauthenticated sender
