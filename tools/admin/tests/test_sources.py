"""Reading and validating unit files (no database): formats, coordinate systems, the findings."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import shapefile
import shapely
from alarmhub_admin.crs import parse_crs
from alarmhub_admin.overview import draw_overview
from alarmhub_admin.sources import read_units
from alarmhub_admin.validate import validate
from alarmhub_geo import gcj02_to_wgs84
from pyproj import CRS, Transformer
from shapely.geometry import shape

DATA = Path(__file__).parent / "data"
CLEAN = DATA / "mini-city-gcj02.geojson"
ERRORS = DATA / "mini-city-errors-gcj02.geojson"


def _raw() -> dict[str, shapely.Geometry]:
    doc = json.loads(CLEAN.read_text("utf-8"))
    return {f["properties"]["id"]: shape(f["geometry"]) for f in doc["features"]}


def test_geojson_in_gcj02_is_converted_to_wgs84() -> None:
    units, bad = read_units(CLEAN, "gcj02")
    assert bad == []
    by = {u.id: u for u in units}
    assert [by[i].tier for i in ("mc", "440304", "F1", "F1-W1")] == [1, 2, 3, 4]
    raw = _raw()["F1"].exterior.coords[0]
    got = by["F1"].geometry.exterior.coords[0]  # type: ignore[union-attr]
    want = gcj02_to_wgs84(raw[0], raw[1])
    assert got == pytest.approx(want, abs=1e-9)
    # in Shenzhen the true (WGS-84) position is ~500 m west and ~300 m north of the GCJ-02 one
    assert 0.003 < raw[0] - got[0] < 0.007 and -0.004 < raw[1] - got[1] < -0.001


def test_clean_city_has_no_findings() -> None:
    units, bad = read_units(CLEAN, "gcj02")
    report = validate(units, bad)
    assert report.findings == []
    assert report.counts == {"city": 1, "district": 2, "station": 5, "site": 1}


def test_deliberate_errors_are_reported(tmp_path: Path) -> None:
    units, bad = read_units(ERRORS, "gcj02")
    report = validate(units, bad)
    codes = sorted((f.level, f.code, f.units) for f in report.findings)
    assert codes == [
        ("error", "orphan", ("X9",)),
        ("error", "overlap", ("F1", "F2")),
        ("error", "overlap", ("F2", "F3")),
        ("warning", "gap", ("440303",)),
    ]
    gap = next(f for f in report.findings if f.code == "gap")
    assert 1.5e6 < gap.area_m2 < 3e6  # the ~0.01° strip cut off L2's eastern edge
    png = draw_overview(report, tmp_path / "map.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_station_outside_its_district_and_bad_rows(tmp_path: Path) -> None:
    rows = [
        ("c", "城", "city", "", "POLYGON((0 0, 0.1 0, 0.1 0.1, 0 0.1, 0 0))"),
        ("d", "区", "district", "c", "POLYGON((0 0, 0.1 0, 0.1 0.1, 0 0.1, 0 0))"),
        ("s", "所", "station", "d", "POLYGON((0.05 0, 0.12 0, 0.12 0.1, 0.05 0.1, 0.05 0))"),
        ("t", "所2", "district", "d", "POLYGON((0 0, 0.05 0, 0.05 0.1, 0 0.1, 0 0))"),
        ("", "无编号", "station", "d", ""),
        ("u", "坏", "station", "d", "POLYGON((0 0, 1 1"),
    ]
    p = tmp_path / "units.csv"
    with p.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "name", "level", "parent", "wkt"])
        w.writerows(rows)
    units, bad = read_units(p)
    assert [line for line, _ in bad] == [6, 7]
    report = validate(units, bad)
    codes = sorted(f.code for f in report.findings)
    # and d's western half is a gap, t (a "district" under a district) has no station
    assert codes == ["gap", "orphan", "outside_parent", "uncovered", "unreadable", "unreadable"]
    out = next(f for f in report.findings if f.code == "outside_parent")
    assert out.units == ("s", "d") and 1.5e7 < out.area_m2 < 2.5e7  # 0.02° x 0.1° at the equator


@pytest.mark.parametrize("epsg", [4526, 4547])  # GK 3° zone 38 with zone prefix; zone CM 114°E without
def test_csv_wkt_in_gauss_kruger(tmp_path: Path, epsg: int) -> None:
    units, _ = read_units(CLEAN, "gcj02")
    fwd = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)
    p = tmp_path / "units.csv"
    with p.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "name", "level", "parent", "wkt"])
        for u in units:
            g = shapely.transform(
                u.geometry, lambda c: __import__("numpy").column_stack(fwd.transform(c[:, 0], c[:, 1]))
            )
            w.writerow([u.id, u.name, u.tier, u.parent_id or "", g.wkt])
    back, bad = read_units(p, f"EPSG:{epsg}")
    assert bad == []
    for a, b in zip(units, back, strict=True):
        assert a.geometry.hausdorff_distance(b.geometry) < 1e-6  # type: ignore[union-attr]  # ~0.1 m
    assert validate(back).findings == []


def test_shapefile_with_prj(tmp_path: Path) -> None:
    units, _ = read_units(CLEAN, "gcj02")
    base = tmp_path / "units"
    with shapefile.Writer(str(base), shapeType=shapefile.POLYGON, encoding="utf-8") as w:
        for f in ("id", "name", "level", "parent"):
            w.field(f, "C", 80)
        for u in units:
            w.shape(
                u.geometry.__geo_interface__
                if u.geometry.geom_type == "Polygon"  # type: ignore[union-attr]
                else shapely.geometry.mapping(u.geometry)
            )
            w.record(u.id, u.name, str(u.tier), u.parent_id or "")
    base.with_suffix(".prj").write_text(CRS.from_epsg(4490).to_wkt("WKT1_ESRI"))
    base.with_suffix(".cpg").write_text("UTF-8")
    back, bad = read_units(base.with_suffix(".shp"))
    assert bad == []
    assert [u.name for u in back] == [u.name for u in units]
    for a, b in zip(units, back, strict=True):
        assert abs(a.geometry.area - b.geometry.area) < 1e-9  # type: ignore[union-attr]
    assert parse_crs("EPSG:4490").kind == "wgs84"


def test_gauss_kruger_shapefile_and_geojson_crs_member_need_no_option(tmp_path: Path) -> None:
    """What a police GIS exports: a Shapefile in a CGCS2000 Gauss–Krüger zone (EPSG:4547, its .prj says
    so) and GeoJSON naming EPSG:4490 in its ``crs`` member — read without --crs, to the same areas."""
    units, _ = read_units(CLEAN, "gcj02")
    fwd = Transformer.from_crs("EPSG:4326", "EPSG:4547", always_xy=True)
    base = tmp_path / "gk"
    with shapefile.Writer(str(base), shapeType=shapefile.POLYGON, encoding="utf-8") as w:
        for f in ("id", "name", "level", "parent"):
            w.field(f, "C", 80)
        for u in units:
            g = shapely.transform(
                u.geometry, lambda c: __import__("numpy").column_stack(fwd.transform(c[:, 0], c[:, 1]))
            )
            w.shape(shapely.geometry.mapping(g))
            w.record(u.id, u.name, str(u.tier), u.parent_id or "")
    base.with_suffix(".prj").write_text(CRS.from_epsg(4547).to_wkt("WKT1_ESRI"))
    base.with_suffix(".cpg").write_text("UTF-8")
    gj = tmp_path / "cgcs2000.geojson"
    gj.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4490"}},
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"id": u.id, "name": u.name, "level": u.tier, "parent": u.parent_id},
                        "geometry": shapely.geometry.mapping(u.geometry),
                    }
                    for u in units
                ],
            }
        )
    )
    for path in (base.with_suffix(".shp"), gj):
        back, bad = read_units(path)
        assert bad == [] and [u.id for u in back] == [u.id for u in units], path
        for a, b in zip(units, back, strict=True):
            assert a.geometry.hausdorff_distance(b.geometry) < 1e-6, path  # type: ignore[union-attr]
        assert validate(back).findings == []
