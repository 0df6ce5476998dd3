"""The triage pipeline: the order of the stages, in one place.

    dedup → throttle (swingers) → correlate → score → decide

Each stage lives in ``stages/`` and knows nothing of Kafka; Redis is reached through
:class:`~alarmhub_triage.state.TriageState`, one pipelined round trip per stage per batch. The rules
are read once per batch (``rules()``), so a hot reload never splits a batch between two versions.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from alarmhub_events import AlarmEvent, Decision, TriagedAlarm, utcnow

from .model import Item, uuid5_str
from .ruleset import RuleSet
from .stages import Context, Stage
from .stages.correlate import CorrelateStage
from .stages.decide import DecideStage
from .stages.dedup import DedupStage
from .stages.score import ScoreStage
from .stages.throttle import ThrottleStage
from .state import TriageState

__all__ = ["BatchResult", "Pipeline", "decision_event_id"]


def decision_event_id(event_id: uuid.UUID | str) -> uuid.UUID:
    """The decision about one raw event has a stable id, so a replayed batch republishes the same ids."""
    return uuid.UUID(uuid5_str(f"decision:{event_id}"))


@dataclass
class BatchResult:
    decisions: list[TriagedAlarm] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)
    items: list[Item] = field(default_factory=list)


class Pipeline:
    def __init__(self, state: TriageState, rules: Callable[[], RuleSet],
                 now: Callable[[], datetime] = utcnow) -> None:
        self._state = state
        self._rules = rules
        self._now = now
        self.stages: list[Stage] = [DedupStage(), ThrottleStage(), CorrelateStage(), ScoreStage(), DecideStage()]

    async def run(self, events: Sequence[AlarmEvent]) -> BatchResult:
        ctx = Context(rules=self._rules(), state=self._state, now=self._now)
        all_items = [Item.of(ev) for ev in events]
        items = all_items
        for stage in self.stages:
            if not items:
                break
            items = await stage.exec(items, ctx)
        res = BatchResult(items=all_items)
        for it in all_items:
            if it.dropped:
                res.dropped[it.dropped] += 1
        decided_at = self._now()
        for it in items:
            assert it.incident_id is not None and it.decision is not None
            res.decisions.append(TriagedAlarm(
                event_id=uuid.UUID(uuid5_str(f"decision:{it.record.event_id}")),
                incident_id=it.incident_id, event=it.event,
                decision=Decision(it.decision), score=it.score, priority=it.priority, reasons=it.reasons,
                rule_version=ctx.rules.rule_version, major_event=it.major_event, decided_at=decided_at))
        return res
