"""``alarmhub-ingest-gps``: build settings, logging and metrics, then run the gateway until SIGTERM."""

from __future__ import annotations

import os

from alarmhub_kafka import DurableProducer, KafkaMetrics
from alarmhub_runtime import HealthServer, configure_logging, run_async, run_service, supervise_if_asked
from prometheus_client import CollectorRegistry

from .app import GpsApp
from .config import GpsSettings
from .metrics import GpsMetrics


def main() -> None:
    settings = GpsSettings()
    configure_logging("ingest-gps", settings.log_level)
    # ALARMHUB_GPS_WORKERS > 1: supervise that many gateways on the same ports, each with its own health
    # and command endpoints (sessions are owned per worker; dispatch routes commands through Redis)
    fixed = all((settings.jt808_port, settings.gt06_port, settings.h02_port, settings.jt809_port))
    supervise_if_asked(
        settings.workers if fixed else 1,
        settings.health_port,
        settings.shutdown_grace_s,
        offset_ports={"ALARMHUB_GPS_COMMAND_PORT": settings.command_port},
    )
    registry = CollectorRegistry()
    producer = DurableProducer.from_settings(settings, metrics=KafkaMetrics(registry), client_id="ingest-gps")
    health = HealthServer(registry, settings.health_host, settings.health_port)
    app = GpsApp(settings, producer, GpsMetrics(registry), health, collector=registry)
    if settings.nice:
        # Positions are many and each matters little; an alarm is rare and urgent. On a host shared with the
        # receivers, triage and dispatch the kernel then gives them the CPU first when both are runnable
        # (the gateway still takes every idle cycle). Only ever lowered: no privilege is needed.
        os.nice(settings.nice)
    # uvloop and the GC tuning (alarmhub_runtime.run_async): every frame allocates a handful of short-lived
    # objects, and libuv halves the per-connection and per-read overhead (ALARMHUB_UVLOOP / ALARMHUB_GC_TUNE)
    run_async(
        run_service(app, health, settings.shutdown_grace_s),
        use_uvloop=settings.uvloop,
        gc_tune=settings.gc_tune,
    )


if __name__ == "__main__":
    main()
