"""``alarmhub-triage`` / ``python -m alarmhub_triage``: settings, logging, registry, then run."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

from alarmhub_runtime import HealthServer, configure_logging, run_service
from prometheus_client import CollectorRegistry

from .app import TriageApp
from .config import TriageSettings


async def _run(settings: TriageSettings) -> None:
    registry = CollectorRegistry()
    app = TriageApp(settings, registry)
    health = HealthServer(registry, settings.health_host, settings.health_port)
    app.add_checks(health)
    await run_service(app, health, settings.shutdown_grace_s)


T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop where it is installed (less event-loop overhead per socket read and callback);
    the bench runs through here too, to measure the loop the service uses.

    A batch allocates many short-lived objects that reference counting frees; with the default
    threshold the cyclic collector ran every 700 allocations over the young objects. Startup's objects
    (modules, models, rules) are moved out of its reach and young collections run 50x less often
    (``ALARMHUB_TRIAGE_GC_TUNE=0`` keeps the interpreter's defaults).
    """
    if os.environ.get("ALARMHUB_TRIAGE_GC_TUNE", "1") != "0":
        gc.freeze()
        gc.set_threshold(35_000, 20, 20)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        return asyncio.run(coro)
    return uvloop.run(coro)


def main() -> None:
    settings = TriageSettings()
    configure_logging("triage", settings.log_level)
    run(_run(settings))


if __name__ == "__main__":
    main()
