"""Routing on the demo geography: inside, borders, holes, GCJ-02 input, outside the city; batch = single."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from alarmhub_dispatch.demo_geo import CITY_ID, demo_units, load_districts
from alarmhub_dispatch.geo import gcj02_to_wgs84, wgs84_to_gcj02
from alarmhub_dispatch.routing import Area, RouteMethod, Router
from shapely.geometry import Polygon, box


@pytest.fixture(scope="module")
def units():  # type: ignore[no-untyped-def]
    return demo_units()


@pytest.fixture(scope="module")
def router(units) -> Router:  # type: ignore[no-untyped-def]
    return Router(
        [Area(u.id, u.parent_id, u.geometry) for u in units if u.tier == 3],
        [Area(u.id, u.id, u.geometry) for u in units if u.tier == 2],
    )


def test_demo_geography_is_deterministic_labelled_and_covers_every_district(units) -> None:  # type: ignore[no-untyped-def]
    again = demo_units.__wrapped__()
    assert [u.id for u in again] == [u.id for u in units]
    assert all(a.geometry.equals_exact(b.geometry, 1e-12) for a, b in zip(again, units, strict=True))
    stations = [u for u in units if u.tier == 3]
    assert 200 <= len(stations) <= 500
    assert all(
        u.synthetic and u.properties["synthetic"] and "合成" in u.name and "synthetic" in u.name_en
        for u in stations
    )
    districts = {u.id: u for u in units if u.tier == 2}
    assert len(districts) == 9 and {u.parent_id for u in districts.values()} == {CITY_ID}
    for d in districts.values():
        mine = [s.geometry for s in stations if s.parent_id == d.id]
        assert len(mine) >= 8
        # the station areas tile the district: same area, no overlaps
        assert shapely.union_all(mine).symmetric_difference(d.geometry).area < 1e-9
        assert sum(g.area for g in mine) == pytest.approx(d.geometry.area, rel=1e-6)


def test_district_outlines_were_converted_from_gcj02() -> None:
    _, districts = load_districts()
    futian = next(d for d in districts if d.id == "440304")
    import json
    from importlib import resources

    raw = json.loads(
        resources.files("alarmhub_dispatch").joinpath("data/districts-gcj02.geojson").read_text()
    )
    src = next(f for f in raw["features"] if f["properties"]["adcode"] == "440304")
    gcj = shapely.geometry.shape(src["geometry"])
    # in Shenzhen GCJ-02 shifts east (~+0.005° lon) and south (~-0.003° lat): the WGS-84 outline sits back
    dx = gcj.centroid.x - futian.geometry.centroid.x
    dy = gcj.centroid.y - futian.geometry.centroid.y
    assert 0.003 < dx < 0.007 and -0.005 < dy < -0.001


def test_inside_each_station_site_routes_to_its_own_station(router: Router, units) -> None:  # type: ignore[no-untyped-def]
    stations = [u for u in units if u.tier == 3]
    for u in stations:
        p = u.geometry.representative_point()
        r = router.route(p.x, p.y)
        assert (r.station, r.district, r.method) == (u.id, u.parent_id, RouteMethod.INSIDE)


def test_known_futian_point(router: Router) -> None:
    r = router.route(114.0550, 22.5410)  # the e2e test's bank branch, WGS-84
    assert r.district == "440304" and r.station and r.station.startswith("440304-S")
    assert r.method == RouteMethod.INSIDE


def test_border_between_two_stations_is_decided_deterministically(router: Router, units) -> None:  # type: ignore[no-untyped-def]
    a, b = None, None
    stations = [u for u in units if u.parent_id == "440304"]
    for i, s in enumerate(stations):
        for t in stations[i + 1 :]:
            shared = s.geometry.boundary.intersection(t.geometry.boundary)
            if shared.length > 0:
                a, b, line = s, t, shared
                break
        if a:
            break
    assert a and b
    # a vertex both Voronoi cells share: exactly on the border in floating point too
    x, y = shapely.get_coordinates(line)[0]
    r = router.route(float(x), float(y))
    assert r.method == RouteMethod.BORDER
    assert r.station == min(a.id, b.id)


def test_district_border_between_two_districts(router: Router, units) -> None:  # type: ignore[no-untyped-def]
    d = {u.id: u.geometry for u in units if u.tier == 2}
    shared = d["440303"].boundary.intersection(d["440304"].boundary)  # Luohu | Futian
    p = shapely.line_merge(shared).interpolate(0.5, normalized=True) if shared.length else None
    assert p is not None
    r = router.route(p.x, p.y)
    assert r.method in (RouteMethod.BORDER, RouteMethod.INSIDE)  # vertex snapping may leave a single hit
    assert r.district in ("440303", "440304")


def test_gcj02_input_is_converted_before_routing(router: Router, units) -> None:  # type: ignore[no-untyped-def]
    """A map-app (GCJ-02) position, converted once, lands where its WGS-84 truth does."""
    rng = np.random.default_rng(11)
    stations = [u for u in units if u.tier == 3]
    wrong = 0
    for u in rng.choice(np.array(stations, dtype=object), 100, replace=False):
        p = u.geometry.representative_point()
        glon, glat = wgs84_to_gcj02(p.x, p.y)
        lon, lat = gcj02_to_wgs84(glon, glat)
        assert router.route(lon, lat).station == u.id
        wrong += router.route(glon, glat).station != u.id
    assert wrong > 0, "the unconverted offset must matter somewhere, or this test proves nothing"


def test_outside_the_city(router: Router, units) -> None:  # type: ignore[no-untyped-def]
    hk = router.route(114.1694, 22.3193)  # Hong Kong, Mong Kok: far outside
    assert (hk.station, hk.district, hk.method) == (None, None, RouteMethod.OUTSIDE)
    # just off Shenzhen Bay: a few hundred metres out → nearest station, with its distance recorded
    city = next(u for u in units if u.tier == 1).geometry
    futian = next(u for u in units if u.id == "440305").geometry  # Nanshan's coast
    coast = futian.boundary
    c = futian.centroid
    for frac in np.linspace(0, 1, 200):
        q = coast.interpolate(frac, normalized=True)
        # step outwards from the centroid by ~150 m
        vx, vy = q.x - c.x, q.y - c.y
        n = (vx * vx + vy * vy) ** 0.5
        x, y = q.x + vx / n * 0.0015, q.y + vy / n * 0.0015
        if not city.buffer(0.0001).contains(shapely.Point(x, y)):
            break
    r = router.route(x, y)
    assert r.method == RouteMethod.NEAREST and r.station and 50 < r.distance_m <= 500
    # ~1 km out: no station within 500 m, the district takes it
    x2, y2 = q.x + vx / n * 0.009, q.y + vy / n * 0.009
    if not city.contains(shapely.Point(x2, y2)):
        r2 = router.route(x2, y2)
        assert r2.method in (RouteMethod.DISTRICT, RouteMethod.OUTSIDE)
        assert r2.station is None


def test_hole_in_an_area_goes_to_the_nearest_area_or_the_district() -> None:
    """An enclave not in the station's area (e.g. a military zone): holes are not inside."""
    ring = box(114.0, 22.5, 114.1, 22.6)
    hole = box(114.04, 22.54, 114.06, 22.56)
    a = Polygon(ring.exterior.coords, [hole.exterior.coords])
    b = box(114.1, 22.5, 114.2, 22.6)
    district = box(114.0, 22.5, 114.2, 22.6)
    router = Router(
        [Area("D-S01", "D", a), Area("D-S02", "D", b)],
        [Area("D", "D", district)],
        max_distance_m=500,
        district_distance_m=2000,
    )
    near_edge = router.route(114.0405, 22.55)  # ~50 m inside the hole
    assert near_edge.method == RouteMethod.NEAREST and near_edge.station == "D-S01"
    assert 40 < near_edge.distance_m < 60
    centre = router.route(114.05, 22.55)  # ~1 km from any edge of the hole
    assert (centre.station, centre.district, centre.method) == (None, "D", RouteMethod.DISTRICT)
    border = router.route(114.1, 22.55)
    assert (border.station, border.method) == ("D-S01", RouteMethod.BORDER)
    assert router.route(115.0, 22.55).method == RouteMethod.OUTSIDE


