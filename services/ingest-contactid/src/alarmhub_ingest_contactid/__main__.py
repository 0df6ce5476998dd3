"""``alarmhub-ingest-contactid`` / ``python -m alarmhub_ingest_contactid``: settings, logging, registry, run."""

from __future__ import annotations

from alarmhub_runtime import HealthServer, configure_logging, run_async, run_service, supervise_if_asked
from prometheus_client import CollectorRegistry

from .app import ContactIdApp
from .config import ContactIdSettings


async def _run(settings: ContactIdSettings) -> None:
    registry = CollectorRegistry()
    app = ContactIdApp(settings, registry)
    health = HealthServer(registry, settings.health_host, settings.health_port)
    app.add_checks(health)
    await run_service(app, health, settings.shutdown_grace_s)


def main() -> None:
    settings = ContactIdSettings()
    configure_logging("ingest-contactid", settings.log_level)
    # ALARMHUB_DC09_WORKERS > 1: this process supervises that many copies of itself on the same port
    supervise_if_asked(
        settings.workers if settings.dc09_port else 1, settings.health_port, settings.shutdown_grace_s
    )
    # uvloop roughly halves asyncio's per-read and per-write overhead, which with stop-and-wait
    # transmitters is most of the receiver's CPU besides decoding (ALARMHUB_UVLOOP=0 falls back)
    run_async(_run(settings), use_uvloop=settings.uvloop, gc_tune=settings.gc_tune)


if __name__ == "__main__":
    main()
