"""Test helpers over real components: consume a prefixed topic, run a service as a real process.

Used by the root ``conftest.py`` fixtures and by cross-service tests. Nothing here mocks Kafka,
Redis or PostgreSQL: tests isolate themselves with a unique topic prefix (and Redis key prefix)
on the shared real broker instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._backing import free_port, reachable

__all__ = [
    "SINGLE_WORKER",
    "ServiceProcess",
    "consume",
    "drop_redis_keys",
    "drop_topics",
    "new_prefix",
    "service_env",
    "settle_stale_escalations",
    "wait_http",
    "wait_until",
]


def new_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}."


async def drop_topics(bootstrap: str, prefix: str, timeout_s: float = 10.0) -> int:
    """Delete the topics under ``prefix`` (best effort; returns how many). A test's topics are of no use
    after it, and every client's bootstrap and metadata refresh reads the whole topic list: at ~2,000
    topics on the dev broker a producer's start took 0.13-0.19 s against 0.002 s on an empty one."""
    from aiokafka.admin import AIOKafkaAdminClient

    if not prefix:
        raise ValueError("an empty prefix would match every topic")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="alarmhub-test-cleanup")
    try:
        async with asyncio.timeout(timeout_s):
            await admin.start()
            mine = [t for t in await admin.list_topics() if t.startswith(prefix)]
            if mine:
                await admin.delete_topics(mine)
            return len(mine)
    except Exception:  # the broker gone or slow: the topics stay, as they did before
        return 0
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


async def drop_redis_keys(redis_url: str, prefix: str, max_keys: int = 5_000_000) -> int:
    """Delete the keys a run left under ``prefix`` (the services key Redis by their topic prefix); returns
    how many. Benches call it on the way out: their keys expire only after hours, and a day of runs left
    ~490,000 of them on the shared Redis. Bounded: at most ``max_keys`` keys, in chunks of 1,000."""
    from redis.asyncio import Redis

    if not prefix:
        raise ValueError("an empty prefix would match every key")
    r = Redis.from_url(redis_url)
    dropped = 0
    try:
        chunk: list[bytes] = []
        async for key in r.scan_iter(match=prefix + "*", count=5000):
            chunk.append(key)
            if len(chunk) == 1000:
                dropped += await r.unlink(*chunk)
                chunk = []
            if dropped + len(chunk) >= max_keys:
                break
        if chunk:
            dropped += await r.unlink(*chunk)
    finally:
        await r.aclose()
    return dropped


async def consume(
    bootstrap: str,
    topic: str,
    n: int,
    timeout: float = 15.0,
    group: str | None = None,
    where: Callable[[dict[str, Any]], bool] | None = None,
) -> list[dict[str, Any]]:
    """Return the first ``n`` JSON values of ``topic`` (already prefixed), from the earliest offset.

    ``where`` keeps only the values it accepts: tests share one database, so a service under test
    may also publish about rows another test left behind (an escalation timer sweeps every due incident).
    """
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,  # no group: no join to wait for
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < n and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for recs in batch.values():
                values = (json.loads(r.value) for r in recs)
                out.extend(v for v in values if where is None or where(v))
    finally:
        await consumer.stop()
    return out


async def settle_stale_escalations(database_url: str) -> int:
    """Clear the escalation deadlines that earlier tests left in the shared test database.

    Tests share one database per session, and a dispatch started later sweeps *every* due incident:
    incidents from a test minutes ago then escalate inside another test, whose topic, webhooks and
    streams hear of them. A dispatch test calls this before it starts dispatch. Returns how many.
    """
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        status = await conn.execute("UPDATE incidents SET escalate_at = NULL WHERE escalate_at IS NOT NULL")
    except asyncpg.UndefinedTableError:
        return 0
    finally:
        await conn.close()
    return int(status.split()[-1])


#: one process per ingest service: ``ALARMHUB_<SERVICE>_WORKERS`` defaults to the CPUs available, and the
#: tests (fixed ports, health port + index per worker) and the dev stack (every service on one host, where
#: worker 1's health port would be the next service's) expect one; a test of workers asks for more
SINGLE_WORKER = {"ALARMHUB_DC09_WORKERS": "1", "ALARMHUB_GPS_WORKERS": "1"}


def service_env(stack: Any, prefix: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALARMHUB_")}
    env.update(
        {
            **SINGLE_WORKER,
            "KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
            "REDIS_URL": stack.redis_url,
            "DATABASE_URL": stack.database_url,
            "ALARMHUB_TOPIC_PREFIX": prefix,
            "ALARMHUB_HEALTH_HOST": "127.0.0.1",
            "ALARMHUB_LOG_LEVEL": "INFO",
            "ALARMHUB_KAFKA_SESSION_TIMEOUT_MS": os.environ.get("ALARMHUB_KAFKA_SESSION_TIMEOUT_MS", "10000"),
        }
    )
    env.update(extra)
    return env


def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} while waiting for {url}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready within {timeout}s: {last!r}")


@dataclass
class ServiceProcess:
    """One alarmhub service as a real OS process, with ephemeral ports, ready when ``/readyz`` says so."""

    module: str
    env: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)
    log_dir: Path = Path("artifacts/logs")
    proc: subprocess.Popen[bytes] | None = None
    python: str | None = None  # another interpreter (another checkout's venv: a benchmark's baseline code)

    @classmethod
    def create(cls, module: str, env: dict[str, str], port_vars: tuple[str, ...] = ()) -> ServiceProcess:
        ports = {"ALARMHUB_HEALTH_PORT": free_port(), **{v: free_port() for v in port_vars}}
        full = {**env, **{k: str(v) for k, v in ports.items()}}
        return cls(module=module, env=full, ports=ports)

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['ALARMHUB_HEALTH_PORT']}"

    def start(self, wait_ready: bool = True, timeout: float = 60.0) -> ServiceProcess:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / f"{self.module}-{self.ports['ALARMHUB_HEALTH_PORT']}.log").open("ab")
        self.proc = subprocess.Popen(
            [self.python or sys.executable, "-m", self.module],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if wait_ready:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 60.0) -> ServiceProcess:
        """Block until ``/readyz`` answers 200 (start several with ``wait_ready=False`` first: they boot in parallel)."""
        wait_http(self.health_url + "/readyz", timeout, self.proc)
        return self

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, as a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def port_open(self, var: str) -> bool:
        return reachable("127.0.0.1", self.ports[var])


async def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll ``predicate`` (sync or async) until it returns a truthy value."""
    deadline = time.monotonic() + timeout
    while True:
        res = predicate()
        if asyncio.iscoroutine(res):
            res = await res
        if res:
            return res
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(interval)
