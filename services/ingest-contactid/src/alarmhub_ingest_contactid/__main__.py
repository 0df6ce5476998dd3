"""``alarmhub-ingest-contactid`` / ``python -m alarmhub_ingest_contactid``: settings, then the shared
entry point."""

from __future__ import annotations

from alarmhub_runtime import HealthServer, Lifecycle, serve
from prometheus_client import CollectorRegistry

from .config import ContactIdSettings


def main() -> None:
    settings = ContactIdSettings()

    def build(registry: CollectorRegistry, health: HealthServer) -> Lifecycle:
        # imported here: a worker supervisor (the default on a host of several CPUs) never builds the app,
        # and importing it there made the supervisor 93 MiB of RSS instead of 48 (smoke, 2026-12-07)
        from .app import ContactIdApp

        return ContactIdApp(settings, registry)

    # ALARMHUB_DC09_WORKERS > 1 (default 0: one per CPU available): this process supervises that many
    # copies of itself on the same port. uvloop (settings.uvloop) roughly halves asyncio's per-read and
    # per-write overhead, which with stop-and-wait transmitters is most of the receiver's CPU besides
    # decoding (ALARMHUB_UVLOOP=0 falls back)
    serve("ingest-contactid", settings, build, workers=settings.workers if settings.dc09_port else 1)


if __name__ == "__main__":
    main()
