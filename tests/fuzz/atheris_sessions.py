"""Coverage-guided fuzzing (atheris / libFuzzer) of the receivers' sans-IO sessions.

Each input picks a session by its first byte — DC-09 (framer + session), JT/T 808, GT06, H02 (ingest-gps
sessions, which include their framers) or the JT/T 809 main link (logged in first) — and a chunk size by
its second, and the rest is fed to the session in chunks of that size. A session must answer any byte stream with replies, events or a
close, never an exception: an exception here is what would have reached the connection handler, so
libFuzzer reports it as a crash and writes the input that caused it.

    .venv/bin/python tests/fuzz/atheris_sessions.py --write-seeds corpus/   # real frames to start from
    .venv/bin/python tests/fuzz/atheris_sessions.py -runs=20000 corpus/     # a bounded run
    .venv/bin/python tests/fuzz/atheris_sessions.py -max_total_time=600 corpus/   # a longer campaign

``tests/fuzz/test_atheris.py`` runs it bounded in the suite; the hypothesis properties of each ingest
service (``tests/test_fuzz.py``, ``test_gps_session.py``, ``tests/fuzz/test_gps_corpus_fuzz.py``) stay
the main fuzzing. ``--write-seeds`` also writes every GPS frame of the conformance corpus
(``tests/conformance/vectors*``) as a seed for its session.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

NOW = datetime(2024, 2, 20, 21, 0, 5, tzinfo=UTC)
KEY = b"AAAAAAAAAAAAAAAA"
T: dict[str, Any] = {}  # the instrumented session classes, filled by main()

# SmallChi/JT809 JT809_0x1001PackageTest.cs: the login of user 20180920 (2011 header)
LOGIN_809 = bytes.fromhex(
    "5B000000480000008510010133EFB8010000000000270F0133EFB832303138303932303132372E302E302E31"
    "000000000000000000000000000000000000000000000003296A915D"
)

#: Seeds: real frames from the protocol tests (sources noted there), one per protocol, behind the target
#: byte and a chunk-size byte (0x3f → 64-byte chunks).
SEEDS = {
    # services/ingest-contactid/tests/test_dc09.py REAL_CLEAR [CAP] PROSEC Contact ID periodic test
    "dc09_cid": b"\x00\x3f" + b'\nF68B003B"ADM-CID"0028L0#9757[#9757|1602 00 000]_20:59:45,02-20-2024\r',
    # services/ingest-gps/tests/test_jt808.py SOS_LOCATION
    "jt808_sos": b"\x01\x3f"
    + bytes.fromhex(
        "7e0200002e094027587492000a000000010000000a03083db7001329f3000000140000130412164952010400000012360a00"
        "02341502cb0c20085c107e"
    ),
    # services/ingest-gps/tests/test_gt06.py LOGIN + ALARM_VIBRATION
    "gt06_login_alarm": b"\x02\x3f"
    + bytes.fromhex(
        "78780D01086471700328358100093F040D0A787825160F0C1D0A2B21C8027AC8040C46581000146F0901CC00287D001F"
        "714804040301001C84CF0D0A"
    ),
    # services/ingest-gps/tests/test_h02.py V1
    "h02_v1": b"\x03\x3f"
    + b"*HQ,4210051415,V1,164549,A,0956.3869,N,08406.7068,W,000.00,000,221215,FFFFFBFF,712,01,0,0,6#",
    # SmallChi/JT809 JT809_0x1001PackageTest.cs: a login (the link session logs in first anyway)
    "jt809_login": b"\x04\x3f" + LOGIN_809,
}
#: target byte of each corpus protocol
CORPUS_TARGETS = {"jt808": 1, "gt06": 2, "h02": 3, "jt809": 4}
CONFORMANCE = Path(__file__).resolve().parents[1] / "conformance"


def corpus_seeds() -> dict[str, bytes]:
    """Every GPS frame of the conformance corpus, behind its session's target byte and 64-byte chunks."""
    out: dict[str, bytes] = {}
    for protocol, target in CORPUS_TARGETS.items():
        for path in sorted(CONFORMANCE.glob(f"vectors*/{protocol}/*.json")):
            for v in json.loads(path.read_text(encoding="utf-8"))["vectors"]:
                frame = bytes.fromhex(v["hex"]) if "hex" in v else v["text"].encode()
                out[f"{protocol}_{path.stem}_{v['id']}"[:120]] = bytes([target, 0x3F]) + frame
    return out


def one_input(data: bytes) -> None:
    if len(data) < 3:
        return
    target, size, payload = data[0] % 5, data[1] % 64 + 1, data[2:]
    chunks = [payload[i : i + size] for i in range(0, len(payload), size)]
    if target == 0:
        framer = T["dc09"].Framer(max_frame=512)
        session = T["Dc09Session"](T["Dc09Config"](check_clear_timestamps=False), T["accounts"])
        for chunk in chunks:
            for frame in framer.feed(chunk):
                outcome = session.handle(frame, now=NOW, peer="127.0.0.1:1")
                assert outcome.result in ("ack", "nak", "duh", "dropped"), outcome.result
        return
    if target == 4:
        link = T["Jt809LinkSession"](T["platforms"], peer="127.0.0.1:1")
        link.feed(LOGIN_809, NOW)
        for chunk in chunks:
            link.feed(chunk, NOW)
            if link.closed:
                break
        return
    gps = T["gps"][target - 1]({}, T["gps_config"], peer="127.0.0.1:1")
    for chunk in chunks:
        gps.feed(chunk, NOW)
        if gps.closed:
            break


def main() -> None:
    if sys.argv[1:2] == ["--write-seeds"]:  # the seed corpus, without importing atheris
        out = Path(sys.argv[2])
        out.mkdir(parents=True, exist_ok=True)
        for name, seed in {**SEEDS, **corpus_seeds()}.items():
            (out / name).write_bytes(seed)
        return
    import atheris

    with atheris.instrument_imports(include=["alarmhub_ingest_contactid", "alarmhub_ingest_gps"]):
        from alarmhub_ingest_contactid.protocols import dc09
        from alarmhub_ingest_contactid.session import Account, Dc09Session
        from alarmhub_ingest_contactid.session import SessionConfig as Dc09Config
        from alarmhub_ingest_gps.jt809 import Jt809LinkSession, PlatformDirectory, PlatformRecord
        from alarmhub_ingest_gps.sessions import Gt06Session, H02Session, Jt808Session, SessionConfig
    T.update(
        dc09=dc09,
        Dc09Session=Dc09Session,
        Dc09Config=Dc09Config,
        gps=(Jt808Session, Gt06Session, H02Session),
        gps_config=SessionConfig(),
        Jt809LinkSession=Jt809LinkSession,
        platforms=PlatformDirectory(
            [PlatformRecord(user_id=20180920, password="20180920", gnss_center_id=20180920, name="fuzz")]
        ),
        accounts={("0", "AAAB"): Account("0", "AAAB", key=KEY), ("0", "9757"): Account("0", "9757", key=KEY)},
    )
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
