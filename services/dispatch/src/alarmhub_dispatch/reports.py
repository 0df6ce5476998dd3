"""Reports for the managing tiers (pure aggregation helpers; the SQL that feeds them is in api.py).

- time to acknowledge per district and station (p50/p90, seconds);
- false-alarm rate by source protocol and by account (closed incidents with a verdict);
- cameras per district and their online rate, against the 2006 plan's targets.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["CAMERA_TARGETS", "CITY_CAMERA_TARGET", "csv_cell", "to_csv"]

# The plan's targets per district of the time (Longhua, Pingshan, Guangming were later split from
# Bao'an and Longgang, so they carry no own target).
CAMERA_TARGETS: dict[str, int] = {
    "440304": 30_000,
    "440303": 30_000,
    "440305": 30_000,
    "440308": 9_700,
    "440306": 50_000,
    "440307": 50_000,
}
CITY_CAMERA_TARGET = 200_000


#: a spreadsheet reads a cell starting with one of these as a formula (OWASP "CSV injection")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def csv_cell(value: Any) -> Any:
    """A value as a CSV cell a spreadsheet shows as text: text that would start a formula gets a leading
    apostrophe (camera names, site names and descriptions come from devices and people). Numbers stay."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: csv_cell(r.get(k)) for k in columns})
    return buf.getvalue()
