"""``alarmhub-dispatch`` / ``python -m alarmhub_dispatch``: settings, logging, registry, then run."""

from __future__ import annotations

from alarmhub_runtime import HealthServer, configure_logging, run_async, run_service
from prometheus_client import CollectorRegistry

from .app import DispatchApp
from .config import DispatchSettings


async def _run(settings: DispatchSettings) -> None:
    registry = CollectorRegistry()
    app = DispatchApp(settings, registry)
    health = HealthServer(registry, settings.health_host, settings.health_port)
    app.add_checks(health)
    await run_service(app, health, settings.shutdown_grace_s)


def main() -> None:
    settings = DispatchSettings()
    configure_logging("dispatch", settings.log_level)
    run_async(_run(settings), use_uvloop=settings.uvloop, gc_tune=settings.gc_tune)


if __name__ == "__main__":
    main()
