"""``alarmhub-ingest-gps``: build settings, logging and metrics, then run the gateway until SIGTERM."""

from __future__ import annotations

import asyncio
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
    if os.environ.get("ALARMHUB_GPS_UVLOOP", "1") != "0":
        # libuv's loop roughly halves the per-connection and per-read overhead of asyncio's own,
        # which is most of a gateway's CPU besides decoding; ALARMHUB_GPS_UVLOOP=0 falls back.
        import uvloop

        uvloop.run(run_service(app, health, settings.shutdown_grace_s))
    else:
        asyncio.run(run_service(app, health, settings.shutdown_grace_s))


if __name__ == "__main__":
    main()
