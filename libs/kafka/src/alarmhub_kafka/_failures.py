"""Whose fault: a record's (deterministic, dead-letter it) or a dependency's (transient, retry it).

The consumer pipeline asks :func:`classify` about every exception a handler raises:

- ``TRANSIENT``: something we depend on is away or slow — the broker (``KafkaError``, ``PublishError``),
  a socket (``OSError``: connection refused or reset, timeouts), Redis or PostgreSQL connections (their
  ``ConnectionError``/``TimeoutError``/``InterfaceError`` classes, matched by name so this lib imports
  neither client), PostgreSQL SQLSTATE classes 08 (connection), 40 (serialization failure, deadlock),
  53 (insufficient resources), 55 (lock not available), 57 (operator intervention: shutdown, statement
  cancelled), 58 (system error), 42 (an undefined table or column, a missing privilege: a deploy or
  migration problem that every record would hit) and any other class not listed below — and
  :class:`~alarmhub_kafka.TransientError`. Retried with backoff
  for as long as it takes; nothing is committed meanwhile.
- ``DETERMINISTIC``: the record itself cannot succeed — :class:`~alarmhub_kafka.InvalidEvent`, pydantic's
  ``ValidationError``, ``UnicodeError``, PostgreSQL SQLSTATE classes 22 (data exception: a NUL in text,
  a value out of range) and 23 (integrity constraint violation). The batch is split to find the record;
  alone, it goes to ``alarms.dlq`` with the reason.
- ``UNKNOWN``: anything else (a bug tripped by one record, an error class nobody listed). The batch is
  split like a deterministic failure; a record that still fails alone is retried with backoff (it may
  be transient after all) and dead-lettered after 3 attempts when other records (of its batch, or any
  since it first failed) were handled — then it is the record, not the service, that fails — and after
  ``unknown_max_attempts`` (8, about 20 s) otherwise: a record that fails alone when its batch is split
  must not hold its partition forever.
"""

from __future__ import annotations

from enum import Enum

from aiokafka.errors import KafkaError
from pydantic import ValidationError

from .errors import InvalidEvent, PublishError, TransientError

__all__ = ["Failure", "classify"]


class Failure(Enum):
    TRANSIENT = "transient"
    DETERMINISTIC = "deterministic"
    UNKNOWN = "unknown"


_DETERMINISTIC_SQLSTATE_CLASSES = frozenset({"22", "23"})
#: client classes (redis, asyncpg) that say the connection, not the data, failed
_TRANSIENT_NAMES = ("ConnectionError", "TimeoutError", "InterfaceError", "ConnectionDoesNotExistError")


def classify(exc: BaseException) -> Failure:
    """Which kind of failure ``exc`` is (see the module's docstring)."""
    if isinstance(exc, InvalidEvent | ValidationError | UnicodeError):
        return Failure.DETERMINISTIC
    if isinstance(exc, TransientError | PublishError | KafkaError | OSError | TimeoutError):
        return Failure.TRANSIENT
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str) and len(sqlstate) == 5:
        if sqlstate[:2] in _DETERMINISTIC_SQLSTATE_CLASSES:
            return Failure.DETERMINISTIC
        return Failure.TRANSIENT  # the server or our schema, not this record
    if any(c.__name__ in _TRANSIENT_NAMES for c in type(exc).__mro__):
        return Failure.TRANSIENT
    cause = exc.__cause__
    if cause is not None and cause is not exc:
        return classify(cause)  # e.g. a service's own error wrapping the driver's
    return Failure.UNKNOWN
