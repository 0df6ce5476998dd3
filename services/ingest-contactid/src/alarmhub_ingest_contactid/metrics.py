"""Prometheus metrics of the DC-09 receiver. Labels are bounded: token, result, reason, transport."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ContactIdMetrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ContactIdMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        p = "alarmhub_ingest_contactid"
        self.messages = Counter(
            f"{p}_messages_total",
            "DC-09 frames by token and reply result",
            ["token", "result"],
            registry=registry,
        )
        self.decode_errors = Counter(
            f"{p}_decode_errors_total", "frames not accepted, by reason", ["reason"], registry=registry
        )
        self.events = Counter(
            f"{p}_events_total",
            "alarm events published to alarms.raw",
            ["protocol", "kind"],
            registry=registry,
        )
        self.retransmissions = Counter(
            f"{p}_retransmissions_total", "messages ACKed again without publishing", registry=registry
        )
        self.publish_failures = Counter(
            f"{p}_publish_failures_total",
            "messages whose ACK was withheld because the broker did not confirm",
            registry=registry,
        )
        self.ack_seconds = Histogram(
            f"{p}_ack_seconds",
            "frame received to reply written",
            ["transport"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.connections = Gauge(f"{p}_open_connections", "open TCP connections", registry=registry)
        self.connections_rejected = Counter(
            f"{p}_connections_rejected_total",
            "TCP connections refused by limits",
            ["reason"],
            registry=registry,
        )
        self.garbage_bytes = Counter(f"{p}_garbage_bytes_total", "bytes outside any frame", registry=registry)
        self.supervision_misses = Counter(
            f"{p}_supervision_misses_total",
            "accounts that missed their supervision interval",
            registry=registry,
        )
        self.unknown_accounts = Counter(
            f"{p}_unknown_accounts_total", "messages from accounts not in the registry", registry=registry
        )
        self.shared_up = Gauge(
            f"{p}_shared_state_up",
            "1 while the state shared with the other receivers (Redis) answers, 0 on local memory",
            registry=registry,
        )
        self.shared_errors = Counter(
            f"{p}_shared_state_errors_total",
            "shared-state (Redis) calls that failed or were skipped and fell back to local memory",
            ["op"],
            registry=registry,
        )
        self.accounts = Gauge(f"{p}_accounts", "accounts loaded from the registry", registry=registry)
