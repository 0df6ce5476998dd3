"""The one entry point of every service's ``__main__``: settings in, the service run until SIGTERM.

``serve`` does what each ``main()`` did by hand: configure logging, optionally supervise worker copies of
the process (``supervise_if_asked``), then — inside the event loop (uvloop and GC tuning as the settings
say) — make the Prometheus registry and the health server, build the app with them, add its readiness
checks, and run it (:func:`run_service`: start, wait for a signal, stop in order).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from ._health import HealthServer
from ._logging import configure_logging
from ._loop import run_async
from ._service import Lifecycle, run_service
from ._workers import supervise_if_asked

__all__ = ["serve"]

#: ``build(registry, health)`` → the service (``start``/``stop``, and ``add_checks(health)`` if it has checks)
Build = Callable[[CollectorRegistry, HealthServer], Lifecycle]


def serve(
    name: str,
    settings: Any,
    build: Build,
    *,
    workers: int | None = None,
    offset_ports: dict[str, int] | None = None,
) -> None:
    """Run the service ``name`` (its log name) built by ``build``. ``settings``: the service's settings (a
    ``BaseServiceSettings`` with ``health_port``).

    ``workers``: with a count, this process may instead supervise that many copies of itself on the same
    ports (0 = the CPUs available; ``offset_ports`` are the ports each copy shifts by its index)."""
    configure_logging(name, settings.log_level)
    if workers is not None:
        supervise_if_asked(workers, settings.health_port, settings.shutdown_grace_s, offset_ports)

    async def run() -> None:
        registry = CollectorRegistry()
        health = HealthServer(registry, settings.health_host, settings.health_port)
        app = build(registry, health)
        add_checks = getattr(app, "add_checks", None)
        if add_checks is not None:
            add_checks(health)
        await run_service(app, health, settings.shutdown_grace_s)

    run_async(run(), use_uvloop=settings.uvloop, gc_tune=settings.gc_tune)
