"""Open-file limits of a process that holds many connections: refuse the next one cleanly, never run out.

Three lines of defence, every one counted by the caller (a ``reason`` label):

1. ``connection_budget()`` (``_workers.py``): the default connection limit is the soft ``RLIMIT_NOFILE``
   less a reserve for the broker, Redis, PostgreSQL, log and health sockets — reason ``capacity``.
2. :class:`FileGuard`: a connection whose descriptor lands within ``headroom`` of the soft limit is
   closed at once, whatever the configured limit (set above the file limit, or descriptors taken by
   something else) — reason ``files``. Descriptors are allocated lowest first, so the new one's number
   says how full the table is without counting it.
3. :func:`guard_accept`: if ``accept()`` still fails for want of descriptors (``EMFILE``/``ENFILE``),
   asyncio's own loop logs an error for every try (up to ``backlog`` per wake-up) and retries the
   listener after 1 s; instead each such stall is counted once (reason ``accept_failed``) and logged at
   most once a second, the listener keeps serving and the waiting connections are accepted on the retry. uvloop (libuv) never reports it: it accepts and closes the waiting connections with a
   descriptor it keeps in reserve, and the listener goes on — uncounted, which is why (2) keeps headroom.
"""

from __future__ import annotations

import asyncio
import errno
import resource
import time
from collections.abc import Callable
from typing import Any

from ._logging import get_logger

__all__ = ["FileGuard", "guard_accept", "open_file_limit"]

log = get_logger("alarmhub.runtime.limits")

_OUT_OF_FILES = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM))


def open_file_limit() -> int:
    """The soft ``RLIMIT_NOFILE`` (1,000,000 when unlimited)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 1_000_000 if soft == resource.RLIM_INFINITY else int(soft)


class FileGuard:
    """``exhausted(transport)``: the connection's descriptor is within ``headroom`` of the file limit."""

    __slots__ = ("ceiling",)

    def __init__(self, headroom: int = 32, limit: int | None = None) -> None:
        self.ceiling = (open_file_limit() if limit is None else limit) - headroom

    def exhausted(self, transport: asyncio.BaseTransport | None) -> bool:
        sock = transport.get_extra_info("socket") if transport is not None else None
        return sock is not None and sock.fileno() >= self.ceiling


def guard_accept(server: asyncio.AbstractServer, count: Callable[[], None], name: str) -> None:
    """Count (``count()``) and quietly log asyncio's "out of system resource" on ``server``'s sockets;
    any other error goes to the handler there was before."""
    loop = asyncio.get_running_loop()
    own = {s.fileno() for s in getattr(server, "sockets", ())}
    previous = loop.get_exception_handler()
    last = 0.0
    counted = False  # in this loop iteration: asyncio tries accept() up to `backlog` times per wake-up

    def rearm() -> None:
        nonlocal counted
        counted = False

    def handler(lp: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        nonlocal last, counted
        exc, sock = context.get("exception"), context.get("socket")
        if (
            isinstance(exc, OSError)
            and exc.errno in _OUT_OF_FILES
            and sock is not None
            and sock.fileno() in own
        ):
            if counted:
                return
            counted = True
            lp.call_soon(rearm)
            count()
            now = time.monotonic()
            if now - last >= 1.0:
                last = now
                log.warning("accept_out_of_files", listener=name, error=errno.errorcode.get(exc.errno or 0))
            return
        if previous is not None:
            previous(lp, context)
        else:
            lp.default_exception_handler(context)

    loop.set_exception_handler(handler)
