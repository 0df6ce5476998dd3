"""Write the DC-09 vector files of the conformance corpus (run by hand when a source is added).

    .venv/bin/python tests/conformance/tools/dc09_vectors.py

- ``vectors/dc09/captures.json``: the real frames already carried by the receiver's unit tests (device
  captures, a Node.js receiver's samples, the Rust dc09 crate's tests, pysiaalarm's cases); their header
  fields are what each frame carries, and each source is noted.
- ``vectors/dc09/dc09-spt.json``: frames built by the third-party transmitter dc09-spt (PyPI
  ``my-dc09-spt``) — its block builder, its AES with its own random pads (control characters and ``#``
  included) — from the parameters listed; the expected values are those parameters, not our output.
- ``vectors/dc09/pysiaalarm-aes192.json``: AES-192 blocks from pysiaalarm's ``encrypt_content``
  (dc09-spt refuses 24-byte keys).
- ``vectors/dc09_payload/*.json``: SIA-DCS and ADM-CID data blocks with the event codes that the SIA
  DC-03 / DC-05 code tables give.

The generated files are data: re-running with the same seed gives the same dc09-spt pads, but dc09-spt
stamps each block with the clock, so the frames differ from run to run while staying valid vectors.
"""

from __future__ import annotations

import json
import logging
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]
OUT = HERE / "vectors"

# --- real frames (header facts read off each frame; payload events per the DC-03/DC-05 tables) -----------
CAPTURES: list[tuple[str, str, dict[str, Any]]] = [
    # (source tag, frame, expect)
    (
        "CAP PROSEC NULL",
        '\nB0970029"NULL"0000L000#0809[]_21:00:01,02-20-2024\r',
        {
            "token": "NULL",
            "seq": "0000",
            "line": "000",
            "account": "0809",
            "data": "",
            "timestamp": "2024-02-20T21:00:01Z",
        },
    ),
    (
        "CAP PROSEC Contact ID periodic test",
        '\nF68B003B"ADM-CID"0028L0#9757[#9757|1602 00 000]_20:59:45,02-20-2024\r',
        {
            "token": "ADM-CID",
            "seq": "0028",
            "line": "0",
            "account": "9757",
            "timestamp": "2024-02-20T20:59:45Z",
            "events": [{"event": "602", "kind": "test", "zone": "000"}],
        },
    ),
    (
        "CAP PROSEC SIA-DCS automatic test, account block without '#'",
        '\nB4330036"SIA-DCS"0442L000#36214[36214|NRP]_00:00:00,02-21-2024\r',
        {"token": "SIA-DCS", "seq": "0442", "account": "36214", "events": [{"code": "RP", "kind": "test"}]},
    ),
    (
        "CAP PROSEC SIA-DCS phone line restoral with area modifier",
        '\n3F60003C"SIA-DCS"0001L0#51449[#51449|Nri0000/LR]_21:26:19,12-20-2023\r',
        {"token": "SIA-DCS", "account": "51449", "events": [{"code": "LR", "qualifier": "restore"}]},
    ),
    (
        "CAP PROSEC opening",
        '\n7B620035"SIA-DCS"0005L000#3044[3044|NOP1]_00:03:31,12-21-2023\r',
        {"token": "SIA-DCS", "seq": "0005", "account": "3044", "events": [{"code": "OP", "number": "1"}]},
    ),
    (
        "CAP PROSEC burglary cancel",
        '\n85340035"SIA-DCS"0004L000#3044[3044|NBC1]_00:03:31,12-21-2023\r',
        {"token": "SIA-DCS", "seq": "0004", "account": "3044", "events": [{"code": "BC", "kind": "cancel"}]},
    ),
    (
        "CAP Hikvision with receiver number",
        '\n99820040"ADM-CID"1937R15L1#21401[#21401|1602 00 000]_20:59:59,02-20-2024\r',
        {
            "token": "ADM-CID",
            "seq": "1937",
            "receiver": "15",
            "line": "1",
            "account": "21401",
            "events": [{"event": "602"}],
        },
    ),
    (
        "RUST dc09 crate: empty data",
        '\n96ED0016"SIA-DCS"0001L0#1234[]\r',
        {"token": "SIA-DCS", "seq": "0001", "line": "0", "account": "1234", "data": "", "timestamp": None},
    ),
]

