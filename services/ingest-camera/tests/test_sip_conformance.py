"""SIP conformance with third-party tools against the real service.

- ``sipp`` (Debian package ``sip-tester``) plays a GB/T 28181 device from the XML scenarios in
  ``tests/sipp/``: REGISTER with digest, keepalive, alarm MESSAGE over UDP and TCP; an alarm from an
  unregistered device and a wrong password must be refused.
- ``sipvicious`` (PyPI) probes as an attacker would: svmap fingerprints, svwar enumerates
  extensions, svcrack guesses passwords. None of them may get a registration, and nothing they send
  may reach ``alarms.raw``.

Both tools are skipped with a reason when not installed (the project's install step provides them).
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from alarmhub_ingest_camera.app import CameraApp

from .test_camera_service import SIP_PASSWORD, camera  # noqa: F401 - the fixture

SCENARIOS = Path(__file__).parent / "sipp"
SIPP = shutil.which("sipp")
BIN = Path(sys.executable).parent
SVWAR = shutil.which("sipvicious_svwar") or (
    str(BIN / "sipvicious_svwar") if (BIN / "sipvicious_svwar").exists() else None
)
SERVER, REALM = "34020000002000000001", "3402000000"


async def _run(cmd: list[str], cwd: Path, timeout: float = 60.0) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode(errors="replace")


def _sipp(port: int, scenario: str, transport: str, device: str, password: str = SIP_PASSWORD) -> list[str]:
    return [
        SIPP or "sipp",
        f"127.0.0.1:{port}",
        "-sf",
        str(SCENARIOS / scenario),
        "-m",
        "1",
        "-t",
        transport,
        "-i",
        "127.0.0.1",
        "-p",
        "0",
        "-nostdin",
        "-timeout",
        "20s",
        "-timeout_error",
        "-trace_err",
        "-key",
        "device",
        device,
        "-key",
        "server",
        SERVER,
        "-key",
        "realm",
        REALM,
        "-au",
        device,
        "-ap",
        password,
    ]


@pytest.mark.skipif(SIPP is None, reason="sipp not installed (Debian package sip-tester)")
@pytest.mark.parametrize(
    "transport, device", [("u1", "44030500001320000201"), ("t1", "44030500001320000202")]
)
async def test_sipp_register_and_alarm(
    camera: CameraApp,  # noqa: F811
    topic_prefix: str,
    consume_topic: Any,
    tmp_path: Path,
    transport: str,
    device: str,
) -> None:
    rc, out = await _run(_sipp(camera.sip_port, "register_alarm.xml", transport, device), tmp_path)
    assert rc == 0, out[-3000:]
    events = await consume_topic(topic_prefix, "alarms.raw", 1, timeout=20)
    assert events[0]["source"]["device_id"] == device and events[0]["kind"] == "intrusion"
    assert events[0]["attributes"]["priority"] == "1"


@pytest.mark.slow
@pytest.mark.skipif(SIPP is None, reason="sipp not installed (Debian package sip-tester)")
async def test_sipp_refusals(
    camera: CameraApp,  # noqa: F811
    topic_prefix: str,
    consume_topic: Any,
    tmp_path: Path,
) -> None:
    for scenario, password in (
        ("alarm_unregistered.xml", SIP_PASSWORD),
        ("register_wrong_password.xml", "guess"),
    ):
        rc, out = await _run(
            _sipp(camera.sip_port, scenario, "u1", "44030500001320000299", password), tmp_path
        )
        assert rc == 0, scenario + "\n" + out[-3000:]
    assert await consume_topic(topic_prefix, "alarms.raw", 1, timeout=3) == []
    assert await consume_topic(topic_prefix, "devices.status", 1, timeout=1) == []


@pytest.mark.slow
@pytest.mark.skipif(SVWAR is None, reason="sipvicious not installed (PyPI sipvicious)")
async def test_sipvicious_probes_get_nowhere(
    camera: CameraApp,  # noqa: F811
    topic_prefix: str,
    consume_topic: Any,
    tmp_path: Path,
) -> None:
    port = camera.sip_port
    tools = Path(SVWAR or "").parent
    _, svmap = await _run([str(tools / "sipvicious_svmap"), "-p", str(port), "127.0.0.1"], tmp_path)
    assert "alarmhub" in svmap, svmap  # it sees a SIP server …
    # … but enumerating extensions finds none that registers without authentication
    _, svwar = await _run(
        [
            str(tools / "sipvicious_svwar"),
            "-p",
            str(port),
            "-e",
            "100-120,1000,2000",
            "--force",
            "--maximumtime=10",
            "127.0.0.1",
        ],
        tmp_path,
    )
    assert "found nothing" in svwar and "noauth" not in svwar.lower(), svwar
    # … and guessing the password of a real device id finds nothing (the password is not in the range)
    _, svcrack = await _run(
        [
            str(tools / "sipvicious_svcrack"),
            "-p",
            str(port),
            "-u",
            "34020000001320000001",
            "-r",
            "100000-100050",
            "--maximumtime=10",
            "127.0.0.1",
        ],
        tmp_path,
    )
    assert "found nothing" in svcrack, svcrack
    assert not camera.registrar.registered_count
    assert await consume_topic(topic_prefix, "alarms.raw", 1, timeout=3) == []
