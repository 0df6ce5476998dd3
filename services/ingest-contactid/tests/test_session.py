"""The receiver's decisions (sans-IO): replies, window, retransmissions, encryption policy, registry fill,
supervision. Frames marked [CAP]/[PYSIA] are the real ones of test_dc09.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alarmhub_events import AlarmKind, Qualifier
from alarmhub_ingest_contactid.protocols import dc09
from alarmhub_ingest_contactid.session import Account, Dc09Session, SessionConfig
from alarmhub_ingest_contactid.supervision import Supervisor

NOW = datetime(2024, 2, 20, 21, 0, 5, tzinfo=UTC)
# [CAP] PROSEC captures
NULL = b'\nB0970029"NULL"0000L000#0809[]_21:00:01,02-20-2024\r'
CID_TEST = b'\nF68B003B"ADM-CID"0028L0#9757[#9757|1602 00 000]_20:59:45,02-20-2024\r'
# [PYSIA] encrypted NULL, key "AAAAAAAAAAAAAAAA", timestamp 18:24:52,07-05-2020
ENC_NULL = (
    b'\n76D80055"*NULL"0000R0L0#AAAB[B4BC8B40D0E6D959D6BEA78E88CC0B2155741A3C44FBB96D476A3E557CAD64D9\r'
)
ENC_NOW = datetime(2020, 7, 5, 18, 24, 55, tzinfo=UTC)


def session(accounts: list[Account] | None = None, **cfg: object) -> Dc09Session:
    return Dc09Session(SessionConfig(**cfg), {(a.line, a.account): a for a in accounts or []})  # type: ignore[arg-type]


def test_null_is_acked_without_events() -> None:
    o = session().handle(NULL, now=NOW)
    assert o.result == "ack" and o.events == [] and o.token == "NULL"
    assert dc09.decode_frame(o.reply) == b'"ACK"0000L000#0809[]'  # type: ignore[arg-type]


def test_alarm_yields_event_and_ack() -> None:
    o = session().handle(CID_TEST, now=NOW, peer="10.0.0.1:4000", transport="tcp")
    assert o.result == "ack" and len(o.events) == 1
    ev = o.events[0]
    assert (ev.kind, ev.qualifier, ev.code, ev.zone) == (AlarmKind.TEST, Qualifier.NEW, "E602", "000")
    assert ev.source.device_id == "L0#9757" and ev.source.peer == "10.0.0.1:4000" and ev.source.path == "tcp"
    assert ev.occurred_at == datetime(2024, 2, 20, 20, 59, 45, tzinfo=UTC) and ev.received_at == NOW
    assert ev.raw == CID_TEST.decode().strip()
    assert ev.attributes["registry"] == "unknown_account"


def test_crc_failure_gets_no_reply() -> None:
    o = session().handle(CID_TEST.replace(b"1602", b"1603"), now=NOW)
    assert (o.result, o.reply, o.reason) == ("dropped", None, "crc")


def test_unknown_token_is_duh() -> None:
    frame = dc09.encode_frame(b'"ABC-XYZ"0001L0#1234[]')
    o = session().handle(frame, now=NOW)
    assert o.result == "duh" and dc09.decode_frame(o.reply) == b'"DUH"0001L0#1234[]'  # type: ignore[arg-type]
    # over UDP the source address may be forged: no answer to what cannot be parsed (docs/security.md)
    o = session().handle(frame, now=NOW, transport="udp")
    assert (o.result, o.reply, o.reason) == ("duh", None, "token")
    o = session().handle(dc09.encode_frame(b"no header at all"), now=NOW, transport="udp")
    assert o.result == "duh" and o.reply is None


def test_timestamp_outside_window_is_naked_with_our_time() -> None:
    late = NOW + timedelta(seconds=21)
    o = session().handle(CID_TEST, now=late)
    assert o.result == "nak" and o.reason == "timestamp_window" and o.events == []
    reply = dc09.decode_reply(o.reply)  # type: ignore[arg-type]
    assert reply.token == "NAK" and reply.timestamp == late.replace(microsecond=0)
    # clear timestamps may be exempted (transmitters without a clock source)
    assert session(check_clear_timestamps=False).handle(CID_TEST, now=late).result == "ack"
    # 40 s ahead of our clock is still fine, 41 s is not
    ahead = datetime(2024, 2, 20, 20, 59, 5, tzinfo=UTC)
    assert session().handle(CID_TEST, now=ahead).result == "ack"
    assert session().handle(CID_TEST, now=ahead - timedelta(seconds=1)).result == "nak"


def test_retransmission_is_acked_but_published_once() -> None:
    s = session()
    t0 = NOW - timedelta(seconds=10)
    first = s.handle(CID_TEST, now=t0, transport="tcp")
    assert first.events
    s.published(first, t0)
    again = s.handle(CID_TEST, now=t0 + timedelta(seconds=5), transport="tcp")
    assert again.result == "ack" and again.events == [] and again.duplicate
    assert again.reply == first.reply
    # the same frame over the other transport is the same message (a TCP capture replayed over UDP);
    # dual-path transmitters name their paths by receiver number, which changes the frame
    other = s.handle(CID_TEST, now=t0, transport="udp")
    assert other.result == "ack" and other.events == [] and other.duplicate


def test_unpublished_message_is_not_remembered() -> None:
    s = session()
    assert s.handle(CID_TEST, now=NOW).events
    assert s.handle(CID_TEST, now=NOW).events  # broker failed the first time: publish again


def test_real_encrypted_null_with_registry_key() -> None:
    acct = Account(line="0", account="AAAB", key=b"AAAAAAAAAAAAAAAA")
    o = session([acct]).handle(ENC_NULL, now=ENC_NOW)
    assert o.result == "ack" and o.token == "*NULL"
    reply = dc09.decode_reply(o.reply, b"AAAAAAAAAAAAAAAA")  # type: ignore[arg-type]
    assert reply.encrypted and reply.token == "ACK" and reply.account == "AAAB" and reply.timestamp == ENC_NOW


def test_encrypted_replay_outside_window_is_naked_even_if_clear_checks_are_off() -> None:
    acct = Account(line="0", account="AAAB", key=b"AAAAAAAAAAAAAAAA")
    o = session([acct], check_clear_timestamps=False).handle(ENC_NULL, now=ENC_NOW + timedelta(hours=1))
    assert o.result == "nak" and o.reason == "timestamp_window"


def test_encrypted_without_key_is_duh_and_wrong_key_is_nak() -> None:
    assert session().handle(ENC_NULL, now=ENC_NOW).result == "duh"
    wrong = Account(line="0", account="AAAB", key=b"BBBBBBBBBBBBBBBB")
    o = session([wrong]).handle(ENC_NULL, now=ENC_NOW)
    assert o.result == "nak" and o.reason == "wrong_key"


def test_clear_message_for_encryption_required_account_is_rejected() -> None:
    acct = Account(line="0", account="9757", key=bytes(16), encryption_required=True)
    o = session([acct]).handle(CID_TEST, now=NOW)
    assert o.result == "nak" and o.reason == "clear_rejected" and o.events == []


def test_unknown_account_policy_reject() -> None:
    o = session(unknown_accounts="reject").handle(CID_TEST, now=NOW)
    assert o.result == "duh" and o.reason == "unknown_account"


def test_registry_fills_location_zone_name_and_company() -> None:
    acct = Account(
        line="0",
        account="9757",
        company="Acme Security",
        site_name="Bank branch 12",
        lat=22.5431,
        lon=114.0579,
        zones={"0": "Panel"},
    )
    ev = session([acct]).handle(CID_TEST, now=NOW).events[0]
    assert ev.location is not None and ev.location.source == "registry"
    assert (ev.location.lat, ev.location.lon) == (22.5431, 114.0579)
    assert ev.attributes["company"] == "Acme Security" and ev.attributes["zone_name"] == "Panel"


def test_receiver_number_names_the_path() -> None:
    # [CAP] Hikvision frame with receiver 15
    frame = b'\n99820040"ADM-CID"1937R15L1#21401[#21401|1602 00 000]_20:59:59,02-20-2024\r'
    s = session(paths={"R15": "cellular"})
    ev = s.handle(frame, now=datetime(2024, 2, 20, 21, 0, tzinfo=UTC), transport="tcp").events[0]
    assert ev.source.path == "cellular" and ev.source.receiver == "R15" and ev.source.line == "L1"


def test_several_sia_events_in_one_message() -> None:
    frame = dc09.encode("SIA-DCS", 3, "1234", "#1234|Nri1/BA01/ri2/FA03", line="1")
    evs = session().handle(frame, now=NOW).events
    assert [(e.code, e.zone, e.kind, e.attributes["partition"]) for e in evs] == [
        ("BA", "01", AlarmKind.BURGLARY, "1"),
        ("FA", "03", AlarmKind.FIRE, "2"),
    ]
    assert len({e.event_id for e in evs}) == 2


def test_supervision_miss_and_restore() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    acct = Account(line="1", account="1234", supervision_s=60, lat=1.0, lon=2.0)
    sup = Supervisor(start)
    sup.set_accounts({("1", "1234"): acct})
    assert sup.check(start + timedelta(seconds=59)) == []
    (miss,) = sup.check(start + timedelta(seconds=61))
    assert miss.state == "missed" and miss.device_id == "L1#1234"
    # not committed (broker down): proposed again
    assert sup.check(start + timedelta(seconds=62))[0].state == "missed"
    sup.commit([miss])
    assert sup.check(start + timedelta(seconds=63)) == []
    status, alarm = miss.events("0")
    assert status.status.value == "supervision_missed" and alarm.kind is AlarmKind.SUPERVISION
    assert alarm.code == "E356" and alarm.location is not None and alarm.location.source == "registry"
    sup.seen("L1#1234", start + timedelta(seconds=70))
    (rest,) = sup.check(start + timedelta(seconds=71))
    assert rest.state == "restored"
    sup.commit([rest])
    status, alarm = rest.events("0")
    assert status.status.value == "supervision_restored" and alarm.qualifier is Qualifier.RESTORE
    assert sup.check(start + timedelta(seconds=72)) == []


def test_a_poll_after_a_miss_restores_even_when_the_check_comes_late() -> None:
    # under load the check loop may run later than the account's interval after its poll; the poll
    # still restores it (the integration test test_supervision_miss_then_restore failed that way at
    # load 10 on two cores: the account polled once, the next check already found it late again)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    acct = Account(line="1", account="1234", supervision_s=1)
    sup = Supervisor(start)
    sup.set_accounts({("1", "1234"): acct})
    (miss,) = sup.check(start + timedelta(seconds=2))
    sup.commit([miss])
    sup.seen("L1#1234", start + timedelta(seconds=3))
    (rest,) = sup.check(start + timedelta(seconds=9))  # 6 s after the poll: late again, but heard from
    assert rest.state == "restored"
    sup.commit([rest])
    (again,) = sup.check(start + timedelta(seconds=10))  # silent since: missed again
    assert again.state == "missed"
    sup.commit([again])
    assert sup.check(start + timedelta(seconds=11)) == []  # a message before the miss does not restore


def test_zone_registry_gives_the_detectors_sensing_principle() -> None:
    # the registry's zone entry may name the detector's principle (alarmhub_events.Sensor): triage's
    # "different sensing principles" confirmation reads attributes.sensor
    acct = Account(line="0", account="9757", zones={"0": {"name": "Panel", "sensor": "PIR"}})
    ev = session([acct]).handle(CID_TEST, now=NOW).events[0]
    assert ev.attributes["zone_name"] == "Panel" and ev.attributes["sensor"] == "pir"
    unknown = Account(line="0", account="9757", zones={"0": {"name": "Panel", "sensor": "ouija"}})
    ev = session([unknown]).handle(CID_TEST, now=NOW).events[0]
    assert "sensor" not in ev.attributes  # not a word of the vocabulary: not written


def test_zone_list_form_keeps_the_sensor() -> None:
    from alarmhub_ingest_contactid.registry import account_from_row

    acct = account_from_row(
        {"line": "0", "account": "9757", "zones": [{"zone": "0", "name": "Panel", "sensor": "glass"}]}
    )
    ev = session([acct]).handle(CID_TEST, now=NOW).events[0]
    assert ev.attributes["sensor"] == "glass"


def test_only_accounts_whose_state_could_change_read_the_shared_state() -> None:
    """A check reads Redis for the accounts past their deadline here or missed, not for every supervised
    account: one heard within its interval cannot be missed, whatever the other receivers heard."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    accts = {("1", a): Account(line="1", account=a, supervision_s=60) for a in ("1001", "1002", "1003")}
    sup = Supervisor(start)
    sup.set_accounts(accts)
    sup.seen("L1#1001", start + timedelta(seconds=30))
    assert sup.candidates(start + timedelta(seconds=59)) == []
    # 1002 and 1003 are past their deadline here; 1001 was heard 31 s ago
    assert sorted(sup.candidates(start + timedelta(seconds=61))) == ["L1#1002", "L1#1003"]
    # the shared state: another receiver heard 1002, and 1003 is already published missed by another
    sup.merge(
        {"L1#1002": start + timedelta(seconds=50)},
        {"L1#1003": start + timedelta(seconds=60)},
        ["L1#1002", "L1#1003"],
    )
    assert sup.check(start + timedelta(seconds=61)) == []  # nothing to publish: both known
    assert sup.missed == frozenset({"L1#1003"})
    assert sorted(sup.candidates(start + timedelta(seconds=62))) == ["L1#1003"]  # missed: is it back?
    # another receiver restored 1003 (its missed key gone, a poll in Redis): a partial read says so
    sup.merge({"L1#1003": start + timedelta(seconds=70)}, {}, ["L1#1003"])
    assert sup.missed == frozenset() and sup.check(start + timedelta(seconds=71)) == []
    # an account outside the ids read keeps this receiver's view
    (miss,) = sup.check(start + timedelta(seconds=95))  # 1001: heard at 30 s, 65 s ago
    assert miss.device_id == "L1#1001"
    sup.commit([miss])
    sup.merge({}, {}, ["L1#1002"])
    assert sup.missed == frozenset({"L1#1001"})
