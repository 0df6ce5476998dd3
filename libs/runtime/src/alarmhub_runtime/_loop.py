"""How every service's ``__main__`` runs its top coroutine: on uvloop, with the cyclic GC tuned.

Why one place: each service had grown its own copy (three of five), and the two without it — dispatch
and ingest-camera — ran on asyncio's pure-Python selector loop, which in the end-to-end bench spent a
third of dispatch's samples in its socket-write path.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run_async"]

T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T], *, use_uvloop: bool = True, gc_tune: bool = True) -> T:
    """Run ``coro`` to completion in a new event loop and return its result.

    ``use_uvloop``: libuv's loop roughly halves asyncio's overhead per socket read, write and callback,
    which is most of an I/O-bound service's CPU besides its own decoding (measured per service in
    docs/). Falls back to asyncio where uvloop is not installed.

    ``gc_tune``: a service allocates many short-lived objects per message that reference counting
    frees; with CPython's default threshold the cyclic collector ran every 700 allocations and walked
    the young objects each time. Startup's objects (modules, models' schemas, rules) are moved out of
    its reach (``gc.freeze``) and young collections run 50x less often. ``run_service`` freezes again
    once the service started, taking what its start made (registries, route grids, clients): in
    ``bench/e2e.py`` at 400 alarms/s those cost 43–58 ms of full collections per 15 s in the DC-09
    receiver, 34–46 ms in ingest-gps and 12–17 ms in dispatch, none after.
    """
    if gc_tune:
        gc.freeze()
        gc.set_threshold(35_000, 20, 20)
    if use_uvloop:
        try:
            import uvloop
        except ImportError:  # pragma: no cover - a dependency on Linux and macOS
            pass
        else:
            return uvloop.run(coro)
    return asyncio.run(coro)
