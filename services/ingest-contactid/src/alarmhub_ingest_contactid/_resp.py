"""One Redis connection of the shared state's own, for its per-message commands (claim, confirm, heard).

redis-py's connection pool is built for many coroutines sharing connections: each call takes a connection
(an asyncio lock, a readiness probe of the socket, observability hooks), awaits each reply through its
parser coroutine and gives the connection back — per DC-09 message, more CPU than the commands themselves.
This link is one connection that stays checked out of the client's pool, opened by redis-py (so address
discovery through Sentinel, TLS, AUTH and SELECT stay redis-py's), whose transport is then read by
:class:`RespLink` directly: every write is one request of known commands, their replies are parsed in
``data_received`` as they arrive and handed to the request's callback, in the order the requests were
written (Redis answers a connection's commands in order). Requests may overlap: a confirm written while a
claim is unanswered is answered after it.

Replies understood: the RESP2 types these commands return (``+`` status, ``-`` error, ``:`` integer,
``$`` bulk or nil) and RESP3's ``_`` null. Anything else, a lost connection or a reply later than
``timeout_s`` fails every request waiting on the link and closes it; an error reply is handed to its
request's callback as :class:`ReplyError` in place of that reply. The caller (``SharedState``) decides what
a failure means (local memory, metrics, a retry on a fresh link).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["LinkError", "ReplyError", "RespLink"]

Callback = Callable[[list[Any] | BaseException], None]


class LinkError(ConnectionError):
    """The link broke (closed, lost, or a reply it cannot read): no reply is coming."""


class ReplyError(Exception):
    """An error reply (``-ERR …``, ``-READONLY …``) in place of one command's reply."""


class RespLink(asyncio.Protocol):
    """Requests written in order, replies parsed as they arrive. ``transport`` is an open connection to
    Redis on which no reply is outstanding (it is taken over with ``set_protocol``)."""

    def __init__(self, transport: asyncio.Transport, timeout_s: float | None) -> None:
        self.transport = transport
        self.timeout_s = timeout_s
        self.closed = False
        self._buf = b""
        # per request: [replies still expected, replies so far, callback, when written]
        self._waiting: deque[list[Any]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        transport.set_protocol(self)

    @property
    def waiting(self) -> int:
        """Requests written and not yet fully answered."""
        return len(self._waiting)

    def request(self, packed: bytes, replies: int, callback: Callback) -> None:
        """Write ``packed`` (``replies`` commands); ``callback`` gets their replies in order, or the
        exception that ended the link. Raises :class:`LinkError`, having written nothing, on a closed link."""
        if self.closed or self.transport.is_closing():
            raise LinkError("link closed")
        self.transport.write(packed)
        now = time.monotonic()
        self._waiting.append([replies, [], callback, now])
        if self._timer is None and self.timeout_s is not None:
            self._timer = asyncio.get_running_loop().call_at(now + self.timeout_s, self._check_timeout)

    def _check_timeout(self) -> None:
        self._timer = None
        if not self._waiting or self.closed or self.timeout_s is None:
            return
        oldest = self._waiting[0][3]
        if time.monotonic() - oldest >= self.timeout_s:
            self.fail(TimeoutError(f"no reply from Redis in {self.timeout_s} s"))
            return
        self._timer = asyncio.get_running_loop().call_at(oldest + self.timeout_s, self._check_timeout)

    def fail(self, exc: BaseException) -> None:
        """End the link: every waiting request's callback gets ``exc``; the connection is closed."""
        if self.closed:
            return
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.transport.abort()
        waiting, self._waiting = self._waiting, deque()
        for _, _, callback, _ in waiting:
            callback(exc)

    # ------------------------------------------------------------------------- asyncio.Protocol

    def data_received(self, data: bytes) -> None:
        buf = self._buf + data if self._buf else data
        pos, end = 0, len(buf)
        waiting = self._waiting
        while pos < end:
            if not waiting:
                self.fail(LinkError(f"unexpected reply from Redis: {buf[pos : pos + 40]!r}"))
                return
            try:
                value, nxt = _parse(buf, pos)
            except ValueError as exc:
                self.fail(LinkError(f"unreadable reply from Redis: {exc}"))
                return
            if nxt < 0:  # incomplete: wait for more
                break
            pos = nxt
            req = waiting[0]
            req[1].append(value)
            req[0] -= 1
            if req[0] == 0:
                waiting.popleft()
                req[2](req[1])
        self._buf = buf[pos:] if pos < end else b""

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(LinkError(f"connection to Redis lost: {exc!r}" if exc else "connection to Redis closed"))

    def eof_received(self) -> bool | None:
        return False  # close: Redis closed its side


def _parse(buf: bytes, pos: int) -> tuple[Any, int]:
    """One reply at ``pos``: ``(value, position after it)``, or ``(None, -1)`` when not all of it is here.
    Raises ``ValueError`` on a type this link does not read."""
    eol = buf.find(b"\r\n", pos)
    if eol < 0:
        return None, -1
    kind = buf[pos]
    if kind == 0x24:  # $ bulk string
        n = int(buf[pos + 1 : eol])
        if n < 0:
            return None, eol + 2
        stop = eol + 2 + n
        if stop + 2 > len(buf):
            return None, -1
        return buf[eol + 2 : stop], stop + 2
    if kind == 0x2B:  # + status
        return buf[pos + 1 : eol], eol + 2
    if kind == 0x3A:  # : integer
        return int(buf[pos + 1 : eol]), eol + 2
    if kind == 0x2D:  # - error
        return ReplyError(buf[pos + 1 : eol].decode("utf-8", "replace")), eol + 2
    if kind == 0x5F:  # _ null (RESP3)
        return None, eol + 2
    raise ValueError(f"reply type {chr(kind)!r}")
