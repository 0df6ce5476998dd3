"""Dispatch settings, validated at start-up."""

from __future__ import annotations

from typing import Literal

from alarmhub_runtime import health_port_field
from pydantic import Field, SecretStr, model_validator

from . import backup as _backup
from .oidc import LoginStates, OidcClient, OidcConfig, parse_groups

__all__ = ["DispatchSettings"]


# ALARMHUB_DISPATCH_MODE and ALARMHUB_BACKUP_DISTRICT come from backup.py's mixin
class DispatchSettings(_backup.BackupSettings):
    health_port: int = health_port_field(9105)
    http_host: str = Field(default="0.0.0.0", alias="ALARMHUB_HTTP_HOST")
    http_port: int = Field(
        default=8080,
        ge=0,
        le=65535,
        alias="ALARMHUB_HTTP_PORT",
        description="API, console and SSE; 0 picks a free port (logged as http_started)",
    )
    dev_token: str | None = Field(
        default=None,
        alias="ALARMHUB_DEV_TOKEN",
        description="when set together with ALARMHUB_DEV_MODE=1 (the dev stack sets both), a city-tier "
        "supervisor token with this value (user dev-admin) that expires after ALARMHUB_DEV_TOKEN_TTL_S; "
        "refused at start without dev mode; a start without it revokes the dev token a previous start made",
    )
    dev_mode: bool = Field(
        default=False,
        alias="ALARMHUB_DEV_MODE",
        description="the dev stack's conveniences (the dev token); never set in production",
    )
    dev_token_ttl_s: float = Field(
        default=12 * 3600.0,
        gt=0,
        le=7 * 86400.0,
        alias="ALARMHUB_DEV_TOKEN_TTL_S",
        description="lifetime of the dev token from dispatch's start",
    )
    group: str = Field(default="dispatch", alias="ALARMHUB_DISPATCH_GROUP")
    db_pool_size: int = Field(
        default=10,
        ge=2,
        le=200,
        alias="ALARMHUB_DISPATCH_DB_POOL",
        description="PostgreSQL connections of this process (partition batches, API, timers, "
        "the stream tail); keep it under the server's max_connections / instances",
    )
    max_records: int = Field(default=200, ge=1, le=10_000, alias="ALARMHUB_DISPATCH_BATCH")
    coalesce: bool = Field(
        default=True,
        alias="ALARMHUB_DISPATCH_COALESCE",
        description="apply the decisions that a poll's partitions hand over together in one "
        "transaction (one set of round trips instead of one per partition)",
    )
    gps_batch: int = Field(
        default=250,
        ge=1,
        le=10_000,
        alias="ALARMHUB_DISPATCH_GPS_BATCH",
        description="fixes per poll of the tracks consumer: each poll's decoding runs in one go "
        "on the event loop the alarm path shares (was 1000)",
    )
    gps_concurrency: int = Field(
        default=16,
        ge=1,
        le=64,
        alias="ALARMHUB_DISPATCH_GPS_CONCURRENCY",
        description="partitions' batches of one poll of the tracks consumer handed over at once; they are "
        "written together, one statement at a time on one PostgreSQL connection (was 1: a statement "
        "per partition's batch, ~13 fixes each)",
    )
    side_fetch_wait_ms: int = Field(
        default=250,
        ge=1,
        le=1000,
        alias="ALARMHUB_DISPATCH_SIDE_FETCH_WAIT_MS",
        description="how long the broker may hold a fetch of the tracks (telemetry.gps) and device-status "
        "consumers when nothing is waiting: each idle consumer fetches 1000/this times a second (the "
        "dev broker holds every fetch that long, so it is also what a fix or status may wait at most "
        "on a quiet topic); the alarm path's consumer keeps 50 ms",
    )
    gps_fetch_min_bytes: int = Field(
        default=65_536,
        ge=1,
        le=4_194_304,
        alias="ALARMHUB_DISPATCH_GPS_FETCH_MIN_BYTES",
        description="bytes of telemetry.gps the broker gathers before it answers the tracks consumer's "
        "fetch (or ALARMHUB_DISPATCH_SIDE_FETCH_WAIT_MS passed): ~150 fixes a fetch at 5,000 fixes/s "
        "instead of one fetch per produce request; each fix waits at most that wait more; 1 answers "
        "at the first byte",
    )
    gps_yield_max_s: float = Field(
        default=0.5,
        ge=0,
        le=10,
        alias="ALARMHUB_DISPATCH_GPS_YIELD_MAX_S",
        description="how long a GPS batch waits for the alarm batches in hand before "
        "writing its tracks anyway; 0 turns the alarm path's precedence off",
    )
    ack_timeout_s: float = Field(
        default=120.0,
        gt=0,
        alias="ALARMHUB_DISPATCH_ACK_TIMEOUT_S",
        description="unacknowledged at the station this long → escalate to the district",
    )
    district_timeout_s: float = Field(
        default=300.0,
        gt=0,
        alias="ALARMHUB_DISPATCH_DISTRICT_TIMEOUT_S",
        description="still unacknowledged at the district this long → the city",
    )
    timer_interval_s: float = Field(default=1.0, gt=0, alias="ALARMHUB_DISPATCH_TIMER_INTERVAL_S")
    route_max_distance_m: float = Field(
        default=500.0,
        ge=0,
        alias="ALARMHUB_ROUTE_MAX_DISTANCE_M",
        description="a point outside every station area goes to the nearest within this",
    )
    route_district_distance_m: float = Field(default=2000.0, ge=0, alias="ALARMHUB_ROUTE_DISTRICT_DISTANCE_M")
    route_grid_cell_m: float = Field(
        default=200.0,
        ge=0,
        alias="ALARMHUB_ROUTE_GRID_CELL_M",
        description="cell size of the routing lookup grid (docs/dispatch.md); "
        "0 = none, every lookup through the STRtree",
    )
    demo_seed: int = Field(default=20061125, alias="ALARMHUB_DEMO_GEO_SEED")
    demo_stations: int = Field(default=300, ge=9, le=5000, alias="ALARMHUB_DEMO_GEO_STATIONS")
    load_demo_geography: bool = Field(
        default=True,
        alias="ALARMHUB_DEMO_GEOGRAPHY",
        description="fill an empty units table with the demo geography at start",
    )
    webhook_timeout_s: float = Field(default=5.0, gt=0, alias="ALARMHUB_WEBHOOK_TIMEOUT_S")
    webhook_allow_networks: str = Field(
        default="",
        alias="ALARMHUB_WEBHOOK_ALLOW_NETWORKS",
        description="networks (CIDR, comma separated) webhooks may reach besides public addresses, e.g. "
        "the police network's station systems; loopback, private, link-local and other internal "
        "addresses are refused when the connection is made unless listed here",
    )
    webhook_max_attempts: int = Field(
        default=8,
        ge=1,
        le=50,
        alias="ALARMHUB_WEBHOOK_MAX_ATTEMPTS",
        description="attempts before a delivery goes to the dead-letter list",
    )
    gps_command_url: str = Field(
        default="http://127.0.0.1:9112/commands",
        alias="ALARMHUB_GPS_COMMAND_URL",
        description="ingest-gps's command endpoint used when no gateway is known to "
        "hold the vehicle's session",
    )
    gps_command_token: SecretStr = Field(
        default=SecretStr("alarmhub-dev-command-token"),
        alias="ALARMHUB_GPS_COMMAND_TOKEN",
        description="dispatch's credential on ingest-gps's command endpoint (the same value there); the "
        "default is public: set it in production (compose.yaml requires it)",
    )
    camera_command_url: str = Field(
        default="http://127.0.0.1:9121/gb28181/catalog",
        alias="ALARMHUB_CAMERA_COMMAND_URL",
        description="ingest-camera's internal GB/T 28181 Catalog endpoint (its ALARMHUB_CAMERA_COMMAND_PORT)",
    )
    camera_command_token: SecretStr | None = Field(
        default=None,
        alias="ALARMHUB_CAMERA_COMMAND_TOKEN",
        description="dispatch's credential there (the same value in ingest-camera); unset: a GB/T 28181 "
        "camera's channel list is not offered (503 catalog_off)",
    )
    owner_hook_url: str | None = Field(
        default=None,
        alias="ALARMHUB_DISPATCH_OWNER_HOOK_URL",
        description="where a vehicle owner's notice is POSTed as JSON (an SMS/app gateway): a stolen car "
        "dispatched, or one ambiguous signal to confirm; unset: the owner's own view only",
    )
    owner_track_interval_s: int = Field(
        default=10,
        ge=1,
        le=3600,
        alias="ALARMHUB_DISPATCH_OWNER_TRACK_INTERVAL_S",
        description="position interval asked of a stolen, driving vehicle's terminal (JT/T 808 0x8202)",
    )
    gps_redis_prefix: str | None = Field(
        default=None,
        alias="ALARMHUB_GPS_REDIS_PREFIX",
        description="prefix of ingest-gps's session-ownership keys; default '<topic prefix>gps:'",
    )
    gps_command_routing: bool = Field(
        default=True,
        alias="ALARMHUB_GPS_COMMAND_ROUTING",
        description="send each command to the gateway holding the session (Redis)",
    )
    cutoff_max_speed_kmh: float = Field(
        default=5.0,
        gt=0,
        le=20,
        alias="ALARMHUB_CUTOFF_MAX_SPEED_KMH",
        description="a fuel/power cut-off is refused unless the vehicle's latest fix is slower than this",
    )
    cutoff_fix_max_age_s: float = Field(
        default=60.0,
        ge=5,
        le=600,
        alias="ALARMHUB_CUTOFF_FIX_MAX_AGE_S",
        description="an older fix counts as an unknown speed: the cut-off is refused",
    )
    cameras_near_m: float = Field(
        default=500.0,
        gt=0,
        le=5000,
        alias="ALARMHUB_CAMERAS_NEAR_M",
        description="default radius of the cameras-near query around an incident (a caller may ask up to 5 km)",
    )
    live_max_streams: int = Field(
        default=8,
        ge=0,
        le=200,
        alias="ALARMHUB_LIVE_MAX_STREAMS",
        description="live-view relays (ffmpeg processes, one per camera) running at once; 0 = no live view",
    )
    live_max_viewers: int = Field(
        default=10, ge=1, le=100, alias="ALARMHUB_LIVE_MAX_VIEWERS", description="viewers of one relay"
    )
    live_token_ttl_s: float = Field(
        default=30.0,
        ge=5,
        le=600,
        alias="ALARMHUB_LIVE_TOKEN_TTL_S",
        description="a stream token lapses this long after the player last used it (the relay stops "
        "when its last token lapses)",
    )
    live_transcode: bool = Field(
        default=False,
        alias="ALARMHUB_LIVE_TRANSCODE",
        description="transcode cameras that do not send H.264 (H.265…) instead of refusing them "
        "(one CPU core or more per stream)",
    )
    migrate: bool = Field(default=True, alias="ALARMHUB_MIGRATE", description="apply the schema at start")
    trusted_proxies: str = Field(
        default="",
        alias="ALARMHUB_DISPATCH_TRUSTED_PROXIES",
        description="addresses/CIDRs of the TLS terminators in front of dispatch whose X-Forwarded-For "
        "names the client (login limits, audit); empty: the socket's peer is the client",
    )
    login_ttl_s: int = Field(
        default=8 * 3600,
        ge=60,
        le=7 * 86400,
        alias="ALARMHUB_LOGIN_TTL_S",
        description="how long a password sign-in lasts (the console signs out when it ends); one shift",
    )
    totp_required: Literal["supervisors", "everyone"] = Field(
        default="supervisors",
        alias="ALARMHUB_TOTP_REQUIRED",
        description="who must give a second factor (TOTP) after the password: 'supervisors' (they administer), "
        "or 'everyone' where the city's policy says so; a person who enrolled always gives it",
    )
    totp_issuer: str = Field(
        default="alarmhub",
        min_length=1,
        max_length=64,
        pattern=r"^[^:]+$",
        alias="ALARMHUB_TOTP_ISSUER",
        description="the name authenticator apps show beside the account",
    )
    oidc_issuer: str = Field(
        default="",
        alias="ALARMHUB_OIDC_ISSUER",
        description="sign-in through the city's directory (OpenID Connect): the provider's issuer URL; empty: off",
    )
    oidc_client_id: str = Field(default="", alias="ALARMHUB_OIDC_CLIENT_ID")
    oidc_client_secret: SecretStr | None = Field(default=None, alias="ALARMHUB_OIDC_CLIENT_SECRET")
    oidc_redirect_uri: str = Field(
        default="",
        alias="ALARMHUB_OIDC_REDIRECT_URI",
        description="…/api/v1/login/oidc/callback as registered",
    )
    oidc_groups: str = Field(
        default="",
        alias="ALARMHUB_OIDC_GROUPS",
        description='directory groups → role and unit, JSON {"group": "role:unit"}; first match wins',
    )
    oidc_groups_claim: str = Field(default="groups", min_length=1, alias="ALARMHUB_OIDC_GROUPS_CLAIM")
    map_tile_url: str = Field(
        default="",
        alias="ALARMHUB_MAP_TILE_URL",
        description="XYZ tile URL of the console's base map ({z}/{x}/{y}), e.g. the police GIS; "
        "empty: the MBTiles file's tiles, or none",
    )
    map_attribution: str = Field(default="", alias="ALARMHUB_MAP_ATTRIBUTION", description="shown on the map")
    map_tile_crs: Literal["wgs84", "gcj02"] = Field(
        default="wgs84",
        alias="ALARMHUB_MAP_TILE_CRS",
        description="coordinate system the tiles are drawn in; gcj02: the console converts WGS-84 "
        "areas and markers before drawing them",
    )
    map_max_zoom: int = Field(default=18, ge=1, le=24, alias="ALARMHUB_MAP_MAX_ZOOM")
    map_mbtiles: str | None = Field(
        default=None,
        alias="ALARMHUB_MAP_MBTILES",
        description="local MBTiles file served at /map/tiles/{z}/{x}/{y}.<format> (isolated networks)",
    )

    @model_validator(mode="after")
    def _oidc_complete(self) -> DispatchSettings:
        if self.oidc_issuer:
            if not (self.oidc_client_id and self.oidc_redirect_uri and self.oidc_groups):
                raise ValueError(
                    "ALARMHUB_OIDC_ISSUER needs ALARMHUB_OIDC_CLIENT_ID, ALARMHUB_OIDC_REDIRECT_URI and "
                    "ALARMHUB_OIDC_GROUPS"
                )
            parse_groups(self.oidc_groups)  # ValueError naming the bad entry
        return self

    @model_validator(mode="after")
    def _dev_token_needs_dev_mode(self) -> DispatchSettings:
        if self.dev_token and not self.dev_mode:
            raise ValueError(
                "ALARMHUB_DEV_TOKEN is honoured only in the dev stack (ALARMHUB_DEV_MODE=1); "
                "production tokens are minted with POST /api/v1/tokens or alarmhub-admin"
            )
        return self

    @property
    def gps_key_prefix(self) -> str:
        return self.prefixed(self.gps_redis_prefix, "gps")


def oidc_client(s: DispatchSettings, states: LoginStates) -> OidcClient | None:
    """The directory sign-in client, when ``ALARMHUB_OIDC_ISSUER`` is set (routes/oidc.py)."""
    if not s.oidc_issuer:
        return None
    secret = s.oidc_client_secret.get_secret_value() if s.oidc_client_secret else None
    cfg = OidcConfig(
        s.oidc_issuer,
        s.oidc_client_id,
        secret,
        s.oidc_redirect_uri,
        parse_groups(s.oidc_groups),
        s.oidc_groups_claim,
    )
    return OidcClient(cfg, states)
