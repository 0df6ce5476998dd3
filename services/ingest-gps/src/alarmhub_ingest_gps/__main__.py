"""``alarmhub-ingest-gps``: settings, then the shared entry point."""

from __future__ import annotations

import os

from alarmhub_runtime import HealthServer, Lifecycle, serve
from prometheus_client import CollectorRegistry

from .config import GpsSettings


def main() -> None:
    settings = GpsSettings()

    def build(registry: CollectorRegistry, health: HealthServer) -> Lifecycle:
        # imported here, not at the top: a worker supervisor never builds the app, and importing it (~4 s
        # of CPU) before spawning the workers, which import it again, made a 2-worker start on a loaded
        # 2-core box take ~57 s of the test's 60 s (supervisor 17.5 s, then the workers ~39 s)
        from .app import GpsApp

        if settings.nice:  # in the gateway's own process (a worker supervisor is not lowered)
            # Positions are many and each matters little; an alarm is rare and urgent. On a host shared with
            # the receivers, triage and dispatch the kernel then gives them the CPU first when both are
            # runnable (the gateway still takes every idle cycle). Only ever lowered: no privilege is needed.
            os.nice(settings.nice)
        return GpsApp(settings, registry)

    # ALARMHUB_GPS_WORKERS > 1: supervise that many gateways on the same ports, each with its own health
    # and command endpoints (sessions are owned per worker; dispatch routes commands through Redis).
    # uvloop and the GC tuning (settings.uvloop, settings.gc_tune): every frame allocates a handful of
    # short-lived objects, and libuv halves the per-connection and per-read overhead
    fixed = all((settings.jt808_port, settings.gt06_port, settings.h02_port, settings.jt809_port))
    serve(
        "ingest-gps",
        settings,
        build,
        workers=settings.workers if fixed else 1,
        offset_ports={"ALARMHUB_GPS_COMMAND_PORT": settings.command_port},
    )


if __name__ == "__main__":
    main()
