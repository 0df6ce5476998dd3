"""``alarmhub-ingest-gps``: build settings, logging and metrics, then run the gateway until SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import os

from alarmhub_kafka import DurableProducer, KafkaMetrics
from alarmhub_runtime import HealthServer, configure_logging, run_service
from prometheus_client import CollectorRegistry

from .app import GpsApp
from .config import GpsSettings
from .metrics import GpsMetrics


def main() -> None:
    settings = GpsSettings()
    configure_logging("ingest-gps", settings.log_level)
    registry = CollectorRegistry()
    producer = DurableProducer.from_settings(settings, metrics=KafkaMetrics(registry), client_id="ingest-gps")
    health = HealthServer(registry, settings.health_host, settings.health_port)
    app = GpsApp(settings, producer, GpsMetrics(registry), health, collector=registry)
    if settings.nice:
        # Positions are many and each matters little; an alarm is rare and urgent. On a host shared with the
        # receivers, triage and dispatch the kernel then gives them the CPU first when both are runnable
        # (the gateway still takes every idle cycle). Only ever lowered: no privilege is needed.
        os.nice(settings.nice)
    if os.environ.get("ALARMHUB_GPS_GC", "1") != "0":
        # Every frame allocates a handful of short-lived objects (frame, position, fix, reply) that
        # reference counting frees; with the default threshold the cyclic collector ran every 700
        # allocations and walked the young objects each time. Startup's objects (modules, models'
        # schemas) are moved out of its reach, and young collections run 50x less often.
        gc.freeze()
        gc.set_threshold(35_000, 20, 20)
    if os.environ.get("ALARMHUB_GPS_UVLOOP", "1") != "0":
        # libuv's loop roughly halves the per-connection and per-read overhead of asyncio's own,
        # which is most of a gateway's CPU besides decoding; ALARMHUB_GPS_UVLOOP=0 falls back.
        import uvloop

        uvloop.run(run_service(app, health, settings.shutdown_grace_s))
    else:
        asyncio.run(run_service(app, health, settings.shutdown_grace_s))


if __name__ == "__main__":
    main()
