"""Settings shared by every service; each service's ``config.py`` subclasses :class:`BaseServiceSettings`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from ._transport import KafkaTransport, PostgresTransport, RedisTransport

__all__ = ["BaseServiceSettings", "health_port_field", "port_field", "workers_field"]


class BaseServiceSettings(KafkaTransport, RedisTransport, PostgresTransport):
    """Backing services (their transport security: ``_transport.py``), logging and the health/metrics port. Read
    from the environment, validated at start.

    Names are the contract's (``KAFKA_BOOTSTRAP``, ``REDIS_URL``, ``DATABASE_URL``) plus ``ALARMHUB_*``.
    """

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True, populate_by_name=True)

    kafka_bootstrap: str = Field(
        default="127.0.0.1:9092",
        alias="KAFKA_BOOTSTRAP",
        description="Kafka bootstrap servers, comma separated",
    )
    redis_sentinels: str = Field(
        default="",
        alias="REDIS_SENTINELS",
        description="Redis Sentinel addresses host:port, comma separated; set: the primary is asked of them "
        "and followed across failovers",
    )
    redis_sentinel_master: str = Field(
        default="mymaster",
        min_length=1,
        alias="REDIS_SENTINEL_MASTER",
        description="the primary's name in Sentinel's configuration",
    )
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

    @field_validator("redis_sentinels")
    @classmethod
    def _sentinels(cls, value: str) -> str:
        parse_sentinels(value)
        return value

    def redis_sentinel_addresses(self) -> tuple[tuple[str, int], ...]:
        """``REDIS_SENTINELS`` parsed: ``(("10.0.0.1", 26379), ...)``, empty without Sentinel."""
        return parse_sentinels(self.redis_sentinels)

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def prefixed(self, own: str | None, service: str) -> str:
        """A service's Redis key prefix: its own setting when given, else ``<topic prefix><service>:``
        (so every process of a test run or site derives the same keys; dispatch reads ingest-gps's)."""
        return own if own is not None else f"{self.topic_prefix}{service}:"


def port_field(default: int, alias: str, description: str | None = None) -> Any:
    """A TCP/UDP port setting, 0-65535 (0 picks a free port: tests)."""
    return Field(default=default, ge=0, le=65535, alias=alias, description=description)


def health_port_field(default: int) -> Any:
    """``ALARMHUB_HEALTH_PORT``: health checks and /metrics; each service has its own default (docs/contract.md),
    and worker i of several serves it + i."""
    return port_field(default, "ALARMHUB_HEALTH_PORT")


def workers_field(alias: str, description: str) -> Any:
    """``ALARMHUB_<SERVICE>_WORKERS``: processes sharing the service's ports through SO_REUSEPORT
    (``alarmhub_runtime.WorkerSupervisor``). 0, the default, = the CPUs the process may use (its affinity
    and cgroup CPU quota: one worker per core of a pod's CPU limit, not the host's core count); 1 = one
    process, no supervisor (the dev stack and the tests' service environments set 1 explicitly)."""
    return Field(default=0, ge=0, le=256, alias=alias, description=description)


def parse_sentinels(text: str) -> tuple[tuple[str, int], ...]:
    """``"10.0.0.1:26379,[::1]:26379"`` → ``(("10.0.0.1", 26379), ("::1", 26379))``; ValueError if malformed."""
    out: list[tuple[str, int]] = []
    for item in (x.strip() for x in text.split(",")):
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"sentinel address {item!r} is not host:port")
        out.append((host.strip("[]"), int(port)))
    return tuple(out)
