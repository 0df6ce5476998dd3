"""Fail on a Python module over 600 lines or a function over 80 in services/*/src and libs/*/src.

`make lint` runs it. Migrations and generated code are aside (``SKIP_PARTS``); tests, bench/ and the
console's JavaScript are outside the scanned trees. The accepted exceptions are listed below, each with
its reason; an entry that is no longer needed fails the check too, so the list stays honest.
Usage: ``python scripts/check_sizes.py [ROOT]``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
SKIP_PARTS = {"migrations", "generated", "_generated"}

#: module path → why it stays over 600 lines for now
MODULES: dict[str, str] = {}

#: "path::qualified.name" → why the function stays over 80 lines for now
FUNCTIONS: dict[str, str] = {}


def _functions(tree: ast.AST) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                out.append((name, (child.end_lineno or child.lineno) - child.lineno + 1))
                walk(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                walk(child, f"{prefix}{child.name}.")
            else:
                walk(child, prefix)

    walk(tree, "")
    return out


def check(root: Path) -> list[str]:
    problems: list[str] = []
    seen_modules: set[str] = set()
    seen_functions: set[str] = set()
    files = sorted([*root.glob("services/*/src/**/*.py"), *root.glob("libs/*/src/**/*.py")])
    for f in files:
        rel = f.relative_to(root).as_posix()
        if SKIP_PARTS & set(f.parts):
            continue
        text = f.read_text("utf-8")
        lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
        if lines > MAX_MODULE_LINES:
            seen_modules.add(rel)
            if rel not in MODULES:
                problems.append(f"{rel}: {lines} lines (> {MAX_MODULE_LINES}): split it by responsibility")
        for name, n in _functions(ast.parse(text, rel)):
            key = f"{rel}::{name}"
            if n > MAX_FUNCTION_LINES:
                seen_functions.add(key)
                if key not in FUNCTIONS:
                    problems.append(f"{key}: {n} lines (> {MAX_FUNCTION_LINES}): split it")
    for stale in sorted(set(MODULES) - seen_modules):
        problems.append(f"{stale}: within {MAX_MODULE_LINES} lines now (or gone): remove it from MODULES")
    for stale in sorted(set(FUNCTIONS) - seen_functions):
        problems.append(f"{stale}: within {MAX_FUNCTION_LINES} lines now (or gone): remove it from FUNCTIONS")
    return problems


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    problems = check(root)
    for p in problems:
        print(p)
    if problems:
        print(
            f"{len(problems)} size problem(s); the limits and the accepted exceptions: scripts/check_sizes.py"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
