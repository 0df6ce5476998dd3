"""A DC-09 listener alone in a process whose open-file limit the test lowered (``test_file_limit.py``,
``alarmhub_devstack.fdlimit``). argv: loop (``uvloop``/``asyncio``), max connections (``budget``: the
service's default, ``connection_budget()``)."""

from __future__ import annotations

import asyncio
import sys

from alarmhub_devstack.fdlimit import answer
from alarmhub_ingest_contactid.metrics import ContactIdMetrics
from alarmhub_ingest_contactid.server import Dc09Server
from alarmhub_runtime import connection_budget
from prometheus_client import CollectorRegistry


async def main(limit: str) -> None:
    metrics = ContactIdMetrics(CollectorRegistry())
    server = Dc09Server(
        None,  # type: ignore[arg-type]  # connections that send nothing never reach the receiver
        metrics,
        host="127.0.0.1",
        port=0,
        max_frame=4106,
        idle_timeout_s=300,
        max_connections=connection_budget() if limit == "budget" else int(limit),
        max_connections_per_peer=100_000,
    )
    await server.start()
    rejected = metrics.connections_rejected
    await answer(
        server.port,
        lambda: {
            "open": len(server._conns),
            "rejected": {r: rejected.labels(r)._value.get() for r in ("total", "files", "accept_failed")},
        },
    )


if __name__ == "__main__":
    if sys.argv[1] == "uvloop":
        import uvloop

        uvloop.run(main(sys.argv[2]))
    else:
        asyncio.run(main(sys.argv[2]))
