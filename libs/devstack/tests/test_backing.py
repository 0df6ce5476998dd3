"""Reuse-or-start of the backing services, with the pip-shipped binaries, on free ports."""

from __future__ import annotations

from pathlib import Path

from alarmhub_devstack import BackingServices, free_port, reachable


def test_embedded_services_start_stop_and_start_again_on_the_same_state(tmp_path: Path) -> None:
    """`make run` twice: the second start reuses the data directory (PostgreSQL insists on its 0700 mode)."""
    pg, redis, kafka = free_port(), free_port(), free_port()
    for round_ in range(2):
        backing = BackingServices(
            kafka_bootstrap=f"127.0.0.1:{kafka}",
            redis_url=f"redis://127.0.0.1:{redis}/0",
            postgres_url=f"postgresql://postgres@127.0.0.1:{pg}/postgres",
            state_dir=tmp_path / "state",
        ).start()
        try:
            assert sorted(p.name for p in backing.started) == ["kafka", "postgres", "redis"], round_
            assert (
                reachable("127.0.0.1", pg) and reachable("127.0.0.1", redis) and reachable("127.0.0.1", kafka)
            )
            from alarmhub_store import migrate_sync

            migrate_sync(f"postgresql://postgres@127.0.0.1:{pg}/alarmhub")  # idempotent across rounds
        finally:
            backing.stop()
        assert not reachable("127.0.0.1", pg), "stop() stops what start() started"


def test_reachable_services_are_reused_and_left_alone(tmp_path: Path) -> None:
    first = BackingServices(
        kafka_bootstrap=f"127.0.0.1:{free_port()}",
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        postgres_url="postgresql://postgres@127.0.0.1:1/postgres",
        state_dir=tmp_path,
    )
    first._broker()
    first._redis()
    try:
        second = BackingServices(
            kafka_bootstrap=first.kafka_bootstrap, redis_url=first.redis_url, state_dir=tmp_path
        )
        second._broker()
        second._redis()
        assert second.started == [] and len(second.reused) == 2
        second.stop()
        host, port = first.kafka_bootstrap.split(":")
        assert reachable(host, int(port)), "stopping the reuser leaves the service running"
    finally:
        first.stop()


def test_stack_command_stops_its_children_on_sigterm(tmp_path: Path) -> None:
    """`alarmhub-dev stack` under a process manager: SIGTERM stops the broker and Redis it started, at once.

    It used to block the signals for sigwait(); the children inherited the blocked mask, ignored the
    SIGTERM of stop() and were each killed only after the 10 s grace period.
    """
    import os
    import signal
    import subprocess
    import sys

    kafka, redis = free_port(), free_port()
    env = {**os.environ, "KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka}", "REDIS_URL": f"redis://127.0.0.1:{redis}/0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "alarmhub_devstack.cli", "--state-dir", str(tmp_path), "stack"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # printed once everything answers
        assert "'kafka'" in line and "'redis'" in line, line
        assert reachable("127.0.0.1", kafka) and reachable("127.0.0.1", redis)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=8)  # two children sitting out a 10 s grace each would miss this
        assert proc.returncode == 0, out
        assert "stopped." in out
        assert not reachable("127.0.0.1", kafka) and not reachable("127.0.0.1", redis)
    finally:
        if proc.poll() is None:  # failed: take the children down too, or they outlive the test
            import psutil

            for child in psutil.Process(proc.pid).children(recursive=True):
                child.kill()
            proc.kill()
            proc.wait()
