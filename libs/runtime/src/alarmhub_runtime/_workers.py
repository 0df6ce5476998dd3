"""Worker processes for the ingest services: every core of a host on one port (``SO_REUSEPORT``).

An ingest service started with ``ALARMHUB_WORKERS=N`` (N > 1) becomes a supervisor: it starts N copies
of itself as child processes, each with ``ALARMHUB_WORKER_INDEX=i`` and ``ALARMHUB_WORKERS=1`` (so a
child never supervises), and its health/metrics port moved to ``base + i`` (each worker is scraped on
its own port; ``worker`` in its logs). The children bind their listening ports with ``SO_REUSEPORT``
and the kernel spreads connections and datagrams over them. Shared state (supervision, retransmission
and replay memory) lives in Redis, so which worker a transmitter reaches does not matter.

The supervisor restarts a worker that dies (backoff 0.5 s doubling to 30 s, reset after a minute of
health), forwards SIGTERM/SIGINT to every worker so each drains as a single process would (stop
accepting, finish in-flight writes, flush), and exits once all have exited — killing what is left after
the grace period. ``0`` workers — the default of every ``ALARMHUB_<SERVICE>_WORKERS`` — means "as many
as the CPUs this process may use": the cgroup quota (``cpu.max``), not the host's core count.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ._logging import get_logger

__all__ = ["WorkerSupervisor", "available_cpus", "connection_budget", "supervise_if_asked", "worker_index"]

log = get_logger("alarmhub.runtime.workers")


def available_cpus(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """CPUs this process may use: the smaller of its affinity mask and its cgroup CPU quota (v2 or v1)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota(cgroup_root)
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def _cgroup_quota(root: Path) -> float | None:
    try:
        text = (root / "cpu.max").read_text().split()  # v2: "<quota> <period>" or "max <period>"
        if text and text[0] != "max":
            return int(text[0]) / int(text[1])
        return None
    except (OSError, ValueError, IndexError):
        pass
    try:  # v1
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def connection_budget(reserve: int = 512) -> int:
    """Connections a process can hold before it runs out of file descriptors: the soft ``RLIMIT_NOFILE``
    less ``reserve`` for everything else it opens (broker, Redis and PostgreSQL connections, logs)."""
    import resource

    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1_000_000
    return max(64, soft - reserve)


def worker_index() -> int | None:
    """This process's worker index when a supervisor started it, else None."""
    value = os.environ.get("ALARMHUB_WORKER_INDEX")
    return int(value) if value and value.isdigit() else None


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM it when the supervisor dies, even by SIGKILL (Linux
    ``PR_SET_PDEATHSIG``), so no worker is left holding the port with nobody to restart or stop it."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1


@dataclass
class _Worker:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    backoff: float = 0.5
    restart_at: float = 0.0
    restarts: int = 0


@dataclass
class WorkerSupervisor:
    """Start ``count`` copies of ``argv``, keep them running, stop them together.

    ``health_port`` is the base port (0 keeps every worker on an ephemeral port of its own).
    """

    argv: Sequence[str]
    count: int
    health_port: int = 0
    grace_s: float = 10.0
    extra_env: dict[str, str] = field(default_factory=dict)
    #: further ports each worker takes as ``base + index`` (0 stays 0: ephemeral), e.g. a command port
    offset_ports: dict[str, int] = field(default_factory=dict)
    max_backoff_s: float = 30.0
    _workers: list[_Worker] = field(default_factory=list)
    _stopping: bool = False

    def _env(self, index: int) -> dict[str, str]:
        env = {**os.environ, **self.extra_env}
        env["ALARMHUB_WORKERS"] = "1"
        env["ALARMHUB_WORKER_INDEX"] = str(index)
        env["ALARMHUB_HEALTH_PORT"] = str(self.health_port + index if self.health_port else 0)
        for var, base in self.offset_ports.items():
            env[var] = str(base + index if base else 0)
        return env

    def _spawn(self, w: _Worker) -> None:
        w.proc = subprocess.Popen(list(self.argv), env=self._env(w.index), preexec_fn=_die_with_parent)
        w.started = time.monotonic()
        log.info("worker_started", worker=w.index, pid=w.proc.pid, restarts=w.restarts)

    def _request_stop(self, signum: int, _frame: object) -> None:
        if self._stopping:
            return
        self._stopping = True
        log.info("workers_stopping", signal=signal.Signals(signum).name, grace_s=self.grace_s)
        for w in self._workers:
            if w.proc is not None and w.proc.poll() is None:
                w.proc.send_signal(signal.SIGTERM)

    def run(self) -> int:
        """Supervise until SIGTERM/SIGINT; returns 0 when every worker exited cleanly."""
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGINT, self._request_stop)
        self._workers = [_Worker(i) for i in range(self.count)]
        for w in self._workers:
            self._spawn(w)
        log.info("workers_supervising", count=self.count, health_port=self.health_port)
        while not self._stopping:
            now = time.monotonic()
            for w in self._workers:
                self._tend(w, now)
            time.sleep(0.2)
        return self._drain()

    def _tend(self, w: _Worker, now: float) -> None:
        if w.proc is None:
            if now >= w.restart_at:
                w.restarts += 1
                self._spawn(w)
            return
        code = w.proc.poll()
        if code is None:
            if now - w.started > 60:
                w.backoff = 0.5
            return
        log.error("worker_exited", worker=w.index, exit_code=code, restart_in_s=w.backoff)
        w.proc = None
        w.restart_at = now + w.backoff
        w.backoff = min(w.backoff * 2, self.max_backoff_s)

    def _drain(self) -> int:
        deadline = time.monotonic() + self.grace_s + 2.0
        codes: dict[int, int] = {}
        for w in self._workers:
            if w.proc is None:
                continue
            try:
                codes[w.index] = w.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker_killed_after_grace", worker=w.index, pid=w.proc.pid)
                w.proc.kill()
                codes[w.index] = w.proc.wait()
        log.info("workers_stopped", exit_codes=codes)
        return 0 if all(c == 0 for c in codes.values()) else 1


def supervise_if_asked(
    count: int, health_port: int, grace_s: float, offset_ports: dict[str, int] | None = None
) -> None:
    """In a service's ``main()``, before it starts: with more than one worker asked for (0 = the CPUs
    available) and this process not itself a worker, supervise copies of this very command and exit
    with their outcome; otherwise return, and the caller runs the service in this process."""
    if worker_index() is not None:
        return
    n = available_cpus() if count == 0 else count
    if n <= 1:
        return
    supervisor = WorkerSupervisor(
        _own_command(), n, health_port=health_port, grace_s=grace_s, offset_ports=dict(offset_ports or {})
    )
    raise SystemExit(supervisor.run())


def _own_command() -> list[str]:
    """How this process was started: ``python -m package`` or a console script (a Python file)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name:
        return [sys.executable, "-m", spec.name.removesuffix(".__main__"), *sys.argv[1:]]
    return [sys.executable, *sys.argv]
