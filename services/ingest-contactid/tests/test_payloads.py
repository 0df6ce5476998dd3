"""Contact ID and SIA DCS payload decoding. Data blocks come from the real frames of test_dc09.py
(sources noted there: [CAP] device captures, [NODE], [PYSIA] pysiaalarm's test cases)."""

from __future__ import annotations

import pytest
from alarmhub_events import AlarmKind, Qualifier
from alarmhub_ingest_contactid.protocols import contactid, sia
from alarmhub_ingest_contactid.protocols.contactid import EVENTS, event_kind
from alarmhub_ingest_contactid.protocols.dc09 import UnsupportedError


@pytest.mark.parametrize(
    ("data", "acct", "code", "kind", "qualifier", "partition", "number", "concerns"),
    [
        (
            "#9757|1602 00 000",
            "9757",
            "E602",
            AlarmKind.TEST,
            Qualifier.NEW,
            "00",
            "000",
            "zone",
        ),  # [CAP] PROSEC
        (
            "10064|1602 00 000",
            "10064",
            "E602",
            AlarmKind.TEST,
            Qualifier.NEW,
            "00",
            "000",
            "zone",
        ),  # [CAP] OPAX
        (
            "#3456|1407 00 001",
            "3456",
            "E407",
            AlarmKind.OPEN_CLOSE,
            Qualifier.NEW,
            "00",
            "001",
            "user",
        ),  # [NODE]
        (
            "#12345A|1110 00 129",
            "12345A",
            "E110",
            AlarmKind.FIRE,
            Qualifier.NEW,
            "00",
            "129",
            "zone",
        ),  # [PYSIA]
        ("#1234|1120 01 001", "1234", "E120", AlarmKind.PANIC, Qualifier.NEW, "01", "001", "zone"),
        ("#1234|3130 02 015", "1234", "R130", AlarmKind.BURGLARY, Qualifier.RESTORE, "02", "015", "zone"),
        ("#1234|6301 00 000", "1234", "P301", AlarmKind.POWER_CUT, Qualifier.STATUS, "00", "000", "zone"),
        ("#1234|1121 01 005", "1234", "E121", AlarmKind.DURESS, Qualifier.NEW, "01", "005", "user"),
        ("#1234|1100 01 002", "1234", "E100", AlarmKind.MEDICAL, Qualifier.NEW, "01", "002", "zone"),
        ("#1234|1137 01 002", "1234", "E137", AlarmKind.TAMPER, Qualifier.NEW, "01", "002", "zone"),
        ("#1234|1406 01 002", "1234", "E406", AlarmKind.CANCEL, Qualifier.NEW, "01", "002", "user"),
        (
            "1120010A1",
            None,
            "E120",
            AlarmKind.PANIC,
            Qualifier.NEW,
            "01",
            "001",
            "zone",
        ),  # compact, DC-05 'A'=0
    ],
)
def test_contactid(
    data: str,
    acct: str | None,
    code: str,
    kind: AlarmKind,
    qualifier: Qualifier,
    partition: str,
    number: str,
    concerns: str,
) -> None:
    ev = contactid.decode(data)
    assert (ev.account, ev.code, ev.kind, ev.qualifier, ev.partition, ev.number, ev.concerns) == (
        acct,
        code,
        kind,
        qualifier,
        partition,
        number,
        concerns,
    )


@pytest.mark.parametrize(
    "data", ["", "#1234|", "#1234|2120 01 001", "#1234|1120 01", "NRP", "#1234|1120 01 001 x"]
)
def test_contactid_malformed_is_duh(data: str) -> None:
    with pytest.raises(UnsupportedError):
        contactid.decode(data)


def test_unlisted_codes_fall_back_to_their_group() -> None:
    assert event_kind("119")[0] is AlarmKind.FIRE
    assert event_kind("127")[0] is AlarmKind.PANIC
    assert event_kind("399")[0] is AlarmKind.TROUBLE
    assert event_kind("499")[0] is AlarmKind.OPEN_CLOSE
    assert event_kind("999")[0] is AlarmKind.OTHER
    # every listed code maps onto the contract's kinds
    assert {k for k, _, _ in EVENTS.values()} <= set(AlarmKind)


