"""Triage settings, validated at start-up."""

from __future__ import annotations

from pathlib import Path

from alarmhub_runtime import BaseServiceSettings, health_port_field
from pydantic import Field

__all__ = ["TriageSettings"]


class TriageSettings(BaseServiceSettings):
    health_port: int = health_port_field(9104)
    rules_path: Path | None = Field(
        default=None,
        alias="ALARMHUB_TRIAGE_RULES",
        description="YAML rules file; the packaged rules/default.yaml when unset",
    )
    rules_reload_s: float = Field(
        default=2.0,
        gt=0,
        alias="ALARMHUB_TRIAGE_RULES_RELOAD_S",
        description="how often the rules file is checked for changes",
    )
    redis_prefix: str | None = Field(
        default=None,
        alias="ALARMHUB_TRIAGE_REDIS_PREFIX",
        description="Redis key prefix; default '<topic prefix>triage:'",
    )
    group: str = Field(default="triage", alias="ALARMHUB_TRIAGE_GROUP")
    max_records: int = Field(
        default=2000,
        ge=1,
        le=10_000,
        alias="ALARMHUB_TRIAGE_BATCH",
        description="max records per poll; each partition's batch goes to Redis and the "
        "producer in chunks of ALARMHUB_TRIAGE_CHUNK (bench/triage.py)",
    )
    chunk: int = Field(
        default=256,
        ge=1,
        le=10_000,
        alias="ALARMHUB_TRIAGE_CHUNK",
        description="records per Redis state call: a partition batch goes in chunks so that Redis "
        "runs one chunk while triage scores the one before (bench/triage.py)",
    )

    verdicts_fetch_wait_ms: int = Field(
        default=500,
        ge=1,
        le=1000,
        alias="ALARMHUB_TRIAGE_VERDICTS_FETCH_WAIT_MS",
        description="how long the broker may hold a fetch of the verdict consumer (incidents.events) when "
        "nothing is waiting: an idle consumer fetches 1000/this times a second (the dev broker holds every "
        "fetch that long, so it is also how late a verdict may be learned); the alarm consumer keeps 50 ms",
    )
    coalesce: bool = Field(
        default=True,
        alias="ALARMHUB_TRIAGE_COALESCE",
        description="triage the batches that a poll's partitions hand over together in one pipeline run "
        "(one Redis script call and one produce call instead of one per partition)",
    )

    @property
    def key_prefix(self) -> str:
        return self.prefixed(self.redis_prefix, "triage")
