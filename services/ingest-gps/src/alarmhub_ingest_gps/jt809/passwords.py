"""JT/T 809 login passwords checked off the event loop, in a bounded pool of threads.

A platform's password is a PBKDF2 hash (``alarmhub_store.hash_password``): tens of milliseconds of CPU
per check, more with a stronger iteration count. Run on the event loop it stalled every link of the
gateway for that long per login attempt; here at most ``threads`` checks run at once, in worker threads
(``hashlib.pbkdf2_hmac`` releases the GIL), and the loop keeps serving. Who can make a check run at all is
already bounded: the session checks the source address and the GNSS centre first (docs/security.md).
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from alarmhub_store import verify_password

__all__ = ["PasswordPool"]


class PasswordPool:
    """``await verify(stored, given)`` in at most ``threads`` threads; ``running`` is how many run now and
    ``peak`` the most that ran at once."""

    def __init__(self, threads: int = 2) -> None:
        self.threads = max(1, threads)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._running = 0
        self.peak = 0

    def _check(self, stored: str, given: str) -> bool:
        with self._lock:
            self._running += 1
            self.peak = max(self.peak, self._running)
        try:
            return verify_password(stored, given)
        finally:
            with self._lock:
                self._running -= 1

    @property
    def running(self) -> int:
        return self._running

    async def verify(self, stored: str, given: str) -> bool:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="jt809-hash")
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._check, stored, given)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
