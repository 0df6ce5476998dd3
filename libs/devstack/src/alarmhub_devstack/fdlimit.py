"""Tests of what a listener does at its open-file limit: it runs in a child process whose ``RLIMIT_NOFILE``
the test lowers (``preexec_fn``), and is spoken to over real loopback sockets, every wait bounded.

The child script calls :func:`answer` with its bound port and a function giving ``open`` (connections held)
and ``rejected`` (``total``: over the maximum, ``files``: near the file limit, ``accept_failed``: accept()
out of descriptors); a service's test runs the checks at the end of this module on it. A test starts it with :func:`child` and asks it ``stats``, ``fill`` (take every free descriptor, as something
else in the process could) or ``free`` (give them back). Each answer is one line ``@ <json>``; the
child's log lines on the same pipe are skipped.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "LIMIT",
    "Child",
    "answer",
    "child",
    "close_all",
    "closed_by_server",
    "connect",
    "refuses_near_the_file_limit",
    "refuses_over_the_default_budget",
    "survives_accept_out_of_files",
]

#: the child's open-file limit (soft and hard)
LIMIT = 128


def _low_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


class Child:
    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.port = int(self._read()["port"])

    def ask(self, command: str = "stats") -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._read()

    def until(self, check: Callable[[dict[str, Any]], bool], timeout: float = 15.0) -> dict[str, Any]:
        """Ask for stats until ``check`` holds or ``timeout`` passed; the last stats either way."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self.ask()
            if check(stats) or time.monotonic() > deadline:
                return stats
            time.sleep(0.05)

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        for _ in range(10_000):  # the child's log lines come on the same pipe
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"the child exited ({self.proc.poll()})")
            if line.startswith("@ "):
                return dict(json.loads(line[2:]))
        raise RuntimeError("no answer from the child")


@contextmanager
def child(script: Path, *args: str) -> Iterator[Child]:
    proc = subprocess.Popen(
        [sys.executable, str(script), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=_low_files,
    )
    try:
        yield Child(proc)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()  # end of input ends the child
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def connect(port: int, n: int) -> list[socket.socket]:
    return [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(n)]


def closed_by_server(socks: list[socket.socket], expected: int, timeout: float = 10.0) -> list[socket.socket]:
    """The sockets the server closed, waiting (bounded) until ``expected`` of them are, then a short
    last look; the open ones are never read (the server sends nothing unasked)."""
    closed: list[socket.socket] = []
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        for s in socks:
            sel.register(s, selectors.EVENT_READ)
        while sel.get_map():
            left = deadline - time.monotonic() if len(closed) < expected else 0.2
            events = sel.select(max(0.0, left))
            if not events:
                break
            for key, _ in events:
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                sel.unregister(sock)
                try:
                    eof = sock.recv(1) == b""
                except ConnectionResetError:
                    eof = True
                if eof:
                    closed.append(sock)
    return closed


def close_all(socks: list[socket.socket]) -> None:
    for s in socks:
        s.close()


async def answer(port: int, stats: Callable[[], dict[str, Any]]) -> None:
    """The child's side: print ``port``, then answer commands on stdin until it closes."""
    print("@", json.dumps({"port": port}), flush=True)
    filler: list[int] = []
    loop = asyncio.get_running_loop()
    while line := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
        out: dict[str, Any] = {}
        if line == "fill":
            try:
                for _ in range(1_000_000):
                    filler.append(os.open("/dev/null", os.O_RDONLY))
            except OSError as exc:
                out.update(filled=len(filler), errno=exc.errno)
        elif line == "free":
            for fd in filler:
                os.close(fd)
            filler.clear()
        out.update(stats(), cpu_s=time.process_time())
        print("@", json.dumps(out), flush=True)


# ---------------------------------------------------------------- the checks a service's test runs


def refuses_over_the_default_budget(script: Path, loop: str) -> None:
    """The default maximum (``connection_budget()``): the open-file limit less the reserve, 64 at most
    here; the 65th connection is closed at once and counted (``total``)."""
    with child(script, loop, "budget") as rx:
        socks = connect(rx.port, 80)
        try:
            stats = rx.until(lambda s: s["open"] + s["rejected"]["total"] >= 80)
            assert stats["open"] == 64 and stats["rejected"]["total"] == 16, stats
            assert len(closed_by_server(socks, 16)) == 16
            close_all(socks[:10])  # ten go: the next ten are admitted again
            rx.until(lambda s: s["open"] == 54)
            socks += connect(rx.port, 10)
            stats = rx.until(lambda s: s["open"] == 64)
            assert stats["open"] == 64 and stats["rejected"]["total"] == 16, stats
        finally:
            close_all(socks)


def refuses_near_the_file_limit(script: Path, loop: str) -> None:
    """A maximum set above the file limit (10,000 of 128 descriptors): connections are still refused
    before accept() runs out, counted (``files``), and the listener keeps serving."""
    with child(script, loop, "10000") as rx:
        socks = connect(rx.port, 120)
        try:
            stats = rx.until(lambda s: s["open"] + s["rejected"]["files"] >= 120)
            assert stats["open"] + stats["rejected"]["files"] == 120, stats
            assert 40 < stats["open"] < LIMIT - 32, stats
            # uvloop hands each accepted socket over at once, so the guard keeps accept() clear of the limit;
            # asyncio accepts a whole burst first and may stall (counted) before the guard sees them
            assert loop == "asyncio" or stats["rejected"]["accept_failed"] == 0, stats
            refused = closed_by_server(socks, int(stats["rejected"]["files"]))
            assert len(refused) == stats["rejected"]["files"]
            close_all(refused)
            held = [s for s in socks if s not in refused]
            close_all(held[:5])
            rx.until(lambda s: s["open"] == stats["open"] - 5)
            again = connect(rx.port, 5)
            assert rx.until(lambda s: s["open"] == stats["open"])["open"] == stats["open"]
            close_all(again + held)
        finally:
            close_all(socks)


def survives_accept_out_of_files(script: Path, loop: str) -> None:
    """Every descriptor taken by something else: a connection cannot be accepted. asyncio's loop counts it
    (``accept_failed``) and retries after 1 s; uvloop closes it at once (libuv's reserve descriptor).
    Either way the process stays idle, and once descriptors are free again connections are served."""
    with child(script, loop, "10000") as rx:
        filled = rx.ask("fill")
        assert filled["errno"] == 24 and filled["filled"] > 50, filled  # EMFILE
        cpu0 = filled["cpu_s"]
        waiting = connect(rx.port, 3)  # the kernel completes the handshake; accept() is what fails
        try:
            if loop == "asyncio":
                stats = rx.until(lambda s: s["rejected"]["accept_failed"] >= 1)
                assert stats["rejected"]["accept_failed"] >= 1, stats
            else:
                assert len(closed_by_server(waiting, 3)) == 3
            time.sleep(1.5)  # (a spinning listener would burn this second of CPU; measured, not waited on)
            stats = rx.ask()
            assert stats["cpu_s"] - cpu0 < 0.5 and stats["open"] == 0, stats
            rx.ask("free")
            served = connect(rx.port, 2)
            want = 2 if loop == "uvloop" else 5  # asyncio's 3 waited in the backlog and are admitted now
            stats = rx.until(lambda s: s["open"] == want)
            assert stats["open"] == want, stats
            close_all(served)
        finally:
            close_all(waiting)
