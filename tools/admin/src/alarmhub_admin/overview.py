"""The overview map of an import: a PNG the operator opens next to the printed report.

Districts are filled in pale colours, stations outlined, grassroots sites dotted; what the report
found is painted over them: overlaps red, parts outside their parent magenta, gaps and uncovered ground
orange, each numbered as in the report. Drawn with Pillow on an equirectangular projection scaled at the
city's latitude (fine at city size); labels use a CJK font when one is installed (fonts-noto-cjk).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import shapely
from PIL import Image, ImageDraw, ImageFont
from shapely.geometry.base import BaseGeometry

from .validate import Report

__all__ = ["draw_overview"]

_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
)
_PALETTE = [
    (222, 235, 247),
    (229, 245, 224),
    (254, 230, 206),
    (239, 237, 245),
    (255, 255, 204),
    (224, 236, 244),
]
_MARK = {
    "orphan": (120, 40, 200),
    "overlap": (220, 30, 30),
    "outside_parent": (200, 0, 200),
    "gap": (255, 140, 0),
    "uncovered": (255, 170, 60),
}


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    for path in _FONTS:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default()


class _Canvas:
    def __init__(self, bounds: tuple[float, float, float, float], width: int) -> None:
        minx, miny, maxx, maxy = bounds
        self.kx = math.cos(math.radians((miny + maxy) / 2))
        pad = 0.03 * max(maxx - minx, maxy - miny)
        self.minx, self.maxy = minx - pad, maxy + pad
        span_x = (maxx - minx + 2 * pad) * self.kx
        span_y = maxy - miny + 2 * pad
        self.scale = width / span_x
        self.size = (width, max(200, int(span_y * self.scale)))

    def xy(self, coords: Iterable[tuple[float, ...]]) -> list[tuple[float, float]]:
        return [((x - self.minx) * self.kx * self.scale, (self.maxy - y) * self.scale) for x, y, *_ in coords]

    def rings(self, geom: BaseGeometry) -> Iterable[tuple[list[tuple[float, float]], bool]]:
        for poly in shapely.get_parts(geom):
            if poly.geom_type != "Polygon":
                continue
            yield self.xy(poly.exterior.coords), True
            for hole in poly.interiors:
                yield self.xy(hole.coords), False


def _label(
    d: ImageDraw.ImageDraw,
    placed: list[tuple[float, float, float, float]],
    at: tuple[float, float],
    text: str,
    font: Any,
) -> None:
    """A finding's label, moved down past the labels already there (two findings at one point — an
    orphan station filling a gap — printed one over the other)."""
    x, y = at
    for _ in range(len(placed) + 1):
        box = d.textbbox((x, y), text, font=font, anchor="lm")
        hit = next(
            (b for b in placed if box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3]), None
        )
        if hit is None:
            break
        y += hit[3] - box[1] + 2
    placed.append(d.textbbox((x, y), text, font=font, anchor="lm"))
    d.text((x, y), text, fill=(0, 0, 0), font=font, anchor="lm")


def draw_overview(report: Report, path: Path, width: int = 1600) -> Path:
    units = [u for u in report.units if u.geometry is not None]
    if not units:
        raise ValueError("no unit has an area: nothing to draw")
    bounds = shapely.union_all([u.geometry for u in units]).bounds
    cv = _Canvas(bounds, width)
    img = Image.new("RGB", cv.size, (250, 250, 250))
    d = ImageDraw.Draw(img)
    districts = sorted((u for u in units if u.tier == 2), key=lambda u: u.id)
    for i, u in enumerate(districts):
        assert u.geometry is not None
        for ring, outer in cv.rings(u.geometry):
            d.polygon(ring, fill=_PALETTE[i % len(_PALETTE)] if outer else (250, 250, 250))
    for f in sorted(report.findings, key=lambda f: f.level == "error"):  # errors over warnings
        if f.geometry is not None and f.code in _MARK:
            for ring, outer in cv.rings(f.geometry):
                d.polygon(ring, fill=_MARK[f.code] if outer else None)
    for u in units:
        assert u.geometry is not None
        style = {1: ((40, 40, 40), 3), 2: ((60, 60, 60), 2), 3: ((90, 110, 140), 1), 4: ((150, 150, 150), 1)}
        colour, w = style[u.tier]
        for ring, _ in cv.rings(u.geometry):
            d.line([*ring, ring[0]], fill=colour, width=w)
    small, big = _font(max(10, width // 130)), _font(max(14, width // 70))
    for u in districts:
        assert u.geometry is not None
        p = u.geometry.representative_point()
        ((x, y),) = cv.xy([(p.x, p.y)])
        d.text((x, y), u.name, fill=(30, 30, 30), font=big, anchor="mm")
    placed: list[tuple[float, float, float, float]] = []
    for n, f in enumerate(report.findings, start=1):
        if f.where is None:
            continue
        ((x, y),) = cv.xy([f.where])
        r = max(6, width // 200)
        colour = _MARK.get(f.code, (0, 0, 0))
        d.ellipse([x - r, y - r, x + r, y + r], outline=colour, width=2)
        _label(d, placed, (x + r + 2, y), f"{n} {f.code}", small)
    legend = [
        ("orphan", "orphan (error)"),
        ("overlap", "overlap (error)"),
        ("outside_parent", "outside its parent (error)"),
        ("gap", "gap (warning)"),
    ]
    y0 = 10
    for code, label in legend:
        d.rectangle([10, y0, 30, y0 + 14], fill=_MARK[code])
        d.text((36, y0 + 7), label, fill=(0, 0, 0), font=small, anchor="lm")
        y0 += 20
    d.text((10, y0 + 4), report.text().splitlines()[0], fill=(0, 0, 0), font=small)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, "PNG", optimize=True)
    return path