def test_batch_matches_single_lookups(router: Router) -> None:
    rng = np.random.default_rng(5)
    lon = rng.uniform(113.7, 114.7, 3000)
    lat = rng.uniform(22.3, 22.9, 3000)
    batch = router.route_many(lon, lat)
    single = [router.route(x, y) for x, y in zip(lon, lat, strict=True)]
    assert batch == single
    assert {r.method for r in batch} >= {RouteMethod.INSIDE, RouteMethod.OUTSIDE}


def test_missing_position() -> None:
    r = Router([], [Area("D", "D", box(0, 0, 1, 1))]).route(None, None)
    assert r.method == RouteMethod.NO_LOCATION and r.station is None


# -- the cell grid: same answers as the exact STRtree path ----------------------------------------------


def _assert_same(
    router: Router, lon: np.ndarray | list[float], lat: np.ndarray | list[float]
) -> set[RouteMethod]:
    """Grid path == exact path on every point (station, district, method and the distance, bit for bit)."""
    methods = set()
    for x, y in zip(lon, lat, strict=True):
        fast, exact = router.route(float(x), float(y)), router.route_exact(float(x), float(y))
        assert fast == exact, (float(x), float(y), fast, exact)
        methods.add(exact.method)
    return methods


def _coast_points(units, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """Points up to ~2.5 km from the district outlines (coast, land borders, Hong Kong side)."""
    rng = np.random.default_rng(seed)
    edge = shapely.union_all([u.geometry for u in units if u.tier == 2]).boundary
    base = shapely.line_interpolate_point(edge, rng.uniform(0, 1, n), normalized=True)
    xy = shapely.get_coordinates(base)
    r = rng.uniform(0, 0.025, n)  # degrees: 0 – ~2.5 km
    a = rng.uniform(0, 2 * np.pi, n)
    return xy[:, 0] + r * np.cos(a), xy[:, 1] + r * np.sin(a)


def test_grid_is_built_over_the_demo_geography(router: Router) -> None:
    stats = router.grid_stats
    assert stats["inside_cells"] > 0 and stats["mixed_cells"] > 0 and stats["outside_cells"] > 0
    assert stats["inside_cells"] + stats["mixed_cells"] + stats["outside_cells"] == stats["cells"]


def test_grid_matches_exact_path_on_random_points_over_and_around_the_city(router: Router) -> None:
    rng = np.random.default_rng(2026)
    lon = rng.uniform(113.6, 114.8, 30_000)  # wider than the grid: sea, Hong Kong, Dongguan, beyond
    lat = rng.uniform(22.2, 23.0, 30_000)
    methods = _assert_same(router, lon, lat)
    assert methods >= {RouteMethod.INSIDE, RouteMethod.NEAREST, RouteMethod.DISTRICT, RouteMethod.OUTSIDE}


def test_grid_matches_exact_path_near_the_coast_and_the_city_limits(router: Router, units) -> None:  # type: ignore[no-untyped-def]
    lon, lat = _coast_points(units, 20_000, 7)
    methods = _assert_same(router, lon, lat)
    assert methods >= {RouteMethod.INSIDE, RouteMethod.NEAREST, RouteMethod.DISTRICT, RouteMethod.OUTSIDE}


def test_grid_matches_exact_path_on_borders(router: Router, units) -> None:  # type: ignore[no-untyped-def]
    """Every station vertex (shared by two or three areas), edge midpoints, and points a hair off them."""
    xy = np.unique(
        np.concatenate([shapely.get_coordinates(u.geometry) for u in units if u.tier == 3]), axis=0
    )
    rings = [np.asarray(r.coords) for u in units if u.tier == 3 for r in shapely.get_rings(u.geometry)]
    mid = np.concatenate([(c[:-1] + c[1:]) / 2 for c in rings])
    tiny = np.random.default_rng(3).normal(0, 1e-9, xy.shape)
    pts = np.concatenate([xy, mid, xy + tiny])
    methods = _assert_same(router, pts[:, 0], pts[:, 1])
    assert RouteMethod.BORDER in methods and RouteMethod.INSIDE in methods


def test_grid_matches_exact_path_on_cell_edges(router: Router) -> None:
    """Points exactly on the grid's own lines (where float rounding picks one cell or its neighbour)."""
    g = router._grid
    assert g is not None
    rng = np.random.default_rng(4)
    ix = rng.integers(0, g.nx + 1, 5000)
    iy = rng.integers(0, g.ny + 1, 5000)
    xs = g.x0 + ix / g.inv_dx
    ys = g.y0 + iy / g.inv_dy
    along_x = g.x0 + rng.uniform(0, g.nx, 5000) / g.inv_dx
    along_y = g.y0 + rng.uniform(0, g.ny, 5000) / g.inv_dy
    _assert_same(router, np.concatenate([xs, along_x, xs]), np.concatenate([ys, ys, along_y]))


def test_grid_matches_exact_path_on_gcj02_input(router: Router) -> None:
    """Map-app positions, converted (as ingest does) and unconverted: the same answers either way."""
    rng = np.random.default_rng(8)
    wlon = rng.uniform(113.75, 114.62, 5000)
    wlat = rng.uniform(22.45, 22.86, 5000)
    gcj = [wgs84_to_gcj02(x, y) for x, y in zip(wlon, wlat, strict=True)]
    back = [gcj02_to_wgs84(x, y) for x, y in gcj]
    _assert_same(router, [p[0] for p in gcj], [p[1] for p in gcj])
    _assert_same(router, [p[0] for p in back], [p[1] for p in back])


def test_grid_far_away_and_degenerate_positions(router: Router) -> None:
    lon = [0.0, 180.0, -180.0, 1e300, -1e300, 114.0, 113.0, 116.0, 114.05, 114]
    lat = [0.0, 90.0, -90.0, 22.5, 22.5, 1e300, 22.5, 22.5, -1e-300, 23]
    _assert_same(router, lon, lat)
    assert router.route(float("nan"), 22.5).method == RouteMethod.NO_LOCATION
    assert router.route(114.05, float("inf")).method == RouteMethod.NO_LOCATION


@pytest.mark.parametrize("cell_m, max_cells", [(200.0, 2_000_000), (37.0, 2_000_000), (50.0, 300)])
def test_grid_matches_exact_path_with_holes_and_any_cell_size(cell_m: float, max_cells: int) -> None:
    """A hole (an enclave), a gap between two stations and a district beyond them; cells small, large,
    and forced larger by the cell cap."""
    ring = box(114.0, 22.5, 114.1, 22.6)
    hole = box(114.04, 22.54, 114.06, 22.56)
    a = Polygon(ring.exterior.coords, [hole.exterior.coords])
    b = box(114.1, 22.5, 114.2, 22.6)
    c = box(114.203, 22.5, 114.25, 22.55)  # ~300 m gap to b: nearest is decided by distance
    district = box(114.0, 22.5, 114.25, 22.6)
    router = Router(
        [Area("D-S01", "D", a), Area("D-S02", "D", b), Area("D-S03", "D", c)],
        [Area("D", "D", district)],
        grid_cell_m=cell_m,
        grid_max_cells=max_cells,
    )
    assert router.grid_stats["cells"] <= max_cells
    rng = np.random.default_rng(int(cell_m))
    lon = np.concatenate([rng.uniform(113.95, 114.3, 6000), rng.uniform(114.035, 114.065, 2000)])
    lat = np.concatenate([rng.uniform(22.45, 22.65, 6000), rng.uniform(22.535, 22.565, 2000)])
    methods = _assert_same(router, lon, lat)
    assert methods == {RouteMethod.INSIDE, RouteMethod.NEAREST, RouteMethod.DISTRICT, RouteMethod.OUTSIDE}
    assert _assert_same(router, [114.1, 114.04, 114.203], [22.55, 22.55, 22.52]) >= {RouteMethod.BORDER}


def test_router_without_grid_routes_exactly(units) -> None:  # type: ignore[no-untyped-def]
    plain = Router(
        [Area(u.id, u.parent_id, u.geometry) for u in units if u.tier == 3],
        [Area(u.id, u.id, u.geometry) for u in units if u.tier == 2],
        grid_cell_m=None,
    )
    assert plain.grid_stats == {}
    r = plain.route(114.0550, 22.5410)
    assert r == plain.route_exact(114.0550, 22.5410) and r.method == RouteMethod.INSIDE


def test_grid_built_in_a_thread_while_lookups_run(units) -> None:  # type: ignore[no-untyped-def]
    """The service's way: router first, grid from a worker thread while the event loop keeps routing."""
    import threading

    late = Router(
        [Area(u.id, u.parent_id, u.geometry) for u in units if u.tier == 3],
        [Area(u.id, u.id, u.geometry) for u in units if u.tier == 2],
        grid_cell_m=None,
    )
    rng = np.random.default_rng(12)
    lon = rng.uniform(113.7, 114.7, 4000)
    lat = rng.uniform(22.3, 22.9, 4000)
    before = [late.route(x, y) for x, y in zip(lon[:200], lat[:200], strict=True)]  # no grid yet: exact
    stats: dict[str, float] = {}
    t = threading.Thread(target=lambda: stats.update(late.build_grid(200.0)))
    t.start()
    during = []
    for x, y in zip(lon, lat, strict=True):  # bounded: 4,000 lookups, whether the build is done or not
        during.append((late.route(x, y), late.route_exact(x, y)))
    t.join(timeout=120)
    assert not t.is_alive() and stats["cells"] > 0
    assert all(a == b for a, b in during)
    assert before == [late.route_exact(x, y) for x, y in zip(lon[:200], lat[:200], strict=True)]
    _assert_same(late, lon, lat)