# pysiaalarm's test lines (tests/test_sia_package_cases.py): what pysiaalarm asserts (account, code)
PYSIA_CASES: list[tuple[str, str, dict[str, Any], dict[str, Any], str | None]] = [
    (
        "case_null (key AAAAAAAAAAAAAAAA, tests/test_utils.py)",
        '76D80055"*NULL"0000R0L0#AAAB[B4BC8B40D0E6D959D6BEA78E88CC0B2155741A3C44FBB96D476A3E557CAD64D9',
        {"key": b"AAAAAAAAAAAAAAAA".hex()},
        {"token": "NULL", "encrypted": True, "account": "AAAB"},
        None,
    ),
    (
        "case_bug (issue #11), body",
        '"SIA-DCS"7960L0#123456[#123456|Nri1CL0^VX FRONTE ^]_22:40:48,04-11-2021',
        {},
        {"account": "123456", "events": [{"code": "CL"}]},
        None,
    ),
    (
        "case_bug2 (SIA #42), body",
        '"SIA-DCS"8070L0#123456[#123456|Nri0KR1^TAST. 001 ^]_13:49:12,04-13-2021',
        {},
        {"account": "123456", "events": [{"code": "KR"}]},
        None,
    ),
    (
        "case_xdata_M, body",
        '"SIA-DCS"6002L0#AAA[|Nri1/CL501][M0026B9E4268B]_14:12:04,09-25-2019',
        {},
        {"account": "AAA", "extended": ["M0026B9E4268B"], "events": [{"code": "CL"}]},
        None,
    ),
    (
        "case_xdata_K, body",
        '"SIA-DCS"6002L0#1111[|Nri1/RP000][KAAAAAAAAAAAAAAAA]_14:12:04,09-25-2019',
        {},
        {"account": "1111", "events": [{"code": "RP"}]},
        None,
    ),
    (
        "case_cl, body",
        '"SIA-DCS"6002L0#AAA[|Nri1/CL501]_14:12:04,09-25-2019',
        {},
        {"account": "AAA", "events": [{"code": "CL"}]},
        None,
    ),
    (
        "case_op, body",
        '"SIA-DCS"4738R0001L0001[#006969|Nri04/OP001NM]',
        {},
        {"events": [{"account": "006969", "code": "OP"}]},
        None,
    ),
    (
        "case_wa, body",
        '"SIA-DCS"5268L0#AAA[Nri1/WA000]_08:40:47,07-08-2020',
        {},
        {"account": "AAA", "events": [{"code": "WA"}]},
        None,
    ),
    (
        "case_adm_cid, body (pysiaalarm maps CID 110 to FA, Fire Alarm)",
        '"ADM-CID"9876R579BDFL789ABC#12345A[#12345A|1110 00 129]_14:12:04,09-25-2019',
        {},
        {"account": "12345A", "events": [{"event": "110", "kind": "fire", "zone": "129"}]},
        "pysiaalarm's case carries a 3-digit year (…-201); the year is completed here to test the payload",
    ),
]


def captures() -> dict[str, Any]:
    vectors = [
        {"id": f"cap-{i:02d}", "text": frame, "expect": expect, "note": tag}
        for i, (tag, frame, expect) in enumerate(CAPTURES, 1)
    ]
    for i, (tag, line, ctx, expect, note) in enumerate(PYSIA_CASES, 1):
        v: dict[str, Any] = {"id": f"pysia-{i:02d}", "text": line, "expect": expect, "note": tag}
        if ctx:
            v["context"] = ctx
        if note:
            v["note"] += f"; {note}"
        vectors.append(v)
    return {
        "protocol": "dc09",
        "source": "device captures (PROSEC, Hikvision) listed in an open-source Go DC-09 parser; fioletoven/dc09 "
        "common/src/dc09/message.tests.rs; eavanvalkenburg/pysiaalarm tests/test_sia_package_cases.py",
        "license": "frames used as test data; pysiaalarm MIT, fioletoven/dc09 as published",
        "notes": "header fields are what each frame carries; events per SIA DC-03 / DC-05 code tables",
        "vectors": vectors,
    }


# --- dc09-spt: a third-party transmitter library ------------------------------------------------------------
CID_CASES = [
    (130, "burglary"),
    (120, "panic"),
    (110, "fire"),
    (100, "medical"),
    (121, "duress"),
    (137, "tamper"),
    (301, "power_cut"),
    (602, "test"),
    (401, "open_close"),
    (570, "bypass"),
]
SIA_CASES = [
    ("BA", "burglary"),
    ("FA", "fire"),
    ("PA", "panic"),
    ("HA", "duress"),
    ("MA", "medical"),
    ("TA", "tamper"),
    ("AT", "power_cut"),
    ("RP", "test"),
    ("OP", "open_close"),
    ("WA", "water"),
]


