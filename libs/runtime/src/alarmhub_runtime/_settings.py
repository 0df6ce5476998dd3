"""Settings shared by every service; each service's ``config.py`` subclasses :class:`BaseServiceSettings`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["BaseServiceSettings"]


class BaseServiceSettings(BaseSettings):
    """Backing services, logging and the health/metrics port. Read from the environment, validated at start.

    Names are the contract's (``KAFKA_BOOTSTRAP``, ``REDIS_URL``, ``DATABASE_URL``) plus ``ALARMHUB_*``.
    """

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True, populate_by_name=True)

    kafka_bootstrap: str = Field(
        default="127.0.0.1:9092",
        alias="KAFKA_BOOTSTRAP",
        description="Kafka bootstrap servers, comma separated",
    )
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", alias="REDIS_URL")
    database_url: str = Field(default="postgresql://postgres@127.0.0.1:5432/alarmhub", alias="DATABASE_URL")
    kafka_idempotence: bool = Field(
        default=False,
        alias="ALARMHUB_KAFKA_IDEMPOTENCE",
        description="idempotent producer; enable on real Kafka (the dev broker lacks it)",
    )
    kafka_session_timeout_ms: int = Field(
        default=10_000,
        ge=1000,
        le=1_800_000,
        alias="ALARMHUB_KAFKA_SESSION_TIMEOUT_MS",
        description="consumer-group session timeout. Kafka accepts 6,000-1,800,000 by default "
        "(group.min/max.session.timeout.ms); the dev broker holds every group join for half of it, "
        "so the test suite runs with 3,000",
    )
    topic_prefix: str = Field(
        default="",
        alias="ALARMHUB_TOPIC_PREFIX",
        description="prefix for every topic name (isolates test runs on a shared broker)",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", alias="ALARMHUB_LOG_LEVEL"
    )
    health_host: str = Field(default="0.0.0.0", alias="ALARMHUB_HEALTH_HOST")
    shutdown_grace_s: float = Field(
        default=10.0,
        gt=0,
        alias="ALARMHUB_SHUTDOWN_GRACE_S",
        description="how long draining may take on SIGTERM before the rest is abandoned",
    )
    uvloop: bool = Field(
        default=True,
        alias="ALARMHUB_UVLOOP",
        description="run on uvloop (libuv) instead of asyncio's own loop; 0 falls back",
    )
    gc_tune: bool = Field(
        default=True,
        alias="ALARMHUB_GC_TUNE",
        description="freeze startup objects out of the cyclic GC and collect young objects "
        "50x less often; 0 keeps CPython's defaults",
    )

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"
