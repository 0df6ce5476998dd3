"""``alarmhub-triage`` / ``python -m alarmhub_triage``: settings, logging, registry, then run."""

from __future__ import annotations

import asyncio

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


def main() -> None:
    settings = TriageSettings()
    configure_logging("triage", settings.log_level)
    asyncio.run(_run(settings))


if __name__ == "__main__":
    main()