def dc09_spt_vectors(seed: int = 20261206) -> dict[str, Any]:
    from my_dc09_spt.msg.dc03_msg import dc03_msg
    from my_dc09_spt.msg.dc05_msg import dc05_msg
    from my_dc09_spt.msg.dc09_msg import dc09_msg

    random.seed(seed)  # dc09-spt draws its pad characters from the random module
    keys = {"clear": None, "aes128": bytes(range(16)), "aes256": bytes(range(100, 132))}
    vectors: list[dict[str, Any]] = []
    n = 0
    for name, key in keys.items():
        for i, (code, _kind) in enumerate(CID_CASES):
            n += 1
            acct = f"{4100 + i}"
            zone = f"{(n * 7) % 1000:03d}"
            builder = dc09_msg(acct, key, None, 3 + i)
            payload = dc05_msg.dc05event(acct, {"account": acct, "code": code, "zone": zone, "q": 1})
            frame = builder.dc09block(n, "ADM-CID", payload)
            v: dict[str, Any] = {
                "id": f"spt-{name}-cid-{code}",
                "text": frame,
                "expect": {
                    "token": "ADM-CID",
                    "encrypted": key is not None,
                    "seq": f"{n:04d}",
                    "line": f"{3 + i:X}",
                    "account": acct,
                    "events": [{"event": f"{code:03d}", "qualifier": "new", "zone": zone}],
                },
            }
            if key:
                v["context"] = {"key": key.hex()}
            vectors.append(v)
        for i, (code, _kind) in enumerate(SIA_CASES):
            n += 1
            acct = f"{5100 + i}"
            zone = f"{(n * 3) % 100:02d}"
            builder = dc09_msg(acct, key, 1, 7)
            payload = dc03_msg.dc03event(acct, {"account": acct, "code": code, "zone": zone, "area": "1"})
            frame = builder.dc09block(n, "SIA-DCS", payload)
            v = {
                "id": f"spt-{name}-sia-{code}",
                "text": frame,
                "expect": {
                    "token": "SIA-DCS",
                    "encrypted": key is not None,
                    "seq": f"{n:04d}",
                    "receiver": "1",
                    "line": "7",
                    "account": acct,
                    "events": [{"code": code}],
                },
            }
            if key:
                v["context"] = {"key": key.hex()}
            vectors.append(v)
        n += 1
        v = {
            "id": f"spt-{name}-null",
            "text": dc09_msg("6100", key, None, 1).dc09block(n),
            "expect": {"token": "NULL", "encrypted": key is not None, "account": "6100", "data": ""},
        }
        if key:
            v["context"] = {"key": key.hex()}
        vectors.append(v)
    return {
        "protocol": "dc09",
        "source": "dc09-spt (PyPI my-dc09-spt 0.2.2, van Ovost Automatisering): frames from its dc09_msg "
        f"block builder and dc03/dc05 payload builders, random pads seeded with {seed}",
        "license": "Apache-2.0 library used to produce test data",
        "notes": "expected values are the parameters given to dc09-spt",
        "vectors": vectors,
    }


def pysia_aes192_vectors() -> dict[str, Any]:
    from pysiaalarm import SIAAccount
    from pysiaalarm.event import SIAEvent

    key = "0123456789ABCDEF01234567"
    stamp = datetime(2026, 12, 6, 23, 0, 0, tzinfo=UTC).strftime("_%H:%M:%S,%m-%d-%Y")
    vectors: list[dict[str, Any]] = []
    for i, (code, _kind) in enumerate(CID_CASES, 1):
        acct = "BE0C"
        event = SIAEvent(sia_account=SIAAccount(acct, key))
        bar = "|" if i % 2 else ""
        plain = f"{bar}#{acct}|1{code:03d} 01 {i:03d}]{stamp}"
        body = f'"*ADM-CID"{i:04d}L0#{acct}[{event.encrypt_content(plain)}'
        frame = f"\n{event._crc_calc(body)}{len(body):04X}{body}\r"
        vectors.append(
            {
                "id": f"pysia-aes192-{code}",
                "text": frame,
                "context": {"key": key.encode().hex()},
                "expect": {
                    "token": "ADM-CID",
                    "encrypted": True,
                    "seq": f"{i:04d}",
                    "account": acct,
                    "timestamp": "2026-12-06T23:00:00Z",
                    "events": [{"event": f"{code:03d}", "zone": f"{i:03d}"}],
                },
                "note": "zero fill " + ("then '|'" if bar else "with no '|' (pysiaalarm's own habit)"),
            }
        )
    return {
        "protocol": "dc09",
        "source": "pysiaalarm 3.2.2 (PyPI): SIAEvent.encrypt_content (pycryptodome AES-CBC, zero fill) and "
        "SIAEvent._crc_calc around ADM-CID data",
        "license": "MIT library used to produce test data",
        "notes": "AES-192 key '0123456789ABCDEF01234567' as ASCII bytes; expected values are the inputs",
        "vectors": vectors,
    }


