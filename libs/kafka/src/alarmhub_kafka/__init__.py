"""Kafka plumbing: a durable producer, an at-least-once consumer pipeline with a DLQ, a group-less tail for
fan-out to every replica, topic creation."""

from ._coalesce import Coalescer
from ._consumer import BatchHandler, ConsumerPipeline, Message
from ._failures import Failure, classify
from ._kinds import alarm_kind, alarm_kind_of_raw
from ._metrics import KafkaMetrics
from ._producer import DurableProducer, murmur2
from ._security import KafkaSecurity
from ._tail import TopicTail
from ._topics import ensure_topics
from .errors import InvalidEvent, PublishError, TransientError

__all__ = [
    "BatchHandler",
    "Coalescer",
    "ConsumerPipeline",
    "DurableProducer",
    "Failure",
    "InvalidEvent",
    "KafkaMetrics",
    "KafkaSecurity",
    "Message",
    "PublishError",
    "TopicTail",
    "TransientError",
    "alarm_kind",
    "alarm_kind_of_raw",
    "classify",
    "ensure_topics",
    "murmur2",
]
