"""Attack: the JT/T 809 login as an oracle, and the slave link as a redirector (docs/security.md).

Before: a wrong password got 0x04 and an unknown user 0x03 (which user ids exist, which passwords were
right), the password was hashed before the source address and the centre were checked, and the slave
link was opened to whatever address the login named (a third party's). Now: the cheap checks first,
one refusal code, and the slave link only to the peer's own address.
"""

from __future__ import annotations

from alarmhub_ingest_gps.jt809.platforms import PlatformDirectory, PlatformRecord
from alarmhub_ingest_gps.jt809.session import Jt809LinkSession
from alarmhub_ingest_gps.protocols import jt809 as p
from alarmhub_store import hash_password

from .test_jt809 import HEARTBEAT, LOGIN, NOW


def _code(records: list[PlatformRecord], peer: str = "127.0.0.1:5000") -> int | None:
    return Jt809LinkSession(PlatformDirectory(records), peer=peer).feed(LOGIN + HEARTBEAT, NOW).login_result


def test_unknown_user_and_wrong_password_are_indistinguishable() -> None:
    unknown = _code([PlatformRecord(1, hash_password("x"), 20180920)])
    wrong = _code([PlatformRecord(20180920, hash_password("not it"), 20180920)])
    outside = _code(
        [PlatformRecord(20180920, hash_password("20180920"), 20180920, allowed_ips=("10.0.0.0/8",))]
    )
    assert unknown == wrong == outside == p.LOGIN_OTHER


def test_slave_link_goes_only_to_the_peers_own_address() -> None:
    record = PlatformRecord(20180920, hash_password("20180920"), 20180920)
    out = Jt809LinkSession(PlatformDirectory([record]), peer="127.0.0.9:5000").feed(LOGIN, NOW)
    assert out.login_result == p.LOGIN_OK and out.slave is not None
    assert out.slave.ip == "127.0.0.9"  # whatever down-link address the login named
