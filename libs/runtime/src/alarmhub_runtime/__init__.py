"""Service runtime shared by every alarmhub service: settings, logging, metrics, health, shutdown."""

from ._health import HealthServer, ReadinessCheck
from ._limits import FileGuard, guard_accept, open_file_limit
from ._logging import bind_event, configure_logging, get_logger
from ._loop import run_async
from ._main import serve
from ._proxies import TrustedProxies
from ._service import Lifecycle, run_service
from ._settings import BaseServiceSettings, health_port_field, port_field, workers_field
from ._stalls import LoopMonitor
from ._transport import KafkaTransport, PostgresTransport, RedisTransport, read_secret_file
from ._workers import WorkerSupervisor, available_cpus, connection_budget, supervise_if_asked, worker_index

__all__ = [
    "BaseServiceSettings",
    "FileGuard",
    "HealthServer",
    "KafkaTransport",
    "Lifecycle",
    "LoopMonitor",
    "PostgresTransport",
    "ReadinessCheck",
    "RedisTransport",
    "TrustedProxies",
    "WorkerSupervisor",
    "available_cpus",
    "bind_event",
    "configure_logging",
    "connection_budget",
    "get_logger",
    "guard_accept",
    "health_port_field",
    "open_file_limit",
    "port_field",
    "read_secret_file",
    "run_async",
    "run_service",
    "serve",
    "supervise_if_asked",
    "worker_index",
    "workers_field",
]
