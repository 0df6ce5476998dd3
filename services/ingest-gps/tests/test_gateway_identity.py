"""The gateway's identity and advertised command URL (session ownership, docs/ingest-gps.md)."""

from __future__ import annotations

import socket

import pytest
from alarmhub_ingest_gps.config import GpsSettings
from pydantic import ValidationError


def test_defaults_derive_from_the_bound_command_endpoint() -> None:
    s = GpsSettings(ALARMHUB_GPS_COMMAND_HOST="10.1.2.3", ALARMHUB_TOPIC_PREFIX="t1.")
    assert s.advertised(9113) == (f"{socket.gethostname()}:9113", "http://10.1.2.3:9113/commands")
    assert s.key_prefix == "t1.gps:"
    wildcard = GpsSettings(ALARMHUB_GPS_COMMAND_HOST="0.0.0.0")
    assert wildcard.advertised(9112)[1] == f"http://{socket.gethostname()}:9112/commands"
    assert GpsSettings(ALARMHUB_GPS_COMMAND_HOST="::1").advertised(1)[1] == "http://[::1]:1/commands"


def test_explicit_identity_wins() -> None:
    s = GpsSettings(
        ALARMHUB_GPS_GATEWAY_ID="gw-07",
        ALARMHUB_GPS_ADVERTISED_COMMAND_URL="http://gps7.internal:9112/commands",
        ALARMHUB_GPS_REDIS_PREFIX="city:",
    )
    assert s.advertised(9112) == ("gw-07", "http://gps7.internal:9112/commands")
    assert s.key_prefix == "city:"


def test_each_worker_of_several_advertises_its_own_identity_and_command_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """k8s and compose name one id and URL per pod or container; worker i (ALARMHUB_WORKER_INDEX, set by
    the supervisor) holds its own sessions and serves commands on the command port + i."""
    s = GpsSettings(
        ALARMHUB_GPS_GATEWAY_ID="gps-pod-1",
        ALARMHUB_GPS_ADVERTISED_COMMAND_URL="http://10.0.0.7:9112/commands",
    )
    monkeypatch.setenv("ALARMHUB_WORKER_INDEX", "0")
    assert s.advertised(9112) == ("gps-pod-1-w0", "http://10.0.0.7:9112/commands")
    monkeypatch.setenv("ALARMHUB_WORKER_INDEX", "2")
    assert s.advertised(9114) == ("gps-pod-1-w2", "http://10.0.0.7:9114/commands")
    bare = GpsSettings(ALARMHUB_GPS_ADVERTISED_COMMAND_URL="https://[fd00::7]/commands")
    assert bare.advertised(9114) == (f"{socket.gethostname()}:9114", "https://[fd00::7]:445/commands")
    assert (
        GpsSettings(ALARMHUB_GPS_COMMAND_HOST="10.1.2.3").advertised(9114)[1]
        == "http://10.1.2.3:9114/commands"
    )


@pytest.mark.parametrize(
    "env",
    [
        {"ALARMHUB_GPS_GATEWAY_ID": "gw 07"},
        {"ALARMHUB_GPS_GATEWAY_ID": ""},
        {"ALARMHUB_GPS_ADVERTISED_COMMAND_URL": "gps7:9112/commands"},
        {"ALARMHUB_GPS_ADVERTISED_COMMAND_URL": "ftp://gps7/commands"},
        {"ALARMHUB_GPS_ADVERTISED_COMMAND_URL": "http://0.0.0.0:9112/commands"},
        {"ALARMHUB_GPS_OWNERSHIP_REFRESH_S": "0"},
    ],
)
def test_invalid_identity_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        GpsSettings(**env)
