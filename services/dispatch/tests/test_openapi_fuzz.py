"""schemathesis against the dispatch OpenAPI: every operation, a few generated requests each, no 5xx.

The service runs as its own process on a fresh database (schemathesis creates and deletes registry
records, tokens and webhooks at random), so nothing it writes reaches other tests. The requests are sent
as a supervisor of the city (the widest rights, so the handlers run instead of stopping at 403) and once
without a token. Bounded: ``EXAMPLES`` generated cases per operation (≈ 40 operations), well under a
minute (``ALARMHUB_FUZZ_EXAMPLES=50`` for a deeper run). Left out: the SSE stream (it never ends); the
vehicle-command operation, whose 502 is the documented answer when ingest-gps is not there (it is not
running here); and the theft report, which waits up to its ``wait_s`` (≤ 30 s) for triage to open the
incident — triage does not run here, so a report on a vehicle the fuzzer registered under the same short
id (hypothesis favours ids like "0" in both operations) held the request past the client's 10 s timeout,
and hypothesis then replayed it while shrinking until the test timed out (its own tests cover it).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from alarmhub_devstack.testing import ServiceProcess, new_prefix, service_env
from hypothesis import HealthCheck, given, settings

EXAMPLES = int(os.environ.get("ALARMHUB_FUZZ_EXAMPLES", "4"))  # raise it for a deeper run
TOKEN = f"fuzz-{uuid.uuid4().hex}"
SKIP = ("/api/v1/stream", "/vehicle-command", "/theft-report")


class _Addr:
    def __init__(self, stack: Any, db: str) -> None:
        self.kafka_bootstrap, self.redis_url, self.database_url = stack.kafka_bootstrap, stack.redis_url, db


@pytest.fixture(scope="module")
def api(stack: Any) -> Iterator[str]:
    from alarmhub_store import migrate_sync

    db = f"{stack.database_url.rsplit('/', 1)[0]}/alarmhub_fuzz_{uuid.uuid4().hex[:8]}"
    migrate_sync(db)
    env = service_env(
        _Addr(stack, db),
        new_prefix(),
        ALARMHUB_DEV_TOKEN=TOKEN,
        ALARMHUB_DEV_MODE="1",
        ALARMHUB_LOG_LEVEL="WARNING",
        ALARMHUB_MIGRATE="false",
    )
    proc = ServiceProcess.create("alarmhub_dispatch", env, ("ALARMHUB_HTTP_PORT",)).start()
    try:
        yield f"http://127.0.0.1:{proc.ports['ALARMHUB_HTTP_PORT']}"
    finally:
        proc.stop()


def test_no_operation_answers_5xx(api: str) -> None:
    import schemathesis

    schema = schemathesis.openapi.from_url(f"{api}/openapi.json")
    failures: list[str] = []
    operations = 0
    session = requests.Session()

    def fuzz(op: Any) -> None:
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=op.as_strategy())
        def run(case: Any) -> None:
            for headers in ({"Authorization": f"Bearer {TOKEN}"}, {}):
                resp = case.call(base_url=api, session=session, headers=headers, timeout=10)
                if resp.status_code >= 500:
                    failures.append(
                        f"{op.method.upper()} {op.path} → {resp.status_code}: {case.path_parameters}"
                        f" {case.query} {str(case.body)[:200]} :: {resp.text[:200]}"
                    )

        run()

    for result in schema.get_all_operations():
        op = result.ok()
        if any(s in op.path for s in SKIP):
            continue
        operations += 1
        fuzz(op)
    assert operations >= 20
    assert not failures, "\n".join(failures[:20])
