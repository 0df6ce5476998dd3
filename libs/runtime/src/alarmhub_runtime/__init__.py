"""Service runtime shared by every alarmhub service: settings, logging, metrics, health, shutdown."""

from ._health import HealthServer, ReadinessCheck
from ._logging import bind_event, configure_logging, get_logger
from ._loop import run_async
from ._service import Lifecycle, run_service
from ._settings import BaseServiceSettings

__all__ = [
    "BaseServiceSettings",
    "HealthServer",
    "Lifecycle",
    "ReadinessCheck",
    "bind_event",
    "configure_logging",
    "get_logger",
    "run_async",
    "run_service",
]
