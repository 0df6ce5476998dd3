"""Settings of the GPS gateway: listen ports, session limits, unregistered-terminal policy, identity."""

from __future__ import annotations

import re
import socket
from urllib.parse import urlsplit, urlunsplit

from alarmhub_runtime import BaseServiceSettings, health_port_field, worker_index, workers_field
from pydantic import Field, SecretStr, field_validator

from .sessions import DEV_AUTH_SECRET, UnregisteredPolicy

__all__ = ["DEV_COMMAND_TOKEN", "GpsSettings"]

#: the development default of ``ALARMHUB_GPS_COMMAND_TOKEN`` (dispatch's has the same): public, so a
#: deployment sets its own (compose.yaml requires it)
DEV_COMMAND_TOKEN = "alarmhub-dev-command-token"


class GpsSettings(BaseServiceSettings):
    """Every listen port is overridable; 0 binds an ephemeral port (read it back from the server)."""

    host: str = Field(default="0.0.0.0", alias="ALARMHUB_GPS_HOST")
    jt808_port: int = Field(default=5015, ge=0, le=65535, alias="ALARMHUB_JT808_PORT")
    gt06_port: int = Field(default=5023, ge=0, le=65535, alias="ALARMHUB_GT06_PORT")
    h02_port: int = Field(default=5013, ge=0, le=65535, alias="ALARMHUB_H02_PORT")
    jt809_port: int = Field(
        default=5809,
        ge=0,
        le=65535,
        alias="ALARMHUB_JT809_PORT",
        description="JT/T 809 main link for lower-level GPS platforms",
    )
    jt809_idle_timeout_s: float = Field(default=180.0, gt=0, alias="ALARMHUB_JT809_IDLE_TIMEOUT_S")
    jt809_slave_link: bool = Field(
        default=True,
        alias="ALARMHUB_JT809_SLAVE_LINK",
        description="connect back to each platform's down-link address",
    )
    platforms_refresh_s: float = Field(default=30.0, gt=0, alias="ALARMHUB_JT809_PLATFORMS_REFRESH_S")
    health_port: int = health_port_field(9102)
    command_host: str = Field(
        default="127.0.0.1",
        alias="ALARMHUB_GPS_COMMAND_HOST",
        description="internal operator-command endpoint; never expose it publicly",
    )
    command_port: int = Field(default=9112, ge=0, le=65535, alias="ALARMHUB_GPS_COMMAND_PORT")
    command_token: SecretStr = Field(
        default=SecretStr(DEV_COMMAND_TOKEN),
        alias="ALARMHUB_GPS_COMMAND_TOKEN",
        description="dispatch's credential on the command endpoint (``Authorization: Bearer``; dispatch "
        "sends its ALARMHUB_GPS_COMMAND_TOKEN): anything else is 401; the default is public",
    )
    gateway_id: str | None = Field(
        default=None,
        alias="ALARMHUB_GPS_GATEWAY_ID",
        description="this process's identity in the session-ownership keys; default '<hostname>:<command port>'",
    )
    command_url: str | None = Field(
        default=None,
        alias="ALARMHUB_GPS_ADVERTISED_COMMAND_URL",
        description="where dispatch reaches this process's command endpoint; default "
        "'http://<command host, or hostname when a wildcard>:<command port>/commands'",
    )
    redis_prefix: str | None = Field(
        default=None,
        alias="ALARMHUB_GPS_REDIS_PREFIX",
        description="prefix of the ownership keys (dispatch reads the same); default '<topic prefix>gps:'",
    )
    ownership_refresh_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        alias="ALARMHUB_GPS_OWNERSHIP_REFRESH_S",
        description="refresh period of the gateway key and of the owner keys of sessions with traffic",
    )
    unregistered: UnregisteredPolicy = Field(
        default=UnregisteredPolicy.REJECT,
        alias="ALARMHUB_GPS_UNREGISTERED",
        description="reject: refuse terminals missing from the registry; accept: admit them flagged for review",
    )
    auth_secret: SecretStr = Field(
        default=SecretStr(DEV_AUTH_SECRET),
        alias="ALARMHUB_GPS_AUTH_SECRET",
        description="key of the JT/T 808 authentication codes (HMAC of the device id); "
        "the default is public: set it in production (compose.yaml requires it)",
    )
    idle_timeout_s: float = Field(
        default=300.0,
        gt=0,
        alias="ALARMHUB_GPS_IDLE_TIMEOUT_S",
        description="close a connection silent this long (terminals beat every 30–180 s)",
    )
    login_timeout_s: float = Field(
        default=60.0,
        gt=0,
        alias="ALARMHUB_GPS_LOGIN_TIMEOUT_S",
        description="close a connection that has not authenticated within this time",
    )
    max_connections: int | None = Field(
        default=None,
        gt=0,
        alias="ALARMHUB_GPS_MAX_CONNECTIONS",
        description="terminal connections one process holds across its ports before it refuses the next "
        "(counted as closed{reason=capacity}); default: its open-file limit less 512",
    )
    workers: int = workers_field(
        "ALARMHUB_GPS_WORKERS",
        "gateway processes sharing the tracker and JT/T 809 ports through SO_REUSEPORT; worker i "
        "serves health on ALARMHUB_HEALTH_PORT + i and commands on ALARMHUB_GPS_COMMAND_PORT + i; "
        "0 = the CPUs this process may use (cgroup quota). Fixed ports are needed for more than one",
    )
    max_refused: int = Field(default=5, gt=0, alias="ALARMHUB_GPS_MAX_REFUSED")
    registry_refresh_s: float = Field(default=30.0, gt=0, alias="ALARMHUB_GPS_REGISTRY_REFRESH_S")
    nice: int = Field(
        default=0,
        ge=0,
        le=19,
        alias="ALARMHUB_GPS_NICE",
        description="lower the gateway's CPU priority by this much (os.nice) where it shares cores "
        "with the alarm path (one-box installs, the e2e benchmark); 0 on its own hosts",
    )
    jt808_tz_hours: float = Field(
        default=8.0,
        alias="ALARMHUB_JT808_TZ_HOURS",
        description="JT/T 808 device clocks are GMT+8 by the standard",
    )
    gt06_tz_hours: float = Field(default=0.0, alias="ALARMHUB_GT06_TZ_HOURS")
    h02_tz_hours: float = Field(default=0.0, alias="ALARMHUB_H02_TZ_HOURS")
    gt06_command_password: str = Field(
        default="000000",
        alias="ALARMHUB_GT06_COMMAND_PASSWORD",
        description="the password GT06N text commands carry (DYD,<password>#); the units' factory one",
    )

    @field_validator("gateway_id")
    @classmethod
    def _gateway_id(cls, v: str | None) -> str | None:
        if v is not None and not _GATEWAY_ID.fullmatch(v):
            raise ValueError("gateway id: 1-100 characters among letters, digits and . _ : -")
        return v

    @field_validator("command_url")
    @classmethod
    def _command_url(cls, v: str | None) -> str | None:
        if v is not None:
            parts = urlsplit(v)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("advertised command URL must be an absolute http(s) URL")
            if parts.hostname in ("0.0.0.0", "::"):
                raise ValueError("advertised command URL must name a reachable host, not a wildcard address")
        return v

    @property
    def key_prefix(self) -> str:
        return self.prefixed(self.redis_prefix, "gps")

    def advertised(self, bound_port: int) -> tuple[str, str]:
        """(gateway id, command URL), defaults derived from the command endpoint's bound port.

        Worker ``i`` of several (``ALARMHUB_GPS_WORKERS``) holds its own sessions and listens for commands
        on the command port + i, so a given id becomes ``<id>-w<i>`` and a given URL's port + i (k8s and
        compose name one URL and id per pod or container); the defaults already differ by bound port.
        """
        host = self.command_host
        if host in ("0.0.0.0", "::", ""):
            host = socket.gethostname()
        index = worker_index()
        gateway = self.gateway_id or f"{socket.gethostname()}:{bound_port}"
        if self.gateway_id and index is not None:
            gateway = f"{self.gateway_id}-w{index}"
        url_host = f"[{host}]" if ":" in host else host
        url = self.command_url or f"http://{url_host}:{bound_port}/commands"
        if self.command_url and index:
            url = _port_plus(url, index)
        return gateway, url


def _port_plus(url: str, offset: int) -> str:
    """``url`` with its port (explicit or the scheme's) moved up by ``offset``."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}:{port + offset}" if userinfo else f"{host}:{port + offset}"
    return urlunsplit(parts._replace(netloc=netloc))


_GATEWAY_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")
