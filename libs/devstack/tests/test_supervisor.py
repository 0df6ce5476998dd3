"""The make-run supervisor restarts a dying child with backoff, logs it, and stops only what it started."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from alarmhub_devstack.supervisor import Supervisor


async def test_dying_child_is_restarted_and_logged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "starts"
    # the child records each start, then dies at once with exit code 3
    code = f"open({str(marker)!r}, 'a').write('x'); raise SystemExit(3)"
    sup = Supervisor(tmp_path / "logs", max_backoff_s=0.2)
    sup.add("flaky", [sys.executable, "-c", code], {})
    await sup.start()
    try:
        for _ in range(100):
            if marker.exists() and len(marker.read_text()) >= 3:
                break
            await asyncio.sleep(0.05)
    finally:
        await sup.stop()
    assert len(marker.read_text()) >= 3, "the child was restarted after dying"
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    restarts = [ln for ln in lines if ln["event"] == "child_exited_restarting"]
    assert restarts and restarts[0]["exit_code"] == 3 and restarts[0]["child"] == "flaky"
    assert [r["restarts"] for r in restarts[:2]] == [1, 2][: len(restarts[:2])]


async def test_stop_terminates_a_running_child(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path / "logs")
    child = sup.add("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], {})
    await sup.start()
    assert child.proc is not None and child.proc.returncode is None
    await sup.stop(grace_s=5)
    assert child.proc.returncode is not None
