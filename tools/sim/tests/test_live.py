"""``alarmhub-sim live`` as ``make run``'s supervisor runs it: SIGTERM stops it with a summary and exit code 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from alarmhub_devstack import free_port


def test_live_stops_cleanly_on_sigterm() -> None:
    # the dispatch API is not up yet (nothing listens there): the simulator is in its registration retries
    env = {**os.environ, "ALARMHUB_API": f"http://127.0.0.1:{free_port()}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "alarmhub_sim", "live"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())  # printed once the signal handlers are in place
        assert first["event"] == "simulator_started" and first["sites"] > 0
        time.sleep(0.3)  # into the registration retries
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert json.loads(out.strip().splitlines()[-1]) == {"event": "stopped"}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
