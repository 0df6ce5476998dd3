"""Decision per incident update: dispatch, verify, suppress or trouble. Pure.

- Troubles (supervision failures, device faults, swinger reports) are ``trouble``: for the alarm
  company, never a police dispatch.
- An incident holding a panic, duress, fire, medical or vehicle SOS is ``dispatch`` whatever the score.
- Otherwise the score decides against ``rules.thresholds``; a vehicle's ``verify`` says to ask its
  registered owner first (``verify_with_owner``).
- A spike of distinct sites alarming in one map cell marks the decision ``major_event``.
Each decision ends with a one-sentence summary reason (``decision``), in English and Chinese.
"""

from __future__ import annotations

import functools

from alarmhub_events import AlarmKind, Decision, Qualifier, Reason

from ..model import Item
from ..ruleset import RuleSet
from ._base import Context
from .score import kind_zh

__all__ = ["DecideStage", "decide"]

_DECISION_ZH = {
    Decision.DISPATCH: "立即出警",
    Decision.VERIFY: "先核实（回拨确认）",
    Decision.SUPPRESS: "暂不出警（保留可查）",
    Decision.TROUBLE: "设备故障，通知报警公司",
}


def decide(it: Item, rules: RuleSet) -> tuple[Decision, int, bool, list[Reason]]:
    new = Qualifier.NEW
    immediate_kinds, informational = rules.immediate, rules.informational
    immediate: AlarmKind | None = None
    kinds: list[AlarmKind] = []
    for x in it.history or [it.record]:
        if x.qualifier is new:
            if immediate is None and x.kind in immediate_kinds:
                immediate = x.kind
            if x.kind not in informational:
                kinds.append(x.kind)
    if not kinds:
        kinds = [it.event.kind]
    priority = min(map(rules.priority_of, set(kinds)))
    if it.swinger_report or it.corr_key.startswith("t:"):
        decision = Decision.TROUBLE
        priority = 5
    elif immediate is not None:
        decision = Decision.DISPATCH
        priority = 1
    elif it.score >= rules.thresholds.dispatch:
        decision = Decision.DISPATCH
    elif it.score >= rules.thresholds.verify:
        decision = Decision.VERIFY
        priority = min(5, priority + 1)
    else:
        decision = Decision.SUPPRESS
        priority = min(5, priority + 2)
    major = it.area_sites >= rules.area.sites and decision != Decision.TROUBLE
    owner = decision == Decision.VERIFY and it.corr_key.startswith("v:")
    extra = _explain(
        decision,
        it.score,
        kinds[0],
        immediate if decision == Decision.DISPATCH else None,
        it.area_sites if major else 0,
        int(rules.area.window_s // 60),
        tuple(it.reasons[1:]),
        (rules.vehicle.verify_text, rules.vehicle.verify_text_zh) if owner else None,
    )
    return decision, priority, major, list(extra)


@functools.lru_cache(maxsize=8192)
def _explain(
    decision: Decision,
    score: int,
    kind: AlarmKind,
    immediate: AlarmKind | None,
    area_sites: int,
    area_min: int,
    reasons: tuple[Reason, ...],
    verify_owner: tuple[str, str] | None = None,
) -> tuple[Reason, ...]:
    """The reasons decide adds and the one-sentence summary. Decisions repeat: each distinct one is built once."""
    extra: list[Reason] = []
    if verify_owner is not None:
        # one ambiguous vehicle signal (ignition while armed, still parked): the owner knows at once
        extra.append(Reason(code="verify_with_owner", text=verify_owner[0], text_zh=verify_owner[1]))
    if immediate is not None:
        k = immediate
        extra.append(
            Reason(
                code="immediate",
                text=f"{k.value.replace('_', ' ')}: dispatched at once whatever the score",
                text_zh=f"{kind_zh(k)}：无论评分高低立即出警",
            )
        )
    if area_sites:
        extra.append(
            Reason(
                code="area_spike",
                text=f"{area_sites} sites alarmed in this area within {area_min} min: major event",
                text_zh=f"{area_min} 分钟内本区域 {area_sites} 处报警：重大事件",
            )
        )
    head = [r.text for r in (*reasons, *extra) if r.code != "immediate"]
    head_zh = [r.text_zh or r.text for r in (*reasons, *extra) if r.code != "immediate"]
    text = (
        f"{decision.value.capitalize()} (score {score}): {kind.value.replace('_', ' ')}"
        + ("; " + "; ".join(head) if head else "")
        + "."
    )
    text_zh = (
        f"{_DECISION_ZH[decision]}（评分 {score}）：{kind_zh(kind)}"
        + ("；" + "；".join(head_zh) if head_zh else "")
        + "。"
    )
    return (*extra, Reason(code="decision", text=text, text_zh=text_zh))


class DecideStage:
    """Decides every item; an incident of one signal is decided once per distinct input (the score
    stage's ``memo_key``, which also fixes the score and its reasons, and the area count when it makes
    a major event) and the result reused while the rules stay the same."""

    name = "decide"

    def __init__(self, memo_size: int = 20_000) -> None:
        self._memo: dict[tuple[object, ...], tuple[Decision, int, bool, list[Reason]]] = {}
        self._memo_rules: RuleSet | None = None
        self._memo_size = memo_size

    async def exec(self, items: list[Item], ctx: Context) -> list[Item]:
        rules = ctx.rules
        memo = self._memo
        if self._memo_rules is not rules:
            memo.clear()
            self._memo_rules = rules
        spike = rules.area.sites
        for it in items:
            if it.memo_key is None:
                decision, it.priority, it.major_event, extra = decide(it, rules)
            else:
                # the area count matters only from the spike threshold on (major event and its text)
                key = (it.memo_key, it.area_sites if it.area_sites >= spike else -1)
                hit = memo.get(key)
                if hit is None:
                    if len(memo) >= self._memo_size:
                        memo.clear()
                    hit = memo[key] = decide(it, rules)
                decision, it.priority, it.major_event, extra = hit
            it.decision = decision.value
            it.reasons = [*it.reasons, *extra]
        return items
