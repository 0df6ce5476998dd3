"""Timestamps serialize as RFC 3339 UTC with a ``Z`` and milliseconds (none when zero), as the contract says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alarmhub_events._common import _format_iso_z


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2026, 12, 7, 8, 19, 53, 123456, tzinfo=UTC), "2026-12-07T08:19:53.123Z"),
        (datetime(2026, 12, 7, 8, 19, 53, 999, tzinfo=UTC), "2026-12-07T08:19:53Z"),  # under 1 ms: none
        (datetime(2026, 12, 7, 8, 19, 53, 1000, tzinfo=UTC), "2026-12-07T08:19:53.001Z"),
        (
            datetime(2026, 1, 1, 2, 0, 0, 500000, tzinfo=timezone(timedelta(hours=8))),
            "2025-12-31T18:00:00.500Z",
        ),
        (
            datetime(2026, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
            "2026-03-02T05:00:00Z",
        ),
        (datetime(999, 5, 6, 7, 8, 9, 10000, tzinfo=UTC), "0999-05-06T07:08:09.010Z"),
    ],
)
def test_format(value: datetime, text: str) -> None:
    assert _format_iso_z(value) == text
    # what it replaced: isoformat in UTC, milliseconds kept only when not zero
    iso = value.astimezone(UTC).isoformat(timespec="milliseconds").replace(".000+00:00", "+00:00")
    assert iso.replace("+00:00", "Z") == text
