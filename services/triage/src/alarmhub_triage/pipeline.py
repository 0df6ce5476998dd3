"""The triage pipeline: the order of the stages, in one place.

    dedup → throttle (swingers) → correlate → score → decide

Each stage lives in ``stages/`` and knows nothing of Kafka; Redis is reached through
:class:`~alarmhub_triage.state.TriageState`. Dedup, throttle and correlate only read and write the
shared state, so they run as one stage (``stages/shared.py``): one script call per batch. The rules
are read once per batch (``rules()``), so a hot reload never splits a batch between two versions.

The result holds the decided items: :meth:`BatchResult.encoded` writes each decision's JSON straight
from them (the service's hot path), :attr:`BatchResult.decisions` builds the pydantic models (tests,
the evaluation). Both are the same message, byte for byte: ``value == decision.to_bytes()``.
"""

from __future__ import annotations

import functools
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from alarmhub_events import AlarmEvent, Decision, Reason, Timestamp, TriagedAlarm, utcnow
from pydantic import TypeAdapter

from .model import Item, uuid5_str
from .ruleset import RuleSet
from .stages import Context, Stage
from .stages.decide import DecideStage
from .stages.score import ScoreStage
from .stages.shared import SharedStateStage
from .state import TriageState

__all__ = ["BatchResult", "Pipeline", "decision_event_id", "event_json"]


def decision_event_id(event_id: uuid.UUID | str) -> uuid.UUID:
    """The decision about one raw event has a stable id, so a replayed batch republishes the same ids."""
    return uuid.UUID(uuid5_str(f"decision:{event_id}"))


_TIMESTAMP: TypeAdapter[datetime] = TypeAdapter(Timestamp)
#: What ``AlarmEvent.to_bytes()`` writes after ``{"event_id":"<36-char id>``: a record our own encoder
#: wrote (every ingest service) goes into the decision as consumed; anything else is re-encoded.
_OUR_ENCODER_AT_49 = b'","schema":"alarmhub.alarm.v1","kind":"'


def event_json(ev: AlarmEvent, raw: bytes | None) -> bytes:
    """The event as it goes inside a decision: the consumed bytes when our encoder wrote them
    (they validated as ``ev`` at the consumer), else ``ev`` encoded again."""
    if (raw is not None and raw.startswith(b'{"event_id":"') and raw.startswith(_OUR_ENCODER_AT_49, 49)
            and raw.endswith(b"}")):
        return raw
    return ev.to_bytes()


@functools.lru_cache(maxsize=4096)
def _reason_json(r: Reason) -> bytes:
    # Reasons are frozen and mostly repeat (the score stage builds each distinct one once): encode
    # each once. Field order and exclude_none as pydantic writes them.
    return orjson.dumps({k: v for k, v in r.__dict__.items() if v is not None})


@dataclass
class BatchResult:
    """One batch's outcome: the items that made a decision (in order), and why the others made none."""

    decided: list[Item] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)
    items: list[Item] = field(default_factory=list)
    rule_version: str = ""
    decided_at: datetime = field(default_factory=utcnow)

    @functools.cached_property
    def decisions(self) -> list[TriagedAlarm]:
        return [TriagedAlarm(
            event_id=uuid.UUID(it.decision_id), incident_id=it.incident_id, event=it.event,
            decision=Decision(it.decision), score=it.score, priority=it.priority, reasons=it.reasons,
            rule_version=self.rule_version, major_event=it.major_event, decided_at=self.decided_at)
            for it in self.decided]

    def encoded(self) -> list[tuple[str, bytes]]:
        """``(key, value)`` of every decision: the JSON ``TriagedAlarm.to_bytes()`` writes, without the models."""
        head = b'","schema":"alarmhub.triaged.v1","incident_id":"'
        tail = b',"rule_version":' + orjson.dumps(self.rule_version) + b',"major_event":'
        at = b',"decided_at":' + orjson.dumps(_TIMESTAMP.dump_python(self.decided_at, mode="json")) + b"}"
        out = []
        for it in self.decided:
            inc = it.incident_id or ""
            out.append((inc, b"".join((
                b'{"event_id":"', it.decision_id.encode(), head, inc.encode(), b'","event":',
                event_json(it.event, it.raw), b',"decision":"', (it.decision or "").encode(), b'","score":',
                str(it.score).encode(), b',"priority":', str(it.priority).encode(), b',"reasons":[',
                b",".join([_reason_json(r) for r in it.reasons]), b"]", tail,
                b"true" if it.major_event else b"false", at))))
        return out


class Pipeline:
    def __init__(self, state: TriageState, rules: Callable[[], RuleSet],
                 now: Callable[[], datetime] = utcnow) -> None:
        self._state = state
        self._rules = rules
        self._now = now
        # dedup → throttle → correlate in one call to the shared state, then the pure stages
        self.stages: list[Stage] = [SharedStateStage(), ScoreStage(), DecideStage()]

    async def run(self, events: Sequence[AlarmEvent], raws: Sequence[bytes] | None = None) -> BatchResult:
        """Triage one batch (a partition's records, in order). ``raws``: each event's consumed bytes."""
        ctx = Context(rules=self._rules(), state=self._state, now=self._now)
        all_items = ([Item.of(ev) for ev in events] if raws is None
                     else [Item.of(ev, raw) for ev, raw in zip(events, raws, strict=True)])
        items = all_items
        for stage in self.stages:
            if not items:
                break
            items = await stage.exec(items, ctx)
        res = BatchResult(decided=items, items=all_items, rule_version=ctx.rules.rule_version,
                          decided_at=self._now())
        for it in all_items:
            if it.dropped:
                res.dropped[it.dropped] += 1
        for it in items:
            assert it.incident_id is not None and it.decision is not None
            it.decision_id = uuid5_str(f"decision:{it.record.event_id}")
        return res
