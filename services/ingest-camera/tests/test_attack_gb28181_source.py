"""Attack: a GB/T 28181 MESSAGE naming a registered device from another address (docs/security.md).

Before: once a device had registered (digest), any sender whose From header named its id had its
alarms accepted and took over the registration's address. Now only the address whose REGISTER passed the
digest speaks for the device until it registers again.
"""

from __future__ import annotations

from datetime import timedelta

from alarmhub_ingest_camera.protocols import gb28181
from alarmhub_ingest_camera.protocols.gb28181 import SipEventType

from .test_gb28181 import ALARM_GBK, NOW, PEER, REGISTER_1, REGISTER_2, _message, _registrar


def test_message_from_another_address_is_forbidden_and_changes_nothing() -> None:
    reg = _registrar()
    reg.handle(gb28181.decode(REGISTER_1), PEER, NOW)
    assert reg.handle(gb28181.decode(REGISTER_2), PEER, NOW).events[0].type == SipEventType.REGISTERED
    forged = reg.handle(gb28181.decode(_message(ALARM_GBK, cseq=40)), ("198.51.100.7", 5060), NOW)
    assert gb28181.decode(forged.reply or b"").status == 403
    assert [(e.type, e.reason) for e in forged.events] == [(SipEventType.REJECTED, "foreign source")]
    assert not forged.needs_publish
    # the registered device still speaks from its own address
    real = reg.handle(gb28181.decode(_message(ALARM_GBK, cseq=41)), PEER, NOW + timedelta(seconds=1))
    assert [e.type for e in real.events] == [SipEventType.ALARM]
