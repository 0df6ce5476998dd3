"""The shared state's own Redis link (``_resp.RespLink``): replies parsed however the bytes arrive, handed
to each request in order; an error reply in its place; a broken link fails every waiting request.
Against a real Redis: the link reads what the shared state's commands return."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis
from alarmhub_ingest_contactid._resp import LinkError, ReplyError, RespLink
from alarmhub_ingest_contactid.shared import _command

# what Redis answers to SET NX GET (nil, a value), SET (OK), EVAL (an integer), an error and a RESP3 null
REPLIES = b"$-1\r\n$4\r\ndone\r\n$9\r\npending:a\r\n+OK\r\n:1\r\n-READONLY You can't write\r\n_\r\n"
VALUES: list[Any] = [None, b"done", b"pending:a", b"OK", 1, "READONLY You can't write", None]


class FakeTransport:
    def __init__(self) -> None:
        self.protocol: Any = None
        self.written: list[bytes] = []
        self.aborted = False

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return self.aborted

    def abort(self) -> None:
        self.aborted = True


def _plain(values: list[Any]) -> list[Any]:
    return [str(v) if isinstance(v, ReplyError) else v for v in values]


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, len(REPLIES)])
async def test_replies_split_anywhere_reach_their_requests_in_order(chunk: int) -> None:
    transport = FakeTransport()
    link = RespLink(transport, timeout_s=None)  # type: ignore[arg-type]
    assert transport.protocol is link
    got: list[tuple[str, Any]] = []
    link.request(b"first", 3, lambda out: got.append(("first", out)))
    link.request(b"second", 4, lambda out: got.append(("second", out)))
    assert transport.written == [b"first", b"second"]
    for i in range(0, len(REPLIES), chunk):
        link.data_received(REPLIES[i : i + chunk])
    assert [name for name, _ in got] == ["first", "second"]
    assert _plain(got[0][1]) == VALUES[:3]
    assert _plain(got[1][1]) == VALUES[3:]
    assert isinstance(got[1][1][2], ReplyError)
    assert link.waiting == 0 and not transport.aborted


async def test_a_lost_connection_fails_every_waiting_request_and_closes_the_link() -> None:
    transport = FakeTransport()
    link = RespLink(transport, timeout_s=None)  # type: ignore[arg-type]
    got: list[Any] = []
    link.request(b"a", 2, got.append)
    link.request(b"b", 1, got.append)
    link.data_received(b"+OK\r\n")  # half of the first request's replies
    link.connection_lost(None)
    assert len(got) == 2 and all(isinstance(g, LinkError) for g in got)
    with pytest.raises(LinkError):
        link.request(b"c", 1, got.append)
    assert transport.written == [b"a", b"b"]


async def test_a_reply_nobody_asked_for_or_cannot_be_read_ends_the_link() -> None:
    for data in (b"+OK\r\n", b"*1\r\n:1\r\n"):
        transport = FakeTransport()
        link = RespLink(transport, timeout_s=None)  # type: ignore[arg-type]
        got: list[Any] = []
        if data.startswith(b"*"):  # an array: not a reply of these commands
            link.request(b"x", 1, got.append)
        link.data_received(data)
        assert transport.aborted and link.closed
        assert all(isinstance(g, LinkError) for g in got)


async def test_no_reply_within_the_timeout_fails_the_link() -> None:
    transport = FakeTransport()
    link = RespLink(transport, timeout_s=0.05)  # type: ignore[arg-type]
    done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    link.request(b"x", 1, done.set_result)
    out = await asyncio.wait_for(done, 2)
    assert isinstance(out, TimeoutError) and transport.aborted


async def test_the_link_reads_real_redis_replies(stack: Any) -> None:
    client = aioredis.Redis.from_url(stack.redis_url, socket_timeout=5)
    pool = client.connection_pool
    conn = await pool.get_connection()
    try:
        link = RespLink(conn._writer.transport, 5.0)
        key = b"test_resp:{x}:m:1"
        commands = [
            _command(b"DEL", key),
            _command(b"SET", key, b"pending:a", b"NX", b"GET", b"PX", b"5000"),
            _command(b"SET", key, b"pending:b", b"NX", b"GET", b"PX", b"5000"),
            _command(b"SET", key, b"done", b"PX", b"5000"),
            _command(b"GET", key),
            _command(b"INCRBY", key, b"1"),  # an error reply: not an integer
        ]
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        link.request(b"".join(commands), len(commands), done.set_result)
        out = await asyncio.wait_for(done, 5)
        assert out[0] in (0, 1) and out[1:5] == [None, b"pending:a", b"OK", b"done"]
        assert isinstance(out[5], ReplyError)
        link.fail(LinkError("test over"))
    finally:
        await conn.disconnect(nowait=True)
        await pool.release(conn)
        await client.aclose()
