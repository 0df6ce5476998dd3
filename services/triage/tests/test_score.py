"""Pure tests of the score and decision: hand-built incidents, no Redis, no Kafka."""

from __future__ import annotations

import uuid

import pytest
from alarmhub_events import Decision
from alarmhub_triage import RuleSet
from alarmhub_triage.model import Item, Record
from alarmhub_triage.stages.decide import decide
from alarmhub_triage.stages.score import score

from .conftest import MakeEvent


def incident(*events: object, key: str = "s:L1#1", verdicts: tuple[int, int] = (0, 0), area: int = 0) -> Item:
    recs = [Record.of(e) for e in events]  # type: ignore[arg-type]
    it = Item.of(events[-1])  # type: ignore[arg-type]
    it.history, it.corr_key, it.verdicts, it.area_sites = recs, key, verdicts, area
    it.incident_id = uuid.uuid4()
    return it


def decided(it: Item, rules: RuleSet) -> tuple[int, Decision, int, bool, set[str]]:
    it.score, it.reasons = score(it, rules)
    d, prio, major, extra = decide(it, rules)
    return it.score, d, prio, major, {r.code for r in [*it.reasons, *extra]}


@pytest.mark.parametrize("after_s, cancelled", [(60, True), (299, True), (301, False)])
def test_the_cancel_window_is_five_minutes(
    ev: MakeEvent, rules: RuleSet, after_s: int, cancelled: bool
) -> None:
    it = incident(ev("burglary"), ev("cancel", code="E406", at_s=after_s))
    _, d, *_, codes = decided(it, rules)
    assert ("cancel_in_window" in codes) is cancelled
    assert d == (Decision.SUPPRESS if cancelled else Decision.VERIFY)


def test_a_closing_is_not_a_cancel(ev: MakeEvent, rules: RuleSet) -> None:
    it = incident(ev("burglary"), ev("open_close", code="R401", qualifier="restore", at_s=30))
    assert "cancel_in_window" not in decided(it, rules)[-1]


def test_one_confirmation_lifts_a_burglary_from_verify_to_dispatch(ev: MakeEvent, rules: RuleSet) -> None:
    alone = decided(incident(ev("burglary", zone="001")), rules)
    assert alone[1] == Decision.VERIFY
    for second in (
        ev("burglary", zone="005", at_s=600),
        ev("intrusion", device="cam-1", protocol="onvif", zone="1", at_s=60),
    ):
        s, d, *_ = decided(incident(ev("burglary", zone="001"), second), rules)
        assert d == Decision.DISPATCH and s >= rules.thresholds.dispatch


def test_history_moves_the_score_both_ways_and_is_capped(ev: MakeEvent, rules: RuleSet) -> None:
    base = decided(incident(ev("burglary")), rules)[0]
    falsy = decided(incident(ev("burglary"), verdicts=(0, 50)), rules)[0]
    truthy = decided(incident(ev("burglary"), verdicts=(40, 0)), rules)[0]
    assert falsy < base < truthy
    assert truthy - base <= rules.history.max_points and base - falsy <= rules.history.max_points
    assert decided(incident(ev("burglary"), verdicts=(1, 0)), rules)[0] == base  # under min_verdicts


@pytest.mark.parametrize("kind", ["panic", "duress", "fire", "medical", "vehicle_sos"])
def test_immediate_kinds_dispatch_with_priority_one(ev: MakeEvent, rules: RuleSet, kind: str) -> None:
    it = incident(ev(kind), ev("cancel", code="E406", at_s=20), verdicts=(0, 100))
    _, d, prio, _, codes = decided(it, rules)
    assert d == Decision.DISPATCH and prio == 1 and "immediate" in codes


def test_troubles_never_dispatch(ev: MakeEvent, rules: RuleSet) -> None:
    _, d, prio, major, _ = decided(incident(ev("supervision", code="E350"), key="t:L1#1", area=99), rules)
    assert d == Decision.TROUBLE and prio == 5 and not major


def test_priority_drops_with_the_decision(ev: MakeEvent, rules: RuleSet) -> None:
    assert decided(incident(ev("burglary")), rules)[2] == rules.priority_of(ev("burglary").kind) + 1
    assert decided(incident(ev("motion", zone="1")), rules)[1] == Decision.SUPPRESS


def test_the_summary_reads_as_one_sentence_in_each_language(ev: MakeEvent, rules: RuleSet) -> None:
    it = incident(ev("burglary", zone="001"), ev("burglary", zone="002", at_s=30))
    it.score, it.reasons = score(it, rules)
    summary = decide(it, rules)[3][-1]
    assert summary.text.startswith("Dispatch (score 85): burglary; 2 different zones")
    assert summary.text_zh and summary.text_zh.startswith("立即出警（评分 85）：入侵报警；")
