"""Login abuse limits (pure; the clock is passed in): exponential backoff per user and source, and a rate
limit per source — instead of locking an account, which let anyone lock dispatchers out.

- **Per user and source**: the first ``free_failures`` wrong passwords cost nothing; after that the
  next attempt from that source for that user waits 1 s, 2 s, 4 s … up to ``max_delay_s``. The same
  person signing in from another workstation is not slowed by a stranger's failures.
- **Per source**: at most ``per_source_per_min`` attempts a minute, whatever the user names (password
  spraying across accounts), each of which would cost an argon2 hash.

Refused attempts do not reach argon2. The state is per process and bounded (least recently used
entries go first); behind a TLS terminator the source is taken from ``ALARMHUB_DISPATCH_TRUSTED_PROXIES``.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Any

__all__ = ["LoginGuard"]


class LoginGuard:
    def __init__(
        self,
        *,
        free_failures: int = 3,
        max_delay_s: float = 60.0,
        per_source_per_min: int = 30,
        max_entries: int = 100_000,
    ) -> None:
        self.free_failures = free_failures
        self.max_delay_s = max_delay_s
        self.per_source_per_min = per_source_per_min
        self.max_entries = max_entries
        self._failures: OrderedDict[tuple[str, str], tuple[int, float]] = OrderedDict()
        self._attempts: OrderedDict[str, deque[float]] = OrderedDict()

    def check(self, user: str, source: str, now: float) -> float | None:
        """Seconds to wait before this attempt may be tried, or None (and the attempt is counted)."""
        recent = self._attempts.get(source)
        if recent is None:
            recent = self._attempts[source] = deque()
            self._trim(self._attempts)
        self._attempts.move_to_end(source)
        while recent and recent[0] <= now - 60.0:
            recent.popleft()
        if len(recent) >= self.per_source_per_min:
            return max(0.001, recent[0] + 60.0 - now)
        failed = self._failures.get((user, source))
        if failed is not None:
            count, last = failed
            if count >= self.free_failures:
                delay = min(self.max_delay_s, 2.0 ** (count - self.free_failures))
                if now < last + delay:
                    return last + delay - now
        recent.append(now)
        return None

    def failed(self, user: str, source: str, now: float) -> None:
        count = self._failures.get((user, source), (0, now))[0]
        self._failures[(user, source)] = (count + 1, now)
        self._failures.move_to_end((user, source))
        self._trim(self._failures)

    def succeeded(self, user: str, source: str) -> None:
        self._failures.pop((user, source), None)

    def clear_user(self, user: str) -> None:
        """A supervisor reset the person's password: their backoff starts afresh everywhere."""
        for key in [k for k in self._failures if k[0] == user]:
            del self._failures[key]

    def _trim(self, table: OrderedDict[Any, Any]) -> None:
        while len(table) > self.max_entries:
            table.popitem(last=False)
