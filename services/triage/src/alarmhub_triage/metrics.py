"""Prometheus metrics of triage, registered on the registry ``__main__`` builds. Labels are bounded."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["TriageMetrics"]


class TriageMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter("alarmhub_triage_events_total", "Raw alarm events consumed", registry=registry)
        self.decisions = Counter(
            "alarmhub_triage_decisions_total",
            "Decisions published, by decision",
            ["decision"],
            registry=registry,
        )
        self.dropped = Counter(
            "alarmhub_triage_dropped_total",
            "Events that produced no decision (duplicate, swinger_throttled, informational)",
            ["reason"],
            registry=registry,
        )
        self.suppressed = Counter(
            "alarmhub_triage_suppressed_total",
            "Suppress decisions, by the strongest negative reason",
            ["reason"],
            registry=registry,
        )
        self.major_events = Counter(
            "alarmhub_triage_major_events_total", "Decisions marked major_event", registry=registry
        )
        self.score = Histogram(
            "alarmhub_triage_score_points",
            "Authenticity scores of published decisions",
            buckets=(10, 20, 30, 40, 50, 60, 70, 80, 90, 100),
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "alarmhub_triage_batch_seconds",
            "Pipeline time per batch (Redis included)",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
            registry=registry,
        )
        self.rule_reloads = Counter(
            "alarmhub_triage_rule_reloads_total",
            "Rules file reloads, by result",
            ["result"],
            registry=registry,
        )
        self.rules_loaded_at = Gauge(
            "alarmhub_triage_rules_loaded_timestamp_seconds",
            "When the active rules were loaded",
            registry=registry,
        )
        self.verdicts = Counter(
            "alarmhub_triage_verdicts_total",
            "Dispatcher verdicts learned, by verdict",
            ["verdict"],
            registry=registry,
        )
