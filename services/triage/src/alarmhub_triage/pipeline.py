"""The triage pipeline: the order of the stages, in one place.

    dedup → throttle (swingers) → correlate → score → decide

Each stage lives in ``stages/`` and knows nothing of Kafka; Redis is reached through
:class:`~alarmhub_triage.state.TriageState`. Dedup, throttle and correlate only read and write the
shared state, so they run as one stage (``stages/shared.py``): one script call per chunk of a batch
(``CHUNK`` records), the chunks' calls one after the other while this process scores. The rules
are read once per batch (``rules()``), so a hot reload never splits a batch between two versions.

The result holds the decided items: :meth:`BatchResult.encoded` writes each decision's JSON straight
from them (the service's hot path), :attr:`BatchResult.decisions` builds the pydantic models (tests,
the evaluation). Both are the same message, byte for byte: ``value == decision.to_bytes()``.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

import orjson
from alarmhub_events import AlarmEvent, Decision, Reason, Timestamp, TriagedAlarm, utcnow
from pydantic import TypeAdapter

from .model import Item, uuid5_str
from .ruleset import RuleSet
from .stages import Context, Stage
from .stages.decide import DecideStage
from .stages.score import ScoreStage
from .stages.shared import SharedStateStage
from .state import StateAnswer, TriageState

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
    if (
        raw is not None
        and raw.startswith(b'{"event_id":"')
        and raw.startswith(_OUR_ENCODER_AT_49, 49)
        and raw.endswith(b"}")
    ):
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
        return [
            TriagedAlarm(
                event_id=uuid.UUID(it.decision_id),
                incident_id=it.incident_id,
                event=it.event,
                decision=Decision(cast(str, it.decision)),  # decided items have one
                score=it.score,
                priority=it.priority,
                reasons=it.reasons,
                rule_version=self.rule_version,
                major_event=it.major_event,
                decided_at=self.decided_at,
            )
            for it in self.decided
        ]

    def encoded(self) -> list[tuple[str, bytes]]:
        """``(key, value)`` of every decision: the JSON ``TriagedAlarm.to_bytes()`` writes, without the models."""
        head = b'","schema":"alarmhub.triaged.v1","incident_id":"'
        tail = b',"rule_version":' + orjson.dumps(self.rule_version) + b',"major_event":'
        at = b',"decided_at":' + orjson.dumps(_TIMESTAMP.dump_python(self.decided_at, mode="json")) + b"}"
        out = []
        for it in self.decided:
            inc = it.incident_id or ""
            out.append(
                (
                    inc,
                    b"".join(
                        (
                            b'{"event_id":"',
                            it.decision_id.encode(),
                            head,
                            inc.encode(),
                            b'","event":',
                            event_json(it.event, it.raw),
                            b',"decision":"',
                            (it.decision or "").encode(),
                            b'","score":',
                            str(it.score).encode(),
                            b',"priority":',
                            str(it.priority).encode(),
                            b',"reasons":[',
                            b",".join([_reason_json(r) for r in it.reasons]),
                            b"]",
                            tail,
                            b"true" if it.major_event else b"false",
                            at,
                        )
                    ),
                )
            )
        return out


#: Records per state call. A partition batch is cut into chunks of this size so that Redis runs one chunk's
#: script while this process scores the chunk before and packs the one after (bench/triage.py).
CHUNK = 256

Publish = Callable[[list[tuple[str, bytes]]], Awaitable[None]]


class Pipeline:
    def __init__(
        self,
        state: TriageState,
        rules: Callable[[], RuleSet],
        now: Callable[[], datetime] = utcnow,
        chunk: int = CHUNK,
    ) -> None:
        self._state = state
        self._rules = rules
        self._now = now
        self._chunk = max(1, chunk)
        # dedup → throttle → correlate in one call to the shared state, then the pure stages
        self._shared = SharedStateStage()
        self.stages: list[Stage] = [self._shared, ScoreStage(), DecideStage()]

    async def run(
        self,
        events: Sequence[AlarmEvent],
        raws: Sequence[bytes] | None = None,
        publish: Publish | None = None,
    ) -> BatchResult:
        """Triage one batch (a partition's records, in order). ``raws``: each event's consumed bytes.

        The batch goes to the shared state in chunks, strictly one after the other (chunk k+1's call is
        sent only once chunk k's answer is back, so Redis sees the batch's events in order, as one call
        would), and this process works while Redis does: it packs chunk k+1's requests while chunk k's
        script runs, and scores and decides chunk k while chunk k+1's runs. The requests depend on the
        events and the rules only, never on an earlier answer (``SharedStateStage.requests``).

        ``publish``: given, each chunk's decisions (``BatchResult.encoded()``) are handed to it as soon as
        they are made, and ``run`` returns only once every one of those calls has returned (the caller
        commits after ``run``: nothing is acknowledged before the broker confirmed it).
        """
        ctx = Context(rules=self._rules(), state=self._state, now=self._now)
        res = BatchResult(rule_version=ctx.rules.rule_version)
        all_items = res.items
        n = self._chunk
        starts = range(0, len(events), n)

        def items_of(i: int) -> list[Item]:
            # items are set up chunk by chunk: the first call goes out sooner, the rest overlap Redis
            chunk = (
                [Item.of(ev) for ev in events[i : i + n]]
                if raws is None
                else [Item.of(ev, raw) for ev, raw in zip(events[i : i + n], raws[i : i + n], strict=True)]
            )
            all_items.extend(chunk)
            return chunk

        if not starts:
            res.decided_at = self._now()
            return res
        if len(starts) == 1:
            await self._run_one(items_of(0), ctx, res, publish)
        else:
            await self._run_chunks(items_of, starts, ctx, res, publish)
        res.decided_at = self._now()
        for it in all_items:
            if it.dropped:
                res.dropped[it.dropped] += 1
        return res

    async def _run_one(
        self, chunk: list[Item], ctx: Context, res: BatchResult, publish: Publish | None
    ) -> None:
        """A batch of one chunk (the usual poll at a steady rate): nothing to overlap, so the state call and
        the publish are awaited in place — no task, no extra event-loop turn for either."""
        state = self._state
        answers = await state.triage_packed(state.pack(*self._shared.requests(chunk, ctx)))
        items = await self._decide(self._shared.apply(chunk, answers), ctx)
        res.decided += items
        if publish is not None and items:
            await publish(
                BatchResult(decided=items, rule_version=res.rule_version, decided_at=self._now()).encoded()
            )

    async def _run_chunks(
        self,
        items_of: Callable[[int], list[Item]],
        starts: range,
        ctx: Context,
        res: BatchResult,
        publish: Publish | None,
    ) -> None:
        """Several chunks: each chunk's state call overlaps the packing of the next and the scoring of the one
        before; each chunk's decisions are published as soon as made, all awaited before this returns."""
        shared, state = self._shared, self._state
        sends: list[asyncio.Task[None]] = []
        pending: asyncio.Task[list[StateAnswer]] | None = None
        finished = False
        try:
            chunk = items_of(0)
            pending = asyncio.ensure_future(state.triage_packed(state.pack(*shared.requests(chunk, ctx))))
            await asyncio.sleep(0)  # let it write its request
            for k in range(len(starts)):
                nxt_items = items_of(starts[k + 1]) if k + 1 < len(starts) else None
                nxt = state.pack(*shared.requests(nxt_items, ctx)) if nxt_items is not None else None
                assert pending is not None
                answers = await pending
                pending = None
                if nxt is not None:
                    pending = asyncio.ensure_future(state.triage_packed(nxt))
                    await asyncio.sleep(0)  # let it write its request before this chunk is scored
                items = await self._decide(shared.apply(chunk, answers), ctx)
                chunk = nxt_items or []
                res.decided += items
                if publish is not None and items:
                    part = BatchResult(decided=items, rule_version=res.rule_version, decided_at=self._now())
                    sends.append(asyncio.ensure_future(publish(part.encoded())))
            finished = True
        finally:
            if pending is not None:
                pending.cancel()
            if sends:
                # every publish started must be over before run returns or raises (no orphan writes)
                done = await asyncio.gather(*sends, return_exceptions=True)
                errors = [e for e in done if isinstance(e, BaseException)]
                if errors and finished:
                    raise errors[0]

    async def _decide(self, items: list[Item], ctx: Context) -> list[Item]:
        """The stages after the shared state (score, decide) on one chunk; each decision gets its id."""
        for stage in self.stages[1:]:
            if not items:
                break
            items = await stage.exec(items, ctx)
        for it in items:
            assert it.incident_id is not None and it.decision is not None
            it.decision_id = uuid5_str(f"decision:{it.record.event_id}")
        return items
