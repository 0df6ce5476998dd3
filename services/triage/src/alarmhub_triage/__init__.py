"""alarmhub triage: dedup, correlation, authenticity score and decision for every alarm (issue 6).

``alarms.raw`` → dedup → throttle → correlate → score → decide → ``alarms.triaged`` (keyed by incident id).
"""

from .config import TriageSettings
from .pipeline import BatchResult, Pipeline, decision_event_id
from .ruleset import RulesError, RuleSet, load_rules, parse_rules
from .state import TriageState

__all__ = [
    "BatchResult",
    "Pipeline",
    "RuleSet",
    "RulesError",
    "TriageSettings",
    "TriageState",
    "decision_event_id",
    "load_rules",
    "parse_rules",
]
