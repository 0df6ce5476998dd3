"""Writing a validated unit tree: a diff against the ``units`` table, applied in one transaction with its
history (``unit_imports``, ``unit_history``).

The import owns the police tree (every unit that is not an external hand-off unit such as 119/120,
which ``import external-units`` owns): a unit in the file and not in the table is *added*, one whose
name, tier, parent, kind, area or attributes differ is *changed*, one in the table and not in the file
is *retired* (deleted from ``units``; its last row stays in ``unit_history``). Areas are compared after
normalising and rounding to 1e-7° (~1 cm), so re-importing the same data is a no-op, not a rewrite.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import shapely
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

from .sources import UnitIn

__all__ = ["Diff", "apply_diff", "diff_units", "load_current", "unit_row"]

_LOCK = 0x756E697473  # 'units'
_COLS = ("name", "name_en", "tier", "parent_id", "kind", "geometry", "properties")


def _geom_json(geom: BaseGeometry | None) -> dict[str, Any] | None:
    if geom is None:
        return None
    g = shapely.set_precision(shapely.normalize(geom), 1e-7)
    return json.loads(json.dumps(mapping(g)))  # tuples → lists, as they come back from jsonb


def unit_row(u: UnitIn, source: str | None = None) -> dict[str, Any]:
    props = dict(u.properties)
    if source:
        props.setdefault("source", source)
    return {
        "id": u.id,
        "name": u.name,
        "name_en": u.name_en,
        "tier": u.tier,
        "parent_id": u.parent_id,
        "kind": u.kind,
        "geometry": _geom_json(u.geometry),
        "properties": props,
    }


def _external(r: dict[str, Any]) -> bool:
    return r["parent_id"] is None and r["kind"] != "police"


async def load_current(conn: asyncpg.Connection) -> dict[str, dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT id, name, name_en, tier, parent_id, kind, geometry, properties FROM units"
    )
    out = {}
    for r in rows:
        d = dict(r)
        if _external(d):
            continue
        if d["geometry"] is not None:
            d["geometry"] = _geom_json(shape(d["geometry"]))
        d["properties"] = d["properties"] or {}
        out[d["id"]] = d
    return out


@dataclass
class Diff:
    added: list[dict[str, Any]] = field(default_factory=list)
    changed: list[tuple[dict[str, Any], dict[str, Any], list[str]]] = field(default_factory=list)
    retired: list[dict[str, Any]] = field(default_factory=list)
    unchanged: int = 0

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.retired)

    def summary(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "changed": len(self.changed),
            "retired": len(self.retired),
            "unchanged": self.unchanged,
        }

    def text(self) -> str:
        s = self.summary()
        lines = [
            f"{s['added']} added, {s['changed']} changed, {s['retired']} retired, {s['unchanged']} unchanged"
        ]
        lines += [f"  + {r['id']} {r['name']}" for r in self.added[:50]]
        lines += [f"  ~ {new['id']} {new['name']}: {', '.join(what)}" for _, new, what in self.changed[:50]]
        lines += [f"  - {r['id']} {r['name']}" for r in self.retired[:50]]
        more = len(self.added) + len(self.changed) + len(self.retired) - 150
        if more > 0:
            lines.append(f"  … and {more} more")
        return "\n".join(lines)


def diff_units(current: dict[str, dict[str, Any]], new_rows: list[dict[str, Any]]) -> Diff:
    d = Diff()
    seen = set()
    for row in new_rows:
        seen.add(row["id"])
        old = current.get(row["id"])
        if old is None:
            d.added.append(row)
            continue
        what = [c for c in _COLS if old.get(c) != row.get(c)]
        if what:
            d.changed.append((old, row, ["area" if c == "geometry" else c for c in what]))
        else:
            d.unchanged += 1
    d.retired = [r for uid, r in sorted(current.items()) if uid not in seen]
    return d


async def apply_diff(
    conn: asyncpg.Connection, diff: Diff, *, by: str, source: str, sha256: str
) -> int | None:
    """Apply ``diff`` with its history in one transaction; returns the import id (None when nothing changed)."""
    if diff.empty:
        return None
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
        import_id = await conn.fetchval(
            "INSERT INTO unit_imports (by, source, sha256, summary) VALUES ($1,$2,$3,$4) RETURNING id",
            by,
            source,
            sha256,
            diff.summary(),
        )
        hist: list[tuple[Any, ...]] = [(import_id, r["id"], "added", None, r) for r in diff.added]
        hist += [(import_id, new["id"], "changed", old, new) for old, new, _ in diff.changed]
        hist += [(import_id, r["id"], "retired", r, None) for r in diff.retired]
        await conn.executemany(
            "INSERT INTO unit_history (import_id, unit_id, change, before, after) VALUES ($1,$2,$3,$4,$5)",
            hist,
        )
        upserts = sorted([*diff.added, *(new for _, new, _ in diff.changed)], key=lambda r: r["tier"])
        # a changed unit may move under a parent that is added in this import: tiers ascending
        await conn.executemany(
            "INSERT INTO units (id, name, name_en, tier, parent_id, kind, synthetic, geometry, properties)"
            " VALUES ($1,$2,$3,$4,$5,$6,false,$7,$8) ON CONFLICT (id) DO UPDATE SET name=$2, name_en=$3,"
            " tier=$4, parent_id=$5, kind=$6, synthetic=false, geometry=$7, properties=$8",
            [
                (
                    r["id"],
                    r["name"],
                    r["name_en"],
                    r["tier"],
                    r["parent_id"],
                    r["kind"],
                    r["geometry"],
                    r["properties"],
                )
                for r in upserts
            ],
        )
        for r in sorted(diff.retired, key=lambda r: -int(r["tier"])):  # children before their parents
            await conn.execute("DELETE FROM units WHERE id = $1", r["id"])
    return int(import_id)
