"""``alarmhub-ingest-camera``: settings, then the shared entry point."""

from __future__ import annotations

from alarmhub_runtime import serve

from .app import CameraApp
from .config import CameraSettings


def main() -> None:
    settings = CameraSettings()
    serve("ingest-camera", settings, lambda registry, health: CameraApp(settings, registry))


if __name__ == "__main__":
    main()
