"""The district backup's settings and refusal rules (pure; the whole mode against a real district copy is
tests/faults/test_district_replication.py)."""

from __future__ import annotations

import pytest
from alarmhub_dispatch.backup import ALLOWED_WRITES, Sessions, refused
from alarmhub_dispatch.config import DispatchSettings
from pydantic import ValidationError


def test_backup_mode_needs_a_district_and_refuses_the_dev_token() -> None:
    s = DispatchSettings(ALARMHUB_DISPATCH_MODE="district_backup", ALARMHUB_BACKUP_DISTRICT="440304")
    assert s.read_only and s.backup_district == "440304"
    assert not DispatchSettings().read_only
    with pytest.raises(ValidationError, match="needs ALARMHUB_BACKUP_DISTRICT"):
        DispatchSettings(ALARMHUB_DISPATCH_MODE="district_backup")
    with pytest.raises(ValidationError, match="ALARMHUB_DEV_TOKEN is refused"):
        DispatchSettings(
            ALARMHUB_DISPATCH_MODE="district_backup",
            ALARMHUB_BACKUP_DISTRICT="440304",
            ALARMHUB_DEV_MODE=True,
            ALARMHUB_DEV_TOKEN="x",
        )
    with pytest.raises(ValidationError, match="only read with"):
        DispatchSettings(ALARMHUB_BACKUP_DISTRICT="440304")
    with pytest.raises(ValidationError):
        DispatchSettings(ALARMHUB_DISPATCH_MODE="district_backup", ALARMHUB_BACKUP_DISTRICT="x' OR 1=1")
    with pytest.raises(ValidationError):
        DispatchSettings(ALARMHUB_DISPATCH_MODE="standby")


@pytest.mark.parametrize(
    ("method", "path", "refuse"),
    [
        ("GET", "/api/v1/incidents", False),
        ("HEAD", "/", False),
        ("OPTIONS", "/api/v1/incidents", False),
        ("POST", "/api/v1/login", False),
        ("POST", "/api/v1/logout/", False),
        ("POST", "/api/v1/incidents/1/ack", True),
        ("PUT", "/api/v1/registry/accounts/1/A", True),
        ("PATCH", "/api/v1/people/x", True),
        ("DELETE", "/api/v1/webhooks/1", True),
        ("POST", "/api/v1/tokens", True),
        ("GET", "/api/v1/login", False),  # a read: answered (405) by the route table as usual
    ],
)
def test_every_write_but_sign_in_and_out_is_refused(method: str, path: str, refuse: bool) -> None:
    assert refused(method, path) is refuse
    assert ("POST", "/api/v1/login") in ALLOWED_WRITES and len(ALLOWED_WRITES) == 2


def test_sessions_expire_revoke_and_stay_bounded() -> None:
    from datetime import UTC, datetime, timedelta

    s = Sessions(max_entries=2)
    later = datetime.now(UTC) + timedelta(hours=1)
    s.put("a", {"user_name": "a"}, later)
    s.put("b", {"user_name": "b"}, datetime.now(UTC) - timedelta(seconds=1))
    assert s.get("a") == {"user_name": "a"} and s.get("b") is None  # expired
    s.put("c", {"user_name": "c"}, later)
    s.put("d", {"user_name": "d"}, later)
    assert s.get("a") is None and s.get("d") is not None  # the oldest went first
    s.revoke("d")
    assert s.get("d") is None and s.revoked("d")


def test_every_write_route_of_the_api_is_refused_but_sign_in_and_out() -> None:
    """The refusal rule over the whole route table: what a district backup answers of the writes."""
    from alarmhub_dispatch.api import build_api

    paths = build_api(None).openapi()["paths"]  # every /api/v1 route (the console's are GETs)
    writes = {
        (m.upper(), path)
        for path, ops in paths.items()
        for m in ops
        if m.upper() not in ("GET", "HEAD", "OPTIONS")
    }
    assert len(writes) > 30
    assert {w for w in writes if not refused(*w)} == set(ALLOWED_WRITES)
    assert ("POST", "/api/v1/login/totp/enrol") in writes and refused("POST", "/api/v1/login/totp/enrol")
