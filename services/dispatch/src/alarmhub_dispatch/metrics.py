"""Prometheus metrics of the dispatch service (bounded labels only)."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["DispatchMetrics", "stage_timer"]


def stage_timer(hist: Histogram) -> Callable[[str], None]:
    """A function that records the time since its previous call (or creation) under a stage's name."""
    last = time.perf_counter()

    def mark(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        hist.labels(name).observe(now - last)
        last = now

    return mark


class DispatchMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.incidents_opened = Counter(
            "alarmhub_dispatch_incidents_opened_total",
            "Incidents opened, by decision",
            ["decision"],
            registry=registry,
        )
        self.routes = Counter(
            "alarmhub_dispatch_routes_total", "Routing decisions, by method", ["method"], registry=registry
        )
        self.replays = Counter(
            "alarmhub_dispatch_replays_total", "Triage decisions already applied (skipped)", registry=registry
        )
        self.events_published = Counter(
            "alarmhub_dispatch_incident_events_published_total",
            "Lifecycle events published on incidents.events",
            registry=registry,
        )
        self.actions = Counter(
            "alarmhub_dispatch_actions_total", "Dispatcher actions", ["action"], registry=registry
        )
        self.escalations = Counter(
            "alarmhub_dispatch_escalations_total",
            "Timer escalations, by new level",
            ["level"],
            registry=registry,
        )
        self.ack_seconds = Histogram(
            "alarmhub_dispatch_ack_seconds",
            "Time from opening to acknowledgement",
            buckets=(5, 15, 30, 60, 120, 300, 600, 1800),
            registry=registry,
        )
        self.stream_clients = Gauge("alarmhub_dispatch_stream_clients", "Open SSE streams", registry=registry)
        self.webhook_attempts = Counter(
            "alarmhub_dispatch_webhook_attempts_total",
            "Webhook delivery attempts, by resulting state",
            ["result"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "alarmhub_dispatch_batch_seconds", "Time to apply one batch of decisions", registry=registry
        )
        self.batch_stage_seconds = Histogram(
            "alarmhub_dispatch_batch_stage_seconds",
            "Time spent in each stage of applying one partition's batch: locate (registry look-ups), pool_wait "
            "(waiting for a PostgreSQL connection), lock (incidents locked and replays found), "
            "write (inserts/updates/audit/webhooks), commit, "
            "push (SSE fan-out); publish (one run of the background outbox publisher) and its steps: "
            "outbox_read, outbox_send (Kafka, acks=all), outbox_mark",
            ["stage"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=registry,
        )
        self.gps_yield_seconds = Histogram(
            "alarmhub_dispatch_gps_yield_seconds",
            "Time a batch of GPS fixes waited for the alarm batches in hand before its track write "
            "(the alarm path's precedence; bounded by ALARMHUB_DISPATCH_GPS_YIELD_MAX_S)",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=registry,
        )
        self.stream_queue_seconds = Histogram(
            "alarmhub_dispatch_stream_queue_seconds",
            "Time an incident change waits in an SSE subscriber's queue before it is written to the stream",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.gps_owner_lookups = Counter(
            "alarmhub_dispatch_gps_owner_lookups_total",
            "Vehicle-command owner lookups: routed (to the gateway holding the session), fallback (configured URL), "
            "owner_gone (503), lookup_error (Redis failed: configured URL)",
            ["outcome"],
            registry=registry,
        )
        self.audit_failures = Counter(
            "alarmhub_dispatch_audit_write_failures_total",
            "Audit rows that could not be written (the call went on)",
            registry=registry,
        )
        self._console(registry)

    def _console(self, registry: CollectorRegistry) -> None:
        """What the console's live view runs (media_relay.py)."""
        self.live_relays = Gauge(
            "alarmhub_dispatch_live_relays",
            "Live-view relays (ffmpeg processes relaying a camera to HLS) running",
            registry=registry,
        )
