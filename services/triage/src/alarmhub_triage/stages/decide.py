"""Decision per incident update: dispatch, verify, suppress or trouble. Pure.

- Troubles (supervision failures, device faults, swinger reports) are ``trouble``: for the alarm
  company, never a police dispatch.
- An incident holding a panic, duress, fire, medical or vehicle SOS is ``dispatch`` whatever the score.
- Otherwise the score decides against ``rules.thresholds``.
- A spike of distinct sites alarming in one map cell marks the decision ``major_event``.
Each decision ends with a one-sentence summary reason (``decision``), in English and Chinese.
"""

from __future__ import annotations

from alarmhub_events import Decision, Qualifier, Reason

from ..model import Item
from ..ruleset import RuleSet
from ._base import Context
from .score import kind_zh

__all__ = ["DecideStage", "decide"]

_DECISION_ZH = {Decision.DISPATCH: "立即出警", Decision.VERIFY: "先核实（回拨确认）", Decision.SUPPRESS: "暂不出警（保留可查）",
                Decision.TROUBLE: "设备故障，通知报警公司"}


def decide(it: Item, rules: RuleSet) -> tuple[Decision, int, bool, list[Reason]]:
    extra: list[Reason] = []
    alarms = [x for x in (it.history or [it.record]) if x.qualifier == Qualifier.NEW]
    immediate = [x for x in alarms if x.kind in rules.immediate]
    kinds = [x.kind for x in alarms if x.kind not in rules.informational] or [it.event.kind]
    priority = min(rules.priority_of(k) for k in kinds)
    if it.swinger_report or it.corr_key.startswith("t:"):
        decision = Decision.TROUBLE
        priority = 5
    elif immediate:
        decision = Decision.DISPATCH
        priority = 1
        k = immediate[0].kind
        extra.append(Reason(code="immediate", text=f"{k.value.replace('_', ' ')}: dispatched at once whatever the score",
                            text_zh=f"{kind_zh(k)}：无论评分高低立即出警"))
    elif it.score >= rules.thresholds.dispatch:
        decision = Decision.DISPATCH
    elif it.score >= rules.thresholds.verify:
        decision = Decision.VERIFY
        priority = min(5, priority + 1)
    else:
        decision = Decision.SUPPRESS
        priority = min(5, priority + 2)
    major = it.area_sites >= rules.area.sites and decision != Decision.TROUBLE
    if major:
        extra.append(Reason(code="area_spike", text=f"{it.area_sites} sites alarmed in this area within "
                            f"{int(rules.area.window_s // 60)} min: major event",
                            text_zh=f"{int(rules.area.window_s // 60)} 分钟内本区域 {it.area_sites} 处报警：重大事件"))
    head = [r.text for r in (it.reasons[1:] + extra) if r.code != "immediate"]
    head_zh = [r.text_zh or r.text for r in (it.reasons[1:] + extra) if r.code != "immediate"]
    kind = kinds[0]
    text = (f"{decision.value.capitalize()} (score {it.score}): {kind.value.replace('_', ' ')}"
            + ("; " + "; ".join(head) if head else "") + ".")
    text_zh = f"{_DECISION_ZH[decision]}（评分 {it.score}）：{kind_zh(kind)}" + ("；" + "；".join(head_zh) if head_zh else "") + "。"
    summary = Reason(code="decision", text=text, text_zh=text_zh)
    return decision, priority, major, [*extra, summary]


class DecideStage:
    name = "decide"

    async def exec(self, items: list[Item], ctx: Context) -> list[Item]:
        for it in items:
            decision, it.priority, it.major_event, extra = decide(it, ctx.rules)
            it.decision = decision.value
            it.reasons = [*it.reasons, *extra]
        return items
