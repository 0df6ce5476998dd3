"""Run a service until SIGTERM/SIGINT, then stop it in order.

A service is anything with ``async start()`` and ``async stop()``; :func:`run_service` starts the
health server, the service, waits for a signal, marks the service not ready, and stops it within
the grace period. Stop order inside a service's ``stop`` is the service's business (app.py):
stop accepting, drain, flush the producer, commit, close. Meanwhile a :class:`LoopMonitor` measures how
long the event loop is held (``alarmhub_event_loop_lag_seconds``, ``alarmhub_gc_pause_seconds``).
"""

from __future__ import annotations

import asyncio
import gc
import signal
from typing import Protocol

from ._health import HealthServer
from ._logging import get_logger
from ._stalls import LoopMonitor

__all__ = ["Lifecycle", "run_service"]


class Lifecycle(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


async def run_service(app: Lifecycle, health: HealthServer, grace_s: float = 10.0) -> None:
    log = get_logger("alarmhub.runtime")
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    started = False
    # not ready before the service's start() returned: the health server answers first, and a ready
    # before the listeners were bound sent traffic to a closed port (a DC-09 worker's /readyz said 200
    # while its port still refused connections)
    health.add_check("started", lambda: started)
    await health.start()
    log.info("health_server_started", port=health.port)
    monitor = LoopMonitor(health.registry)
    monitor.start()
    try:
        await app.start()
        if gc.get_freeze_count():
            # run_async froze the objects of the imports (gc_tune): those the start made — registries,
            # route grids, clients — live as long and are moved out of the cyclic collector's reach too
            gc.freeze()
        started = True
        log.info("service_started")
        await stop.wait()
        log.info("shutdown_requested")
        health.draining = True
    finally:
        try:
            await asyncio.wait_for(app.stop(), grace_s)
            log.info("service_stopped")
        except TimeoutError:
            log.error("shutdown_grace_exceeded", grace_s=grace_s)
        await monitor.stop()
        await health.stop()
