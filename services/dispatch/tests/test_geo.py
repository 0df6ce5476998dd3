"""GCJ-02 ↔ WGS-84: published reference points and the accuracy of the iterative inverse."""

from __future__ import annotations

import numpy as np
import pytest
from alarmhub_dispatch.geo import gcj02_to_wgs84, out_of_china, wgs84_to_gcj02


def test_forward_offset_is_a_few_hundred_metres_in_shenzhen() -> None:
    lon, lat = wgs84_to_gcj02(114.0550, 22.5410)
    dx = (lon - 114.0550) * 102_800
    dy = (lat - 22.5410) * 111_320
    assert 300 < (dx * dx + dy * dy) ** 0.5 < 700


def test_inverse_of_tiananmen_matches_the_commonly_quoted_wgs84_position() -> None:
    # amap (GCJ-02) 116.404, 39.915 ↔ WGS-84 ≈ 116.3978, 39.9136 (Tiananmen; widely published pair)
    lon, lat = gcj02_to_wgs84(116.404, 39.915)
    assert lon == pytest.approx(116.39776, abs=2e-5)
    assert lat == pytest.approx(39.91360, abs=2e-5)


def test_iterative_inverse_round_trips_to_millimetres() -> None:
    rng = np.random.default_rng(3)
    lon = rng.uniform(113.7, 114.7, 10_000)
    lat = rng.uniform(22.4, 22.9, 10_000)
    glon, glat = wgs84_to_gcj02(lon, lat)
    wlon, wlat = gcj02_to_wgs84(glon, glat)
    assert np.max(np.abs(wlon - lon)) < 1e-8  # ~1 mm
    assert np.max(np.abs(wlat - lat)) < 1e-8


def test_outside_china_is_not_offset() -> None:
    assert bool(out_of_china(2.35, 48.85))
    assert wgs84_to_gcj02(2.35, 48.85) == (2.35, 48.85)
    assert gcj02_to_wgs84(2.35, 48.85) == (2.35, 48.85)
