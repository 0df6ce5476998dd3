"""Noise control for camera analytics: coalesce repeats, publish state changes, rate-limit floods.

Pure (the clock is passed in). Keyed by (camera, rule), where the rule is the ISAPI event type plus
region, the ONVIF rule token, or the GB/T 28181 alarm type.

- An ``active`` report on an idle key is news: published as ``new``.
- Further ``active`` reports while the key is active are *coalesced*: counted, not published. A key
  that hears nothing for ``hold_s`` goes idle by itself, because many cameras (ISAPI pulses, GB/T 28181
  alarms) never send an explicit end.
- ``inactive`` on an active key is published as ``restore``; on an idle key it is dropped.
- A camera that changes state more than ``burst`` times within ``window_s`` is flooding: changes
  beyond the budget are suppressed (counted) until the window frees up. The first change is never
  lost, since a budget is only spent by published events; the count of what was suppressed rides on
  the next published event as ``attributes.suppressed``.
- Memory is bounded: at most ``max_keys`` keys, least recently seen evicted first.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Decision", "NoiseGate", "Verdict"]


class Decision(StrEnum):
    NEW = "new"
    RESTORE = "restore"
    COALESCED = "coalesced"
    IDLE = "idle"
    RATE_LIMITED = "rate_limited"


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    suppressed: int = 0  # repeats/suppressions since the last published event of this camera+rule

    @property
    def publish(self) -> bool:
        return self.decision in (Decision.NEW, Decision.RESTORE)


@dataclass
class _State:
    active: bool
    last_seen: float
    suppressed: int = 0


class NoiseGate:
    def __init__(
        self, *, hold_s: float = 60.0, burst: int = 10, window_s: float = 60.0, max_keys: int = 500_000
    ) -> None:
        self._hold = hold_s
        self._burst = burst
        self._window = window_s
        self._max_keys = max_keys
        self._states: OrderedDict[tuple[str, str], _State] = OrderedDict()
        self._published: dict[str, deque[float]] = {}

    def __len__(self) -> int:
        return len(self._states)

    def _budget_ok(self, camera: str, now: float) -> bool:
        q = self._published.get(camera)
        if q is None:
            return True
        while q and now - q[0] >= self._window:
            q.popleft()
        if not q:
            del self._published[camera]
            return True
        return len(q) < self._burst

    def _spend(self, camera: str, now: float) -> None:
        self._published.setdefault(camera, deque()).append(now)

    def offer(self, camera: str, rule: str, active: bool, now: float) -> Verdict:
        key = (camera, rule)
        st = self._states.get(key)
        if st is not None:
            self._states.move_to_end(key)
            if st.active and now - st.last_seen >= self._hold:
                st.active = False  # held too long without a word: the episode ended
        if active:
            if st is not None and st.active:
                st.last_seen = now
                st.suppressed += 1
                return Verdict(Decision.COALESCED, st.suppressed)
            decision = Decision.NEW
        else:
            if st is None or not st.active:
                if st is not None:
                    st.last_seen = now
                return Verdict(Decision.IDLE)
            decision = Decision.RESTORE
        if st is None:
            st = _State(active=False, last_seen=now)
            self._states[key] = st
            while len(self._states) > self._max_keys:
                self._states.popitem(last=False)
        if not self._budget_ok(camera, now):
            st.suppressed += 1
            st.last_seen = now
            # keep the state in step with the camera, so a later change is judged against reality
            st.active = active
            return Verdict(Decision.RATE_LIMITED, st.suppressed)
        self._spend(camera, now)
        suppressed, st.suppressed = st.suppressed, 0
        st.active = active
        st.last_seen = now
        return Verdict(decision, suppressed)

    def pulse(self, camera: str, rule: str, now: float) -> Verdict:
        """An instantaneous event (line crossed): always 'new' unless repeated within hold or flooding."""
        return self.offer(camera, rule, True, now)