# --- payloads: data blocks with the codes of the DC-03 / DC-05 tables ----------------------------------
def payload_vectors() -> dict[str, Any]:
    cid = [
        (
            "#9757|1602 00 000",
            {"account": "9757", "event": "602", "kind": "test", "zone": "000"},
            "CAP PROSEC",
        ),
        ("10064|1602 00 000", {"account": "10064", "event": "602", "kind": "test"}, "CAP OPAX"),
        ("#3456|1407 00 001", {"account": "3456", "event": "407", "kind": "open_close"}, "NODE"),
        (
            "#12345A|1110 00 129",
            {"account": "12345A", "event": "110", "kind": "fire", "zone": "129"},
            "PYSIA",
        ),
        ("#1234|1120 01 001", {"event": "120", "kind": "panic", "partition": "01"}, "DC-05 table"),
        ("#1234|3130 02 015", {"event": "130", "kind": "burglary", "qualifier": "restore"}, "DC-05 table"),
        ("#1234|6301 00 000", {"event": "301", "kind": "power_cut", "qualifier": "status"}, "DC-05 table"),
        ("#1234|1121 01 005", {"event": "121", "kind": "duress"}, "DC-05 table"),
        ("#1234|1100 01 002", {"event": "100", "kind": "medical"}, "DC-05 table"),
        ("#1234|1137 01 002", {"event": "137", "kind": "tamper"}, "DC-05 table"),
        ("1120010A1", {"event": "120", "kind": "panic", "zone": "001"}, "DC-05 compact with 'A' for 0"),
    ]
    sia = [
        ("36214|NRP", [{"code": "RP", "kind": "test"}], "CAP PROSEC"),
        ("#51449|Nri0000/LR", [{"code": "LR", "qualifier": "restore"}], "CAP PROSEC"),
        ("3044|NOP1", [{"code": "OP", "number": "1", "kind": "open_close"}], "CAP PROSEC"),
        ("3044|NBC1", [{"code": "BC", "kind": "cancel"}], "CAP PROSEC"),
        ("#123456|Nri1CL0^VX FRONTE ^", [{"code": "CL", "text": "VX FRONTE"}], "PYSIA case_bug"),
        ("#123456|Nri0KR1^TAST. 001 ^", [{"code": "KR", "qualifier": "restore"}], "PYSIA case_bug2"),
        ("|Nri1/CL501", [{"code": "CL", "number": "501"}], "PYSIA case_cl"),
        ("#006969|Nri04/OP001NM", [{"code": "OP", "number": "001"}], "PYSIA case_op"),
        (
            "#1234|Nri1/BA01/ri2/FA03",
            [{"code": "BA", "number": "01"}, {"code": "FA", "number": "03"}],
            "DC-03: two events in one block",
        ),
        ("#1234|Nid5HA", [{"code": "HA", "kind": "duress"}], "DC-03 table"),
    ]
    vectors: list[dict[str, Any]] = []
    for i, (data, expect, tag) in enumerate(cid, 1):
        vectors.append(
            {
                "id": f"cid-{i:02d}",
                "text": data,
                "context": {"token": "ADM-CID"},
                "expect": {"events": [expect]},
                "note": tag,
            }
        )
    for i, (data, events, tag) in enumerate(sia, 1):
        vectors.append(
            {
                "id": f"sia-{i:02d}",
                "text": data,
                "context": {"token": "SIA-DCS"},
                "expect": {"events": events},
                "note": tag,
            }
        )
    return {
        "protocol": "dc09_payload",
        "source": "data blocks of the dc09 captures and pysiaalarm cases; codes per SIA DC-03 and DC-05",
        "license": "frames used as test data",
        "notes": "kinds are the contract's AlarmKind values the DC-03 / DC-05 meanings map onto",
        "vectors": vectors,
    }


def main() -> None:
    logging.disable(logging.WARNING)  # dc09-spt warns about zones it leaves out of user-related codes
    files = {
        OUT / "dc09" / "captures.json": captures(),
        OUT / "dc09" / "dc09-spt.json": dc09_spt_vectors(),
        OUT / "dc09" / "pysiaalarm-aes192.json": pysia_aes192_vectors(),
        OUT / "dc09_payload" / "payloads.json": payload_vectors(),
    }
    for path, doc in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"{path.relative_to(HERE)}: {len(doc['vectors'])} vectors")


if __name__ == "__main__":
    main()
