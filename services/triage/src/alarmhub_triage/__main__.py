"""``alarmhub-triage`` / ``python -m alarmhub_triage``: settings, logging, registry, then run."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

from alarmhub_runtime import HealthServer, configure_logging, run_async, run_service
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


def run(coro: Coroutine[Any, Any, T], *, use_uvloop: bool = True, gc_tune: bool = True) -> T:
    """Run as the service runs (uvloop, GC tuning: ``alarmhub_runtime.run_async``); the bench runs
    through here too, to measure the loop the service uses."""
    return run_async(coro, use_uvloop=use_uvloop, gc_tune=gc_tune)


def main() -> None:
    settings = TriageSettings()
    configure_logging("triage", settings.log_level)
    run(_run(settings), use_uvloop=settings.uvloop, gc_tune=settings.gc_tune)


if __name__ == "__main__":
    main()
