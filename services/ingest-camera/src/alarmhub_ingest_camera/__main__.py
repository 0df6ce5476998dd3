"""``alarmhub-ingest-camera``: build settings, logging and metrics, then run the service until SIGTERM."""

from __future__ import annotations

from alarmhub_kafka import DurableProducer, KafkaMetrics
from alarmhub_runtime import HealthServer, configure_logging, run_async, run_service
from prometheus_client import CollectorRegistry

from .app import CameraApp
from .config import CameraSettings
from .metrics import CameraMetrics


def main() -> None:
    settings = CameraSettings()
    configure_logging("ingest-camera", settings.log_level)
    registry = CollectorRegistry()
    producer = DurableProducer.from_settings(
        settings, metrics=KafkaMetrics(registry), client_id="ingest-camera"
    )
    health = HealthServer(registry, settings.health_host, settings.health_port)
    app = CameraApp(settings, producer, CameraMetrics(registry), health)
    run_async(
        run_service(app, health, settings.shutdown_grace_s),
        use_uvloop=settings.uvloop,
        gc_tune=settings.gc_tune,
    )


if __name__ == "__main__":
    main()