@pytest.mark.parametrize(
    ("data", "acct", "events"),
    [
        ("36214|NRP", "36214", [("RP", None, AlarmKind.TEST, Qualifier.NEW)]),  # [CAP] PROSEC
        ("#51449|Nri0000/LR", "51449", [("LR", None, AlarmKind.TROUBLE, Qualifier.RESTORE)]),  # [CAP]
        ("3044|NOP1", "3044", [("OP", "1", AlarmKind.OPEN_CLOSE, Qualifier.NEW)]),  # [CAP]
        ("3044|NBC1", "3044", [("BC", "1", AlarmKind.CANCEL, Qualifier.NEW)]),  # [CAP]
        (
            "#123456|Nri1CL0^VX FRONTE ^",
            "123456",
            [("CL", "0", AlarmKind.OPEN_CLOSE, Qualifier.NEW)],
        ),  # [PYSIA]
        (
            "#123456|Nri0KR1^TAST. 001 ^",
            "123456",
            [("KR", "1", AlarmKind.FIRE, Qualifier.RESTORE)],
        ),  # [PYSIA]
        ("|Nri1/CL501", None, [("CL", "501", AlarmKind.OPEN_CLOSE, Qualifier.NEW)]),  # [PYSIA] case_cl
        ("#006969|Nri04/OP001NM", "006969", [("OP", "001", AlarmKind.OPEN_CLOSE, Qualifier.NEW)]),  # [PYSIA]
        ("#1234|NRR|Atest", "1234", [("RR", None, AlarmKind.TROUBLE, Qualifier.NEW)]),  # [RUST]
        (
            "#1234|Nri1/BA01/ri2/FA03",
            "1234",
            [("BA", "01", AlarmKind.BURGLARY, Qualifier.NEW), ("FA", "03", AlarmKind.FIRE, Qualifier.NEW)],
        ),
        ("#1234|Nid5HA", "1234", [("HA", None, AlarmKind.DURESS, Qualifier.NEW)]),
        (
            "#1234|NZZ12",
            "1234",
            [("ZZ", "12", AlarmKind.OTHER, Qualifier.NEW)],
        ),  # unknown code: kept, not lost
        # listed since 2026-12-07: a verified (cross-point) burglary, a duress disarm, a test mode
        ("#1234|Nri1BM03", "1234", [("BM", "03", AlarmKind.BURGLARY, Qualifier.NEW)]),
        ("#1234|Nid7ND", "1234", [("ND", None, AlarmKind.DURESS, Qualifier.NEW)]),
        (
            "#1234|NTS/TE",
            "1234",
            [("TS", None, AlarmKind.TEST, Qualifier.NEW), ("TE", None, AlarmKind.TEST, Qualifier.NEW)],
        ),
        # not listed, read by structure: zone type + condition
        ("#1234|NSH2", "1234", [("SH", "2", AlarmKind.FIRE, Qualifier.RESTORE)]),
        ("#1234|NQH", "1234", [("QH", None, AlarmKind.MEDICAL, Qualifier.RESTORE)]),
        ("#1234|NWT4", "1234", [("WT", "4", AlarmKind.TROUBLE, Qualifier.NEW)]),
        ("#1234|NPB1", "1234", [("PB", "1", AlarmKind.OTHER, Qualifier.NEW)]),  # a panic zone bypassed
        ("#1234|NPG", "1234", [("PG", None, AlarmKind.OTHER, Qualifier.NEW)]),  # Ajax photo setting, no panic
    ],
)
def test_sia(data: str, acct: str | None, events: list[tuple[str, str | None, AlarmKind, Qualifier]]) -> None:
    account, out = sia.decode(data)
    assert account == acct
    assert [(e.code, e.number, e.kind, e.qualifier) for e in out] == events


def test_sia_codes_of_a_third_party_table_are_not_misread() -> None:
    """Every code in pysiaalarm's SIA code table (a third-party decoder's data, pysiaalarm/data/sia_codes.py)
    decodes, and none whose name says restore, trouble, test, bypass, supervisory or cancel reads as a new
    alarm of a kind that dispatches (it would open an incident); e.g. Ajax's PG, or FV read as verified."""
    from pysiaalarm.data.sia_codes import SIA_CODES  # type: ignore[import-untyped]

    alarms = {AlarmKind.BURGLARY, AlarmKind.FIRE, AlarmKind.PANIC, AlarmKind.DURESS, AlarmKind.MEDICAL}
    alarms |= {AlarmKind.TAMPER}
    assert len(SIA_CODES) > 300
    misread = []
    for code, entry in SIA_CODES.items():
        _, (ev,) = sia.decode(f"#1234|N{code}1")
        assert ev.code == code
        name = entry.type.lower()
        words = ("restor", "trouble", "test", "bypass", "supervis", "cancel")
        if ev.kind in alarms and ev.qualifier is Qualifier.NEW and any(w in name for w in words):
            misread.append((code, entry.type, ev.kind))
    assert misread == []


def test_sia_modifiers_and_text() -> None:
    # [PYSIA] case_bug
    _, (ev,) = sia.decode("#123456|Nri1CL0^VX FRONTE ^")
    assert ev.modifiers == {"ri": "1"} and ev.text == "VX FRONTE"
    _, evs = sia.decode("#1234|Nri1/BA01/ri2/FA03")
    assert [e.modifiers["ri"] for e in evs] == ["1", "2"]


@pytest.mark.parametrize("data", ["", "#1234|", "Nri1", "#1234|BA01", "Nri1/!!"])
def test_sia_malformed_is_duh(data: str) -> None:
    with pytest.raises(UnsupportedError):
        sia.decode(data)
