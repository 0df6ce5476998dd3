"""Fail when SQL text appears in a string literal in dispatch's sources outside ``store/`` (issue #14).

`make lint` runs it. A string literal (or f-string) that reads as a statement — ``SELECT … FROM``,
``INSERT INTO``, ``UPDATE … SET``, ``DELETE FROM``, ``CREATE TABLE``, ``ON CONFLICT`` — is PostgreSQL that
belongs in a store method. Docstrings are prose and are not scanned. The accepted exceptions are listed
below, each with its reason; an entry that no longer holds SQL fails the check too, so the list stays honest.
Usage: ``python scripts/check_sql_in_store.py [ROOT]``.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

SRC = "services/dispatch/src/alarmhub_dispatch"
SQL = re.compile(
    r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(TEMP\s+)?TABLE|ON\s+CONFLICT)\b",
    re.S | re.I,
)

#: module (relative to SRC) → why it keeps SQL outside store/
EXCEPTIONS: dict[str, str] = {
    "basemap.py": "reads a local MBTiles file (SQLite), not dispatch's PostgreSQL",
}


def _docstrings(tree: ast.AST) -> set[int]:
    out: set[int] = set()
    for n in ast.walk(tree):
        if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and n.body:
            first = n.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def _text(n: ast.AST) -> str | None:
    if isinstance(n, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in n.values)
    if isinstance(n, ast.Constant) and isinstance(n.value, str):
        return n.value
    return None


def sql_literals(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _docstrings(tree)
    found = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Constant) and id(n) in skip:
            continue
        text = _text(n)
        if text is not None and SQL.search(text):
            found.append((getattr(n, "lineno", 0), " ".join(text.split())[:70]))
    return found


def main(root: Path) -> int:
    src = root / SRC
    bad, seen = [], set()
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src).as_posix()
        if rel.startswith("store/"):
            continue
        found = sql_literals(path)
        if found and rel in EXCEPTIONS:
            seen.add(rel)
            continue
        bad += [f"{SRC}/{rel}:{line}: SQL outside store/: {text!r}" for line, text in found]
    bad += [
        f"{SRC}/{rel}: listed in EXCEPTIONS but holds no SQL now: drop it" for rel in EXCEPTIONS.keys() - seen
    ]
    for line in sorted(set(bad)):
        print(line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".")))
