"""A GPS gateway listener alone in a process whose open-file limit the test lowered (``test_file_limit.py``,
``alarmhub_devstack.fdlimit``). argv: loop (``uvloop``/``asyncio``), max connections (``budget``: the
service's default, ``connection_budget()``). Connections that send nothing: a stand-in session."""

from __future__ import annotations

import asyncio
import sys
from types import SimpleNamespace
from typing import Any

from alarmhub_devstack.fdlimit import answer
from alarmhub_ingest_gps.metrics import GpsMetrics
from alarmhub_ingest_gps.server import ConnectionBudget, GpsServer, Sink
from alarmhub_runtime import connection_budget
from prometheus_client import CollectorRegistry


class _Quiet:
    device_id = None
    authenticated = False

    def connection_lost(self, *_: Any) -> Any:
        return SimpleNamespace(publish=False)


async def main(limit: str) -> None:
    metrics = GpsMetrics(CollectorRegistry())
    server = GpsServer(
        "jt808",
        lambda peer: _Quiet(),  # type: ignore[arg-type,return-value]
        Sink(),
        metrics,
        host="127.0.0.1",
        port=0,
        idle_timeout_s=300,
        login_timeout_s=300,
        max_connections=ConnectionBudget(connection_budget() if limit == "budget" else int(limit)),
    )
    await server.start()
    closed = metrics.closed
    await answer(
        server.port,
        lambda: {
            "open": len(server.connections),
            "rejected": {
                "total": closed.labels("jt808", "capacity")._value.get(),
                **{r: closed.labels("jt808", r)._value.get() for r in ("files", "accept_failed")},
            },
        },
    )


if __name__ == "__main__":
    if sys.argv[1] == "uvloop":
        import uvloop

        uvloop.run(main(sys.argv[2]))
    else:
        asyncio.run(main(sys.argv[2]))
