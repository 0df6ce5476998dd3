"""alarmhub-admin's settings: the services' own variables (``KAFKA_BOOTSTRAP``, ``REDIS_URL``,
``DATABASE_URL``, ``ALARMHUB_TOPIC_PREFIX``) plus what only bringing the system into service needs."""

from __future__ import annotations

from alarmhub_runtime import BaseServiceSettings
from pydantic import Field, SecretStr

__all__ = ["AdminSettings"]


class AdminSettings(BaseServiceSettings):
    topic_replication: int = Field(
        default=1,
        ge=1,
        le=7,
        alias="ALARMHUB_TOPIC_REPLICATION",
        description="replication factor of the topics init creates (3 on a production cluster)",
    )
    topic_min_insync: int | None = Field(
        default=None,
        ge=1,
        le=7,
        alias="ALARMHUB_TOPIC_MIN_INSYNC",
        description="min.insync.replicas of the topics init creates (2 on a production cluster)",
    )
    city_id: str = Field(default="city", alias="ALARMHUB_CITY_ID", description="id of the city (tier 1) unit")
    city_name: str | None = Field(
        default=None, alias="ALARMHUB_CITY_NAME", description="its name, needed when init creates it"
    )
    admin_user: str = Field(
        default="admin", alias="ALARMHUB_ADMIN_USER", description="user name of the first city supervisor"
    )
    admin_password_file: str | None = Field(
        default=None,
        alias="ALARMHUB_ADMIN_PASSWORD_FILE",
        description="file holding the first supervisor's password (a Docker/Kubernetes secret); "
        "without it init prompts",
    )
    dispatch_url: str = Field(
        default="http://127.0.0.1:8080",
        alias="ALARMHUB_DISPATCH_URL",
        description="dispatch's API, checked by `alarmhub-admin check`",
    )
    gps_command_url: str = Field(
        default="http://127.0.0.1:9112/commands",
        alias="ALARMHUB_GPS_COMMAND_URL",
        description="ingest-gps's command endpoint as dispatch reaches it (checked by `check`)",
    )
    gps_command_token: SecretStr = Field(
        default=SecretStr("alarmhub-dev-command-token"),
        alias="ALARMHUB_GPS_COMMAND_TOKEN",
        description="dispatch's credential on that endpoint (the same value as dispatch's and ingest-gps's): "
        "`check` presents it, so a 401 there means dispatch's commands would be refused too",
    )
    health_urls: str = Field(
        default="",
        alias="ALARMHUB_CHECK_HEALTH_URLS",
        description="comma-separated /readyz URLs of the other services, checked by `check`",
    )
