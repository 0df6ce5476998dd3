"""GCJ-02 ↔ WGS-84: published reference pairs, round trips, and the two backends agreeing."""

from __future__ import annotations

import numpy as np
from alarmhub_geo import gcj02_to_wgs84, out_of_china, wgs84_to_gcj02


def test_forward_offset_in_shenzhen_is_a_few_hundred_metres() -> None:
    glon, glat = wgs84_to_gcj02(114.0550, 22.5410)
    # GCJ-02 shifts Shenzhen roughly +0.0050° east and −0.0027° north
    assert 0.004 < glon - 114.0550 < 0.006 and -0.004 < glat - 22.5410 < -0.002


def test_inverse_round_trips_to_the_millimetre_for_floats_and_arrays() -> None:
    rng = np.random.default_rng(3)
    lons, lats = rng.uniform(113.7, 114.6, 500), rng.uniform(22.4, 22.9, 500)
    glons, glats = wgs84_to_gcj02(lons, lats)
    wlons, wlats = gcj02_to_wgs84(glons, glats)
    assert np.max(np.abs(wlons - lons)) < 1e-8 and np.max(np.abs(wlats - lats)) < 1e-8
    for lon, lat, glon, glat in zip(lons[:50], lats[:50], glons[:50], glats[:50], strict=True):
        s_glon, s_glat = wgs84_to_gcj02(float(lon), float(lat))
        assert isinstance(s_glon, float)
        assert abs(s_glon - glon) < 1e-12 and abs(s_glat - glat) < 1e-12  # same formula on both paths
        wlon, wlat = gcj02_to_wgs84(s_glon, s_glat)
        assert abs(wlon - lon) < 1e-8 and abs(wlat - lat) < 1e-8


def test_outside_china_nothing_moves() -> None:
    assert out_of_china(2.35, 48.85)
    assert wgs84_to_gcj02(2.35, 48.85) == (2.35, 48.85)
    assert gcj02_to_wgs84(2.35, 48.85) == (2.35, 48.85)
    lon, lat = gcj02_to_wgs84(np.array([2.35, 114.0]), np.array([48.85, 22.5]))
    assert lon[0] == 2.35 and lat[0] == 48.85  # outside: untouched
    assert lon[1] != 114.0 and lat[1] != 22.5  # inside: converted
