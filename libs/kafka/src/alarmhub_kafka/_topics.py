"""Create the contract's topics if they are missing."""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from alarmhub_events import TOPICS
from alarmhub_runtime import get_logger

from ._security import PLAINTEXT, KafkaSecurity

__all__ = ["ensure_topics"]

log = get_logger("alarmhub.kafka")


async def ensure_topics(
    bootstrap: str,
    *,
    prefix: str = "",
    replication: int = 1,
    min_insync: int | None = None,
    attempts: int = 30,
    security: KafkaSecurity = PLAINTEXT,
) -> list[str]:
    """Create every topic of the contract (with its dev partition count) that does not exist yet.

    Production passes ``replication=3, min_insync=2``; the dev broker has one node.
    """
    delay = 0.2
    for attempt in range(attempts):
        admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap, client_id="alarmhub-topics", **security.client_kwargs()
        )
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            configs = {"min.insync.replicas": str(min_insync)} if min_insync else {}
            missing = [
                NewTopic(prefix + s.name, s.partitions, replication, topic_configs=configs)
                for s in TOPICS
                if prefix + s.name not in existing
            ]
            if missing:
                try:
                    await admin.create_topics(missing)
                except TopicAlreadyExistsError:
                    pass
                log.info("topics_created", topics=[t.name for t in missing])
            return [t.name for t in missing]
        except KafkaError as exc:
            if attempt == attempts - 1:
                raise
            log.warning("topic_creation_failed", error=repr(exc), retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
        finally:
            await admin.close()
    return []
