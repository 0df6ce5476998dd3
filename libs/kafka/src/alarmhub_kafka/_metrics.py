from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["KafkaMetrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class KafkaMetrics:
    """Kafka metrics of one service, registered on the service's own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.produce_seconds = Histogram(
            "alarmhub_kafka_produce_seconds",
            "Time from send to broker acknowledgement (acks=all)",
            ["topic"],
            registry=registry,
            buckets=_LATENCY_BUCKETS,
        )
        self.produced = Counter(
            "alarmhub_kafka_produced_messages_total",
            "Messages produced, by result",
            ["topic", "result"],
            registry=registry,
        )
        self.consumed = Counter(
            "alarmhub_kafka_consumed_messages_total",
            "Messages consumed, by result",
            ["topic", "result"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "alarmhub_kafka_batch_processing_seconds",
            "Time to process one polled batch of a partition",
            ["topic"],
            registry=registry,
            buckets=_LATENCY_BUCKETS,
        )
        self.lag = Gauge(
            "alarmhub_kafka_consumer_lag_messages",
            "Messages between the committed offset and the end",
            ["group", "topic", "partition"],
            registry=registry,
        )
        self.dlq = Counter(
            "alarmhub_kafka_dlq_messages_total",
            "Messages sent to the dead-letter topic",
            ["topic", "stage"],
            registry=registry,
        )
        self.dlq_life_safety = Counter(
            "alarmhub_kafka_dlq_life_safety_messages_total",
            "Consumed alarms of a life-safety kind (panic, duress, fire, medical, vehicle SOS) sent to the"
            " dead-letter topic: each one pages at once",
            ["topic", "kind"],
            registry=registry,
        )
        self.splits = Counter(
            "alarmhub_kafka_batch_splits_total",
            "Batches split in halves to isolate a record that fails on its own",
            ["topic"],
            registry=registry,
        )
        self.retries = Counter(
            "alarmhub_kafka_batch_retries_total",
            "Batches retried after a transient failure",
            ["topic"],
            registry=registry,
        )
        # per (use, topic): the labelled series the hot paths record, resolved once (a ``labels()``
        # look-up costs microseconds, and they are recorded after every batch or produce call)
        self._resolved: dict[tuple[str, str], tuple[Any, Any]] = {}

    def handled(self, topic: str) -> tuple[Any, Any]:
        """The topic's batch-seconds and consumed-ok series (the consumer, after every handled batch)."""
        children = self._resolved.get(("handled", topic))
        if children is None:
            children = self._resolved[("handled", topic)] = (
                self.batch_seconds.labels(topic),
                self.consumed.labels(topic, "ok"),
            )
        return children

    def produced_ok(self, topic: str) -> tuple[Any, Any]:
        """The topic's produced-ok and produce-seconds series (the producer, after every confirmed call)."""
        children = self._resolved.get(("produced", topic))
        if children is None:
            children = self._resolved[("produced", topic)] = (
                self.produced.labels(topic, "ok"),
                self.produce_seconds.labels(topic),
            )
        return children
