"""``alarmhub-ingest-camera``: settings, then the shared entry point."""

from __future__ import annotations

from alarmhub_kafka import DurableProducer, KafkaMetrics
from alarmhub_runtime import HealthServer, serve
from prometheus_client import CollectorRegistry

from .app import CameraApp
from .config import CameraSettings
from .metrics import CameraMetrics


def main() -> None:
    settings = CameraSettings()

    def build(registry: CollectorRegistry, health: HealthServer) -> CameraApp:
        producer = DurableProducer.from_settings(
            settings, metrics=KafkaMetrics(registry), client_id="ingest-camera"
        )
        return CameraApp(settings, producer, CameraMetrics(registry), health)

    serve("ingest-camera", settings, build)


if __name__ == "__main__":
    main()
