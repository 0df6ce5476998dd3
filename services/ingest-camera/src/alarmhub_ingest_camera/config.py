"""Settings of the camera ingest service: listen ports, the SIP domain and password, noise control, ONVIF."""

from __future__ import annotations

from typing import Literal

from alarmhub_runtime import BaseServiceSettings, health_port_field
from pydantic import Field, SecretStr, model_validator

__all__ = ["CameraSettings"]


class CameraSettings(BaseServiceSettings):
    """Every listen port is overridable; 0 binds an ephemeral port (read it back from the app)."""

    http_host: str = Field(default="0.0.0.0", alias="ALARMHUB_CAMERA_HOST")
    http_port: int = Field(
        default=8081,
        ge=0,
        le=65535,
        alias="ALARMHUB_CAMERA_HTTP_PORT",
        description="ISAPI, ONVIF Notify and webhook endpoint",
    )
    sip_host: str = Field(default="0.0.0.0", alias="ALARMHUB_SIP_HOST")
    sip_port: int = Field(
        default=5060,
        ge=0,
        le=65535,
        alias="ALARMHUB_SIP_PORT",
        description="GB/T 28181 SIP, UDP and TCP on the same number",
    )
    health_port: int = health_port_field(9103)

    sip_server_id: str = Field(
        default="34020000002000000001",
        alias="ALARMHUB_SIP_SERVER_ID",
        description="our 20-digit GB/T 28181 code (type 200: SIP server)",
    )
    sip_realm: str = Field(
        default="3402000000",
        alias="ALARMHUB_SIP_REALM",
        description="the SIP domain: the first 10 digits of the server id by convention",
    )
    sip_password: SecretStr | None = Field(
        default=None,
        alias="ALARMHUB_SIP_PASSWORD",
        description="digest password devices register with; unset refuses every REGISTER (no default in production)",
    )
    sip_keepalive_timeout_s: float = Field(
        default=180.0,
        gt=0,
        alias="ALARMHUB_SIP_KEEPALIVE_TIMEOUT_S",
        description="3 missed keepalives at the standard's 60 s → offline",
    )
    sip_workers: int = Field(default=8, gt=0, le=256, alias="ALARMHUB_SIP_WORKERS")
    sip_queue: int = Field(
        default=10_000,
        gt=0,
        alias="ALARMHUB_SIP_QUEUE",
        description="UDP datagrams waiting for a worker; beyond it they are dropped (devices retransmit)",
    )

    command_host: str = Field(
        default="127.0.0.1",
        alias="ALARMHUB_CAMERA_COMMAND_HOST",
        description="internal endpoint dispatch calls (the GB/T 28181 Catalog query); never expose it publicly",
    )
    command_port: int = Field(default=9121, ge=0, le=65535, alias="ALARMHUB_CAMERA_COMMAND_PORT")
    command_token: SecretStr | None = Field(
        default=None,
        alias="ALARMHUB_CAMERA_COMMAND_TOKEN",
        description="bearer token dispatch presents on the command endpoint (at least 16 characters); "
        "unset: the endpoint is not started",
    )
    catalog_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=60,
        alias="ALARMHUB_SIP_CATALOG_TIMEOUT_S",
        description="how long a Catalog query waits for the device's whole list (SumNum items)",
    )

    webhook_secret: SecretStr | None = Field(
        default=None,
        alias="ALARMHUB_WEBHOOK_SECRET",
        description="HMAC key of the webhook integrator named 'default' (requests without "
        "X-Alarmhub-Integrator); give each integrator its own in ALARMHUB_WEBHOOK_SECRETS",
    )
    webhook_secrets: SecretStr | None = Field(
        default=None,
        alias="ALARMHUB_WEBHOOK_SECRETS",
        description="per-integrator HMAC keys, 'name=secret,name2=secret2'; the request names its "
        "integrator in X-Alarmhub-Integrator. With neither this nor ALARMHUB_WEBHOOK_SECRET the "
        "endpoint is off",
    )
    intake_auth: Literal["registered", "open"] = Field(
        default="registered",
        alias="ALARMHUB_CAMERA_INTAKE_AUTH",
        description="ISAPI/ONVIF pushes: 'registered' accepts a push only for a registered camera that "
        "presents its intake token or sends from its registered address; 'open' (dev stack) accepts "
        "anyone, as before (docs/security.md)",
    )
    trusted_proxies: str = Field(
        default="",
        alias="ALARMHUB_CAMERA_TRUSTED_PROXIES",
        description="addresses/CIDRs of reverse proxies in front of port 8081 whose X-Forwarded-For "
        "is believed (comma separated); empty: the socket's peer is the sender",
    )
    webhook_max_skew_s: int = Field(default=300, gt=0, alias="ALARMHUB_WEBHOOK_MAX_SKEW_S")
    idempotency_ttl_s: int = Field(default=86_400, gt=0, alias="ALARMHUB_WEBHOOK_IDEMPOTENCY_TTL_S")

    max_body_bytes: int = Field(
        default=4 * 1024 * 1024,
        gt=0,
        alias="ALARMHUB_CAMERA_MAX_BODY_BYTES",
        description="multipart pushes carry snapshots; larger bodies get 413",
    )
    isapi_tz_hours: float = Field(
        default=8.0,
        alias="ALARMHUB_ISAPI_TZ_HOURS",
        description="zone of ISAPI times that carry none (camera local time)",
    )
    isapi_offline_s: float = Field(
        default=300.0,
        gt=0,
        alias="ALARMHUB_ISAPI_OFFLINE_S",
        description="a camera that sent heartbeats and then none for this long is offline",
    )

    hold_s: float = Field(
        default=60.0,
        gt=0,
        alias="ALARMHUB_CAMERA_HOLD_S",
        description="an active state with no report for this long has ended",
    )
    flood_burst: int = Field(
        default=10,
        gt=0,
        alias="ALARMHUB_CAMERA_FLOOD_BURST",
        description="published state changes allowed per camera per window",
    )
    flood_window_s: float = Field(default=60.0, gt=0, alias="ALARMHUB_CAMERA_FLOOD_WINDOW_S")

    registry_cache_s: float = Field(default=60.0, gt=0, alias="ALARMHUB_CAMERA_REGISTRY_CACHE_S")

    onvif_mode: Literal["off", "pullpoint", "notify"] = Field(
        default="pullpoint", alias="ALARMHUB_ONVIF_MODE"
    )
    onvif_consumer_url: str | None = Field(
        default=None,
        alias="ALARMHUB_ONVIF_CONSUMER_URL",
        description="our /events/onvif as the cameras reach it (notify mode)",
    )
    onvif_ttl_s: int = Field(default=600, ge=60, alias="ALARMHUB_ONVIF_TTL_S")
    onvif_renew_margin_s: int = Field(default=60, ge=5, alias="ALARMHUB_ONVIF_RENEW_MARGIN_S")
    onvif_refresh_s: float = Field(default=60.0, gt=0, alias="ALARMHUB_ONVIF_REFRESH_S")
    onvif_max_cameras: int = Field(
        default=2000,
        ge=0,
        alias="ALARMHUB_ONVIF_MAX_CAMERAS",
        description="subscriptions one process keeps; shard cameras across processes beyond it",
    )

    @model_validator(mode="after")
    def _secrets_parse(self) -> CameraSettings:
        self.integrator_secrets()
        if self.command_token is not None and len(self.command_token.get_secret_value()) < 16:
            raise ValueError("ALARMHUB_CAMERA_COMMAND_TOKEN: at least 16 characters")
        return self

    def integrator_secrets(self) -> dict[str, bytes]:
        """Integrator name → HMAC key (``default`` from ALARMHUB_WEBHOOK_SECRET)."""
        out: dict[str, bytes] = {}
        if self.webhook_secret is not None:
            out["default"] = self.webhook_secret.get_secret_value().encode()
        if self.webhook_secrets is not None:
            for item in self.webhook_secrets.get_secret_value().split(","):
                if not item.strip():
                    continue
                name, sep, secret = item.strip().partition("=")
                if not sep or not name.strip() or len(secret) < 16:
                    raise ValueError(
                        "ALARMHUB_WEBHOOK_SECRETS: each entry is name=secret, the secret at least 16 characters"
                    )
                out[name.strip()] = secret.encode()
        return out
