"""Prometheus metrics of the camera ingest service (bounded labels only: never a camera id)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["CameraMetrics"]

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class CameraMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "alarmhub_ingest_camera_requests_total",
            "Pushes and SIP requests received, by protocol and result",
            ["protocol", "result"],
            registry=registry,
        )
        self.events = Counter(
            "alarmhub_ingest_camera_events_total",
            "Camera events by protocol, kind and noise decision",
            ["protocol", "kind", "decision"],
            registry=registry,
        )
        self.ack_seconds = Histogram(
            "alarmhub_ingest_camera_ack_seconds",
            "Time from receiving a push or SIP request to answering it",
            ["protocol"],
            registry=registry,
            buckets=_BUCKETS,
        )
        self.sip_registered = Gauge(
            "alarmhub_ingest_camera_sip_registered_devices",
            "GB/T 28181 devices currently registered",
            registry=registry,
        )
        self.sip_rejected = Counter(
            "alarmhub_ingest_camera_sip_rejected_total",
            "SIP requests refused, by reason",
            ["reason"],
            registry=registry,
        )
        self.sip_dropped = Counter(
            "alarmhub_ingest_camera_sip_dropped_datagrams_total",
            "UDP datagrams dropped because the queue was full",
            registry=registry,
        )
        self.onvif_subscriptions = Gauge(
            "alarmhub_ingest_camera_onvif_subscriptions",
            "ONVIF subscriptions currently held",
            registry=registry,
        )
        self.onvif_errors = Counter(
            "alarmhub_ingest_camera_onvif_errors_total",
            "ONVIF subscription errors, by operation",
            ["operation"],
            registry=registry,
        )
