"""A bounded atheris (libFuzzer) run over the receivers' sessions, seeded with real frames: no crash."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).with_name("atheris_sessions.py")

pytestmark = pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris not installed")


def test_sessions_survive_coverage_guided_fuzzing(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    subprocess.run([sys.executable, str(HARNESS), "--write-seeds", str(corpus)], check=True, timeout=30)
    assert len(list(corpus.iterdir())) >= 5 + 400  # the hand-picked seeds and the GPS corpus
    run = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            "-runs=15000",
            "-max_len=1024",
            "-max_total_time=20",
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    assert "Done 15000 runs" in run.stderr or "DONE" in run.stderr
