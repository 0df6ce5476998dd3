"""Session fixtures shared by every test: real broker, Redis and PostgreSQL (reused or started).

- ``stack``: addresses of the three backing services and a fresh, migrated test database.
- ``topic_prefix``: a unique prefix with every contract topic created under it, so that tests on the
  shared real broker never see each other's traffic. Services take it as ``ALARMHUB_TOPIC_PREFIX``;
  tests that touch Redis use it as their key prefix too.
- ``consume_topic``: read the first n JSON values of a prefixed topic.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from alarmhub_devstack import BackingServices
from alarmhub_devstack.testing import consume, drop_topics, new_prefix


@dataclass(frozen=True)
class Stack:
    kafka_bootstrap: str
    redis_url: str
    database_url: str
    admin_database_url: str


# Consumer groups join in ~1.5 s instead of ~5 s on the dev broker, which holds a join for half the session
# timeout; services started in-process or as subprocesses (service_env) take it from here. Against a real
# Kafka whose group.min.session.timeout.ms is the default 6000, set it to 6000.
os.environ.setdefault("ALARMHUB_KAFKA_SESSION_TIMEOUT_MS", "3000")


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    from alarmhub_store import migrate_sync
    from sqlalchemy import create_engine, text

    backing = BackingServices(
        kafka_bootstrap=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        postgres_url=os.environ.get("ALARMHUB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
        state_dir=Path(".devstack/test"),
    ).start()
    base = backing.postgres_url.rsplit("/", 1)[0]
    dbname = f"alarmhub_test_{uuid.uuid4().hex[:8]}"
    db_url = f"{base}/{dbname}"
    migrate_sync(db_url)
    try:
        yield Stack(backing.kafka_bootstrap, backing.redis_url, db_url, backing.postgres_url)
    finally:
        from alarmhub_store import sqlalchemy_url

        engine = create_engine(sqlalchemy_url(backing.postgres_url), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
        except Exception:
            pass
        finally:
            engine.dispose()
        _keep_servers_others_use(backing)
        backing.stop()


def _keep_servers_others_use(backing: BackingServices) -> None:
    """Leave running a server this session started but other processes are connected to (another
    engineer's test session, a ``make run``, a benchmark reuse whatever is reachable): stopping it would
    pull it from under them — e.g. every memory-only topic on the shared broker gone mid-test."""
    import psutil

    me = os.getpid()
    for p in list(backing.started):
        mine = {me, p.proc.pid}
        with contextlib.suppress(psutil.Error):
            mine |= {c.pid for c in psutil.Process(p.proc.pid).children(recursive=True)}
            ports = {
                c.laddr.port
                for c in psutil.net_connections("tcp")
                if c.pid in mine and c.status == psutil.CONN_LISTEN and c.laddr
            }
            users = {
                c.pid
                for c in psutil.net_connections("tcp")
                if c.raddr
                and c.raddr.port in ports
                and c.status == psutil.CONN_ESTABLISHED
                and c.pid
                and c.pid not in mine
            }
            if users:
                backing.started.remove(p)


@pytest_asyncio.fixture
async def topic_prefix(stack: Stack) -> AsyncIterator[str]:
    from alarmhub_kafka import ensure_topics

    prefix = new_prefix()
    await ensure_topics(stack.kafka_bootstrap, prefix=prefix)
    yield prefix
    # after the test's services stopped (they depend on this fixture): keeps the broker's topic list, which
    # every later client start reads, at a few tests' worth instead of the whole session's
    await drop_topics(stack.kafka_bootstrap, prefix)


@pytest.fixture
def consume_topic(stack: Stack) -> Callable[..., Awaitable[list[dict[str, Any]]]]:
    async def _consume(
        prefix: str,
        topic: str,
        n: int,
        timeout: float = 15.0,
        where: Callable[[dict[str, Any]], bool] | None = None,
    ) -> list[dict[str, Any]]:
        return await consume(stack.kafka_bootstrap, prefix + topic, n, timeout, where=where)

    return _consume
