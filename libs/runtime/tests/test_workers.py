"""The worker supervisor over real processes: SO_REUSEPORT spreads connections over the workers, a worker
that dies is restarted, SIGTERM drains them all, and the CPU count honours a cgroup quota."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from alarmhub_devstack import free_port
from alarmhub_runtime import available_cpus

# A worker: answers each connection with its index and pid; exits 0 on SIGTERM.
WORKER = """
import os, signal, socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64); s.settimeout(0.2)
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
while not stop:
    try:
        c, _ = s.accept()
    except (TimeoutError, OSError):
        continue
    c.sendall(f"{os.environ['ALARMHUB_WORKER_INDEX']} {os.getpid()} {os.environ['ALARMHUB_HEALTH_PORT']}".encode())
    c.close()
"""

SUPERVISOR = """
import sys
from alarmhub_runtime import WorkerSupervisor
sys.exit(WorkerSupervisor([sys.executable, sys.argv[1], sys.argv[2]], 2, health_port=int(sys.argv[3]),
                          grace_s=3).run())
"""


def _ask(port: int) -> tuple[str, int, str]:
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
                index, pid, health = c.recv(64).decode().split()
                return index, int(pid), health
        except (ConnectionRefusedError, ConnectionResetError, ValueError):
            # a killed worker resets what waited in its backlog: the client tries again, as a sender would
            time.sleep(0.1)
    raise AssertionError("no worker answered")


def test_workers_share_a_port_restart_and_drain(tmp_path: Path) -> None:
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    port, health = free_port(), free_port()
    sup = subprocess.Popen([sys.executable, "-c", SUPERVISOR, str(worker), str(port), str(health)])
    try:
        seen: dict[str, tuple[int, str]] = {}
        for _ in range(200):  # new source port each time: the kernel's hash spreads them
            index, pid, hport = _ask(port)
            seen[index] = (pid, hport)
            if len(seen) == 2:
                break
        assert sorted(seen) == ["0", "1"]
        assert {h for _, h in seen.values()} == {str(health), str(health + 1)}

        os.kill(seen["0"][0], signal.SIGKILL)  # a worker dies: it is started again
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            index, pid, _ = _ask(port)
            if index == "0" and pid != seen["0"][0]:
                break
        else:
            raise AssertionError("worker 0 was not restarted")

        sup.send_signal(signal.SIGTERM)
        assert sup.wait(10) == 0
        time.sleep(0.2)
        refused = 0
        for _ in range(3):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except ConnectionRefusedError:
                refused += 1
        assert refused == 3
    finally:
        if sup.poll() is None:
            sup.kill()  # the workers follow (PR_SET_PDEATHSIG), as the next test shows
            sup.wait()


def test_workers_die_with_a_killed_supervisor(tmp_path: Path) -> None:
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    port = free_port()
    sup = subprocess.Popen([sys.executable, "-c", SUPERVISOR, str(worker), str(port), "0"])
    try:
        pids = {_ask(port)[1] for _ in range(40)}
    finally:
        sup.kill()
        sup.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead: its parent (the killed supervisor) is gone, init reaps it
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_available_cpus_honours_the_cgroup_quota(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert available_cpus(tmp_path) == min(2, len(os.sched_getaffinity(0)))
    (tmp_path / "cpu.max").write_text("50000 100000\n")
    assert available_cpus(tmp_path) == 1
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert available_cpus(tmp_path) == len(os.sched_getaffinity(0))
