"""The rules file: the packaged defaults validate; broken files are rejected with a reason."""

from __future__ import annotations

import pytest
from alarmhub_events import AlarmKind
from alarmhub_triage import RulesError, load_rules, parse_rules
from alarmhub_triage.ruleset import DEFAULT_RULES


def test_default_rules_validate_and_carry_a_version() -> None:
    r = load_rules()
    assert r.rule_version.startswith(r.version + "#")
    assert {AlarmKind.PANIC, AlarmKind.DURESS, AlarmKind.FIRE, AlarmKind.VEHICLE_SOS} <= r.immediate
    assert r.cancel.window_s >= 300  # SIA CP-01: at least 5 minutes
    assert 1800 <= r.confirmation.window_s <= 3600  # BS 8243: 30-60 min
    assert r.thresholds.verify <= r.thresholds.dispatch


def test_an_edit_changes_the_rule_version_even_without_a_version_bump() -> None:
    text = DEFAULT_RULES.read_text(encoding="utf-8")
    a = parse_rules(text)
    b = parse_rules(text.replace("dispatch: 70", "dispatch: 75"))
    assert a.version == b.version and a.rule_version != b.rule_version
    assert b.thresholds.dispatch == 75


@pytest.mark.parametrize(
    "bad, needle",
    [
        ("version: x\nthresholds: {dispatch: 30, verify: 60}\n", "verify"),
        ("version: x\npriors: {burglarly: 40}\n", "unknown kinds"),
        ("version: x\nimmediate: [panic]\ntrouble: [panic]\n", "both"),
        ("version: x\nsurprise: 1\n", "surprise"),
        ("- just\n- a list\n", "mapping"),
        ("version: [unclosed\n", "YAML"),
    ],
)
def test_invalid_rules_are_rejected_with_a_reason(bad: str, needle: str) -> None:
    with pytest.raises(RulesError, match=needle):
        parse_rules(bad)
