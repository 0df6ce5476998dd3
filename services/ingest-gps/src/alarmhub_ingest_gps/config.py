"""Settings of the GPS gateway: listen ports, session limits, unregistered-terminal policy."""

from __future__ import annotations

from alarmhub_runtime import BaseServiceSettings
from pydantic import Field, SecretStr

from .session import UnregisteredPolicy

__all__ = ["GpsSettings"]


class GpsSettings(BaseServiceSettings):
    """Every listen port is overridable; 0 binds an ephemeral port (read it back from the server)."""

    host: str = Field(default="0.0.0.0", alias="ALARMHUB_GPS_HOST")
    jt808_port: int = Field(default=5015, ge=0, le=65535, alias="ALARMHUB_JT808_PORT")
    gt06_port: int = Field(default=5023, ge=0, le=65535, alias="ALARMHUB_GT06_PORT")
    h02_port: int = Field(default=5013, ge=0, le=65535, alias="ALARMHUB_H02_PORT")
    jt809_port: int = Field(default=5809, ge=0, le=65535, alias="ALARMHUB_JT809_PORT",
                            description="JT/T 809 main link for lower-level GPS platforms")
    jt809_idle_timeout_s: float = Field(default=180.0, gt=0, alias="ALARMHUB_JT809_IDLE_TIMEOUT_S")
    jt809_slave_link: bool = Field(default=True, alias="ALARMHUB_JT809_SLAVE_LINK",
                                   description="connect back to each platform's down-link address")
    platforms_refresh_s: float = Field(default=30.0, gt=0, alias="ALARMHUB_JT809_PLATFORMS_REFRESH_S")
    health_port: int = Field(default=9102, ge=0, le=65535, alias="ALARMHUB_HEALTH_PORT")
    command_host: str = Field(default="127.0.0.1", alias="ALARMHUB_GPS_COMMAND_HOST",
                              description="internal operator-command endpoint; never expose it publicly")
    command_port: int = Field(default=9112, ge=0, le=65535, alias="ALARMHUB_GPS_COMMAND_PORT")
    unregistered: UnregisteredPolicy = Field(
        default=UnregisteredPolicy.ACCEPT, alias="ALARMHUB_GPS_UNREGISTERED",
        description="reject: refuse terminals missing from the registry; accept: admit them flagged for review")
    auth_secret: SecretStr = Field(default=SecretStr("alarmhub-dev-secret"), alias="ALARMHUB_GPS_AUTH_SECRET",
                                   description="key of the JT/T 808 authentication codes (HMAC of the device id)")
    idle_timeout_s: float = Field(default=300.0, gt=0, alias="ALARMHUB_GPS_IDLE_TIMEOUT_S",
                                  description="close a connection silent this long (terminals beat every 30–180 s)")
    login_timeout_s: float = Field(default=60.0, gt=0, alias="ALARMHUB_GPS_LOGIN_TIMEOUT_S",
                                   description="close a connection that has not authenticated within this time")
    max_connections: int = Field(default=100_000, gt=0, alias="ALARMHUB_GPS_MAX_CONNECTIONS")
    max_refused: int = Field(default=5, gt=0, alias="ALARMHUB_GPS_MAX_REFUSED")
    registry_refresh_s: float = Field(default=30.0, gt=0, alias="ALARMHUB_GPS_REGISTRY_REFRESH_S")
    jt808_tz_hours: float = Field(default=8.0, alias="ALARMHUB_JT808_TZ_HOURS",
                                  description="JT/T 808 device clocks are GMT+8 by the standard")
    gt06_tz_hours: float = Field(default=0.0, alias="ALARMHUB_GT06_TZ_HOURS")
    h02_tz_hours: float = Field(default=0.0, alias="ALARMHUB_H02_TZ_HOURS")
