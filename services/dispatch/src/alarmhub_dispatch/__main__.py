"""``alarmhub-dispatch`` / ``python -m alarmhub_dispatch``: settings, then the shared entry point."""

from __future__ import annotations

from alarmhub_runtime import serve

from .app import DispatchApp
from .config import DispatchSettings


def main() -> None:
    settings = DispatchSettings()
    serve("dispatch", settings, lambda registry, health: DispatchApp(settings, registry))


if __name__ == "__main__":
    main()
