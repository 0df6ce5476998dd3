"""Prometheus metrics of the GPS gateway. Labels are bounded: protocol, result, topic, reason — never a device."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["GpsMetrics"]


class GpsMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.connections = Gauge(
            "alarmhub_ingest_gps_connections", "open terminal connections", ["protocol"], registry=registry
        )
        self.frames = Counter(
            "alarmhub_ingest_gps_frames_total", "frames received", ["protocol", "result"], registry=registry
        )
        self.tolerated = Counter(
            "alarmhub_ingest_gps_frames_tolerated_total",
            "frames decoded although their check code (or JT/T 808 body length) did not match, as the "
            "deployed decoders accept them; also counted in frames_total",
            ["protocol"],
            registry=registry,
        )
        self.reregistrations = Counter(
            "alarmhub_ingest_gps_reregistrations_refused_total",
            "JT/T 808 registrations refused with result 3 because the terminal already holds a code "
            "(a reflashed tracker to reset, or an impostor); alerts AlarmhubGpsReregistrationRefused",
            registry=registry,
        )
        self.events = Counter(
            "alarmhub_ingest_gps_events_total", "events published", ["protocol", "topic"], registry=registry
        )
        self.closed = Counter(
            "alarmhub_ingest_gps_connections_closed_total",
            "connections closed",
            ["protocol", "reason"],
            registry=registry,
        )
        self.ack_seconds = Histogram(
            "alarmhub_ingest_gps_ack_seconds",
            "frame received → reply written (includes the broker write)",
            ["protocol"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=registry,
        )
        self.publish_errors = Counter(
            "alarmhub_ingest_gps_publish_errors_total",
            "batches the broker did not confirm (terminal not answered)",
            ["protocol"],
            registry=registry,
        )
        self.commands = Counter(
            "alarmhub_ingest_gps_commands_total",
            "operator commands",
            ["command", "result"],
            registry=registry,
        )
        self.registry_reloads = Counter(
            "alarmhub_ingest_gps_registry_reloads_total",
            "re-reads at once because dispatch notified a change: scope vehicle (an owner arming or "
            "disarming) or table (a registry edit)",
            ["scope"],
            registry=registry,
        )
        self.ownership_errors = Counter(
            "alarmhub_ingest_gps_ownership_write_errors_total",
            "session-ownership writes to Redis that failed (commands fall back)",
            registry=registry,
        )
