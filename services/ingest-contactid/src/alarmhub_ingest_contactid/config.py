"""Settings of the DC-09 receiver: one pydantic-settings class, validated at start."""

from __future__ import annotations

from typing import Literal

from alarmhub_runtime import BaseServiceSettings, health_port_field, workers_field
from pydantic import Field

__all__ = ["ContactIdSettings"]


class ContactIdSettings(BaseServiceSettings):
    """Environment: ``ALARMHUB_DC09_*`` for the receiver, ``ALARMHUB_HEALTH_PORT`` for /metrics."""

    dc09_host: str = Field(default="0.0.0.0", alias="ALARMHUB_DC09_HOST")
    dc09_port: int = Field(
        default=7100,
        ge=0,
        le=65535,
        alias="ALARMHUB_DC09_PORT",
        description="TCP and UDP port; 0 picks a free one (tests)",
    )
    health_port: int = health_port_field(9101)
    dc09_receiver: str = Field(
        default="0",
        alias="ALARMHUB_DC09_RECEIVER",
        description="our receiver number, used in NAKs to unreadable frames",
    )
    window_past_s: float = Field(
        default=20.0,
        gt=0,
        alias="ALARMHUB_DC09_WINDOW_PAST_S",
        description="how old a message timestamp may be before it is NAKed",
    )
    window_future_s: float = Field(
        default=40.0,
        gt=0,
        alias="ALARMHUB_DC09_WINDOW_FUTURE_S",
        description="how far ahead of our clock a timestamp may be",
    )
    check_clear_timestamps: bool = Field(default=True, alias="ALARMHUB_DC09_CHECK_CLEAR_TIMESTAMPS")
    untimed_replay_s: float = Field(
        default=86_400.0,
        ge=0,
        alias="ALARMHUB_DC09_UNTIMED_REPLAY_S",
        description="how long a clear message without a timestamp is remembered, so a captured copy "
        "sent again is ACKed and not published (within the last 65,536 messages)",
    )
    unknown_accounts: Literal["accept", "reject"] = Field(
        default="accept", alias="ALARMHUB_DC09_UNKNOWN_ACCOUNTS"
    )
    dc09_path: str | None = Field(
        default=None,
        alias="ALARMHUB_DC09_PATH",
        description="transmission path name recorded in source.path (dual-path)",
    )
    dc09_paths: str = Field(
        default="",
        alias="ALARMHUB_DC09_PATHS",
        description="receiver number to path name, e.g. 'R1=ethernet,R2=cellular'",
    )
    kafka_linger_ms: int = Field(
        default=0,
        ge=0,
        le=100,
        alias="ALARMHUB_DC09_KAFKA_LINGER_MS",
        description="how long the producer waits to fill a batch (adds to ACK latency)",
    )
    max_frame: int = Field(default=4106, ge=64, alias="ALARMHUB_DC09_MAX_FRAME")
    idle_timeout_s: float = Field(
        default=300.0,
        gt=0,
        alias="ALARMHUB_DC09_IDLE_TIMEOUT_S",
        description="close a TCP connection that sent nothing for this long",
    )
    max_connections: int | None = Field(
        default=None,
        ge=1,
        alias="ALARMHUB_DC09_MAX_CONNECTIONS",
        description="TCP connections one process holds before it closes the next at once (counted as "
        "connections_rejected_total{reason=total}); default: its open-file limit less 512",
    )
    workers: int = workers_field(
        "ALARMHUB_DC09_WORKERS",
        "receiver processes sharing the DC-09 port through SO_REUSEPORT, each with its own "
        "health/metrics port (ALARMHUB_HEALTH_PORT + index); 0 = the CPUs this process may use (cgroup "
        "quota). A fixed ALARMHUB_DC09_PORT is needed for more than one",
    )
    max_connections_per_peer: int = Field(default=64, ge=1, alias="ALARMHUB_DC09_MAX_CONNECTIONS_PER_PEER")
    accounts_refresh_s: float = Field(
        default=30.0,
        gt=0,
        alias="ALARMHUB_DC09_ACCOUNTS_REFRESH_S",
        description="how often the account registry is reloaded from PostgreSQL",
    )
    dc09_registry: bool = Field(
        default=True,
        alias="ALARMHUB_DC09_REGISTRY",
        description="load accounts from PostgreSQL (off: every account is unknown)",
    )
    supervision_check_s: float = Field(default=5.0, gt=0, alias="ALARMHUB_DC09_SUPERVISION_CHECK_S")
    shared_state: bool = Field(
        default=True,
        alias="ALARMHUB_DC09_SHARED_STATE",
        description="share supervision and retransmission memory with the other receivers through Redis "
        "(active-active); off: this process's memory only",
    )
    redis_prefix: str | None = Field(
        default=None,
        alias="ALARMHUB_DC09_REDIS_PREFIX",
        description="prefix of the shared keys (the same on every receiver); default '<topic prefix>dc09:'",
    )
    redis_timeout_s: float = Field(
        default=0.5,
        gt=0,
        le=10,
        alias="ALARMHUB_DC09_REDIS_TIMEOUT_S",
        description="how long a shared-state call may take before the receiver goes on with local memory",
    )
    pending_s: float = Field(
        default=30.0,
        gt=0,
        le=600,
        alias="ALARMHUB_DC09_PENDING_S",
        description="how long a receiver's claim on a message it is publishing holds off the others: longer "
        "than a broker write may take; a receiver that dies mid-write delays that message's retransmission "
        "elsewhere by up to this",
    )
    confirm_delay_ms: float = Field(
        default=10.0,
        ge=0,
        le=1000,
        alias="ALARMHUB_DC09_CONFIRM_DELAY_MS",
        description="how long a message's 'done' in the shared state may wait to go to Redis with the next "
        "claim (one write instead of two per lone alarm); a retransmission to another receiver within it "
        "is held (no reply), not ACKed",
    )
    node_id: str | None = Field(
        default=None,
        alias="ALARMHUB_DC09_NODE_ID",
        description="this receiver's name in the shared state; default '<hostname>:<pid>'",
    )

    @property
    def key_prefix(self) -> str:
        return self.prefixed(self.redis_prefix, "dc09")

    def paths(self) -> dict[str, str]:
        """``ALARMHUB_DC09_PATHS`` as a mapping ``{"R1": "ethernet", ...}`` (receiver numbers normalized)."""
        out: dict[str, str] = {}
        for item in self.dc09_paths.split(","):
            if "=" in item:
                rcv, name = (x.strip() for x in item.split("=", 1))
                num = rcv.upper().removeprefix("R").lstrip("0") or "0"
                if name:
                    out[f"R{num}"] = name
        return out
