"""Run every service as its own process and keep it running: restart with backoff, log each restart.

``make run`` uses this through ``alarmhub-dev up``. Only what this supervisor started is stopped
on Ctrl-C/SIGTERM: services first (SIGTERM, then SIGKILL after a grace period), then the backing
services it had to start itself. Reused backing services are left alone.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["Child", "Supervisor"]


def _log(event: str, **fields: object) -> None:
    line = {
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "service": "supervisor",
        "event": event,
        **fields,
    }
    print(json.dumps(line, ensure_ascii=False), flush=True)


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started_at: float = 0.0
    backoff_s: float = 0.5
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class Supervisor:
    def __init__(self, log_dir: Path, max_backoff_s: float = 30.0) -> None:
        self._log_dir = log_dir
        self._children: list[Child] = []
        self._stopping = asyncio.Event()
        self._max_backoff_s = max_backoff_s

    def add(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        self._log_dir.mkdir(parents=True, exist_ok=True)
        child = Child(name, argv, env, self._log_dir / f"{name}.log")
        self._children.append(child)
        return child

    async def start(self) -> None:
        for child in self._children:
            await self._spawn(child)
            child.task = asyncio.create_task(self._watch(child), name=f"watch:{child.name}")

    async def _spawn(self, child: Child) -> None:
        log = child.log_path.open("ab")
        child.proc = await asyncio.create_subprocess_exec(
            *child.argv, env=child.env, stdout=log, stderr=asyncio.subprocess.STDOUT, start_new_session=True
        )
        log.close()
        child.started_at = time.monotonic()
        _log("child_started", child=child.name, pid=child.proc.pid, log=str(child.log_path))

    async def _watch(self, child: Child) -> None:
        while not self._stopping.is_set():
            assert child.proc is not None
            code = await child.proc.wait()
            if self._stopping.is_set():
                return
            # A child that ran for a while before dying starts again quickly; a crash loop backs off.
            if time.monotonic() - child.started_at > 60:
                child.backoff_s = 0.5
            child.restarts += 1
            _log(
                "child_exited_restarting",
                child=child.name,
                exit_code=code,
                restarts=child.restarts,
                backoff_s=child.backoff_s,
                log=str(child.log_path),
            )
            try:
                await asyncio.wait_for(self._stopping.wait(), child.backoff_s)
                return
            except TimeoutError:
                pass
            child.backoff_s = min(child.backoff_s * 2, self._max_backoff_s)
            await self._spawn(child)

    async def stop(self, grace_s: float = 15.0) -> None:
        self._stopping.set()
        for child in reversed(self._children):
            if child.proc and child.proc.returncode is None:
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for child in reversed(self._children):
            if child.proc is None:
                continue
            try:
                await asyncio.wait_for(child.proc.wait(), max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                _log("child_killed_after_grace", child=child.name)
                child.proc.kill()
                await child.proc.wait()
            _log("child_stopped", child=child.name, exit_code=child.proc.returncode)
        for child in self._children:
            if child.task:
                child.task.cancel()


def python_module(module: str) -> list[str]:
    return [sys.executable, "-m", module]


def base_env() -> dict[str, str]:
    return dict(os.environ)
