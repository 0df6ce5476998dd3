"""Errors of alarmhub_kafka.

- :class:`InvalidEvent`: the input itself is bad (cannot be decoded, violates the contract). It goes
  to ``alarms.dlq`` with its raw bytes and is never retried: the offset moves on.
- :class:`TransientError`: something we depend on failed (Redis, PostgreSQL, the broker). The
  batch is retried with backoff and its offsets are not committed until it succeeds.
- :class:`PublishError`: the broker did not confirm a write in time; the caller must not ACK upstream.
"""

from __future__ import annotations

__all__ = ["InvalidEvent", "PublishError", "TransientError"]


class InvalidEvent(Exception):
    def __init__(self, reason: str, *, raw: bytes = b"", source_id: str = "unknown") -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw
        self.source_id = source_id


class TransientError(Exception):
    pass


class PublishError(Exception):
    pass
