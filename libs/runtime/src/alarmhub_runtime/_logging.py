"""structlog JSON logging. ``configure_logging`` is called once, by a service's ``__main__``."""

from __future__ import annotations

import logging
import os
import sys

import structlog

__all__ = ["bind_event", "configure_logging", "get_logger"]


def configure_logging(service: str, level: str = "INFO") -> None:
    """JSON lines on stdout with timestamp, level, service and whatever is bound in context (``event_id``)."""
    logging.basicConfig(stream=sys.stdout, level=getattr(logging, level), format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.processors.UnicodeDecoder(),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)
    worker = os.environ.get("ALARMHUB_WORKER_INDEX")
    if worker is not None:  # one of several worker processes (alarmhub_runtime.WorkerSupervisor)
        structlog.contextvars.bind_contextvars(worker=int(worker) if worker.isdigit() else worker)


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)


def bind_event(event_id: object) -> None:
    """Bind ``event_id`` for every log line of the current task."""
    structlog.contextvars.bind_contextvars(event_id=str(event_id))
