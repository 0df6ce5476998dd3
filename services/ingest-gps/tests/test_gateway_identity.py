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
