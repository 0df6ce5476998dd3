"""Link supervision, sans-IO: each account with a supervision interval must be heard from (NULL or any
message) within it; a silence is reported once, and so is the recovery.

``check(now)`` proposes transitions; the caller publishes them and then calls ``commit`` — if the
broker is down the transitions are proposed again at the next check, so none is lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from alarmhub_events import (
    AlarmEvent,
    AlarmKind,
    DeviceStatus,
    DeviceStatusKind,
    Location,
    Protocol,
    Qualifier,
    Source,
)

from .session import Account

__all__ = ["Supervisor", "Transition"]


@dataclass(frozen=True, slots=True)
class Transition:
    device_id: str
    state: Literal["missed", "restored"]
    account: Account
    last_seen: datetime
    at: datetime

    def events(self, receiver: str) -> tuple[DeviceStatus, AlarmEvent]:
        """The ``devices.status`` record and the trouble alarm (Contact ID 356, loss of central polling)."""
        missed = self.state == "missed"
        attrs = {
            "supervision_s": self.account.supervision_s,
            "last_seen": self.last_seen.isoformat(),
            "company": self.account.company,
        }
        status = DeviceStatus(
            device_id=self.device_id,
            protocol=Protocol.DC09_CID,
            status=DeviceStatusKind.SUPERVISION_MISSED if missed else DeviceStatusKind.SUPERVISION_RESTORED,
            occurred_at=self.at,
            received_at=self.at,
            attributes=attrs,
        )
        location = None
        if self.account.lat is not None and self.account.lon is not None:
            location = Location(lat=self.account.lat, lon=self.account.lon, source="registry")
        alarm = AlarmEvent(
            kind=AlarmKind.SUPERVISION,
            qualifier=Qualifier.NEW if missed else Qualifier.RESTORE,
            source=Source(
                protocol=Protocol.DC09_CID,
                device_id=self.device_id,
                account=self.account.account,
                receiver=f"R{receiver}",
                line=f"L{self.account.line}",
            ),
            code="E356" if missed else "R356",
            occurred_at=self.at,
            received_at=self.at,
            location=location,
            attributes={
                **attrs,
                "description": "Loss of central polling" if missed else "Polling restored",
                "generated_by": "receiver",
            },
            raw="",
        )
        return status, alarm


class Supervisor:
    """Tracks when each supervised account was last heard from."""

    def __init__(self, started: datetime, grace_s: float = 0.0) -> None:
        self._started = started
        self._grace = timedelta(seconds=grace_s)
        self._last: dict[str, datetime] = {}
        self._missed: dict[str, datetime] = {}  # device → when its miss was published
        self._accounts: dict[str, Account] = {}
        #: when this receiver learned that an account is supervised: its first deadline counts from there
        self._learned: dict[str, datetime] = {}

    def set_accounts(self, accounts: Mapping[tuple[str, str], Account], now: datetime | None = None) -> None:
        """The supervised accounts of a registry load. An account not supervised before (new, or its
        interval newly set) gets its first deadline from ``now`` (default: when supervision started)."""
        listed = {a.device_id for a in accounts.values()}
        self.update(accounts.values(), [d for d in self._accounts if d not in listed], now or self._started)

    def update(self, changed: Iterable[Account], gone: Iterable[str], now: datetime) -> None:
        """What a registry refresh changed, as :meth:`set_accounts` would take it for the whole table:
        accounts new or rewritten (supervised or not any more) and the device ids of accounts deleted."""
        for account in changed:
            device_id = account.device_id
            if account.supervision_s:
                self._accounts[device_id] = account
                self._learned.setdefault(device_id, now)
            else:
                self._accounts.pop(device_id, None)
                self._learned.pop(device_id, None)
        for device_id in gone:
            self._accounts.pop(device_id, None)
            self._learned.pop(device_id, None)

    @property
    def supervised(self) -> list[str]:
        return list(self._accounts)

    def supervises(self, device_id: str) -> bool:
        """Whether the account has a supervision interval (in the last registry load)."""
        return device_id in self._accounts

    def candidates(self, now: datetime) -> list[str]:
        """The accounts whose state :meth:`check` could change now on this receiver's own knowledge: those
        missed (a poll to another receiver restores them) and those past their deadline here (another
        receiver may have heard them). Only these need the shared state read — an account heard within its
        interval cannot be missed whatever the others heard, so a check reads Redis for about one account
        per interval each, not for every supervised account every few seconds."""
        return [
            device_id
            for device_id, account in self._accounts.items()
            if device_id in self._missed or self._overdue(account, self._last_heard(device_id), now)
        ]

    def _last_heard(self, device_id: str) -> datetime:
        """When the account was last heard, or when this receiver learned of it if that is later."""
        learned = self._learned.get(device_id, self._started)
        heard = self._last.get(device_id)
        return learned if heard is None or heard < learned else heard

    def _overdue(self, account: Account, last: datetime, now: datetime) -> bool:
        assert account.supervision_s is not None
        return now - last > timedelta(seconds=account.supervision_s) + self._grace

    def merge(
        self, last: Mapping[str, datetime], missed: Mapping[str, datetime], ids: Iterable[str] | None = None
    ) -> None:
        """Take in what the other receivers heard (newest wins) and which misses are published, and when
        (shared): for the accounts ``ids`` read (all when None) the published misses replace this
        receiver's own view."""
        for device_id, at in last.items():
            self.seen(device_id, at)
        if ids is None:
            self._missed = {d: at for d, at in missed.items() if d in self._accounts}
            return
        for device_id in ids:
            published = missed.get(device_id)
            if published is not None and device_id in self._accounts:
                self._missed[device_id] = published
            else:
                self._missed.pop(device_id, None)

    def seen(self, device_id: str, now: datetime) -> None:
        prev = self._last.get(device_id)
        if prev is None or now > prev:
            self._last[device_id] = now

    def check(self, now: datetime) -> list[Transition]:
        """Misses that are due, and restorations of missed accounts heard from since their miss.

        A restoration depends only on a message having arrived after the miss, not on this check
        running within the interval after it: under load a check may come later than that, and an
        account that polled once and then fell silent again is restored, then missed again.
        """
        out: list[Transition] = []
        for device_id, account in self._accounts.items():
            last = self._last_heard(device_id)
            missed_at = self._missed.get(device_id)
            if missed_at is not None:
                if last > missed_at:
                    out.append(Transition(device_id, "restored", account, last, now))
                continue
            if self._overdue(account, last, now):
                out.append(Transition(device_id, "missed", account, last, now))
        for device_id in list(self._missed):
            if device_id not in self._accounts:  # removed from the registry or no longer supervised
                del self._missed[device_id]
        return out

    def commit(self, transitions: list[Transition]) -> None:
        for t in transitions:
            if t.state == "missed":
                self._missed[t.device_id] = t.at
            else:
                self._missed.pop(t.device_id, None)

    @property
    def missed(self) -> frozenset[str]:
        return frozenset(self._missed)
