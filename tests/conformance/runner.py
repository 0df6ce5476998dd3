"""The conformance corpus: public decoders' test frames, as data, run through our decoders.

``vectors/<protocol>/<source>.json`` holds frames taken from a public test suite or capture with the
values that source asserts (or the specification gives) — never our decoder's output. Each protocol has
an adapter, ``adapters/<protocol>.py``, with one function ``decode(frame, context) -> dict`` that runs our
decoder and answers in the vocabulary of the vectors' ``expect``; it raises ``NotImplementedError`` (or
an exception class named ``Unsupported``) for what our decoder deliberately does not handle.

A vector whose frame a correct receiver must refuse (a check code that does not match a truncated frame,
a latitude beyond 90°, a length field that contradicts the frame) says so with ``"refuse": true`` and its
reason in ``why``; it passes only when our decoder refuses it with its own error (a ``ValueError`` such as
``FrameError``), never when it decodes or fails otherwise. What the source asserted for it stays in the
vector under ``source_expect``; the report lists these vectors and their reasons.

Run as a script it writes ``docs/conformance.md`` (``make conformance``)::

    .venv/bin/python tests/conformance/runner.py [--check]

``--check`` exits 1 when the committed report differs from what the corpus gives today.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
REPORT = ROOT / "docs" / "conformance.md"
GOAL = 0.98
DEFAULT_TOL = 1e-4
#: protocols below the goal, each with the vectors it passed when its floor was last raised: the test
#: holds them there (no regression) until they reach the goal, when they leave this file
FLOORS_FILE = HERE / "floors.json"


def floors() -> dict[str, int]:
    if not FLOORS_FILE.exists():
        return {}
    return {
        k: int(v)
        for k, v in json.loads(FLOORS_FILE.read_text(encoding="utf-8")).items()
        if not k.startswith("_")
    }


Status = Literal["pass", "mismatch", "unsupported"]


@dataclass(frozen=True)
class Vector:
    protocol: str
    source: str
    file: str
    id: str
    frame: bytes
    expect: dict[str, Any]
    context: dict[str, Any]
    tol: float
    why: str | None
    refuse: bool = False


@dataclass(frozen=True)
class Outcome:
    vector: Vector
    status: Status
    reason: str


def load_vectors(root: Path = HERE / "vectors") -> list[Vector]:
    out: list[Vector] = []
    for path in sorted(root.glob("*/*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        protocol = doc.get("protocol") or path.parent.name
        for raw in doc["vectors"]:
            if "hex" in raw:
                frame = bytes.fromhex("".join(str(raw["hex"]).split()))
            else:
                frame = str(raw["text"]).encode("utf-8")
            out.append(
                Vector(
                    protocol=protocol,
                    source=doc.get("source", path.stem),
                    file=str(path.relative_to(root)),
                    id=str(raw["id"]),
                    frame=frame,
                    expect=dict(raw.get("expect") or {}),
                    context=dict(raw.get("context") or {}),
                    tol=float(raw.get("tol", DEFAULT_TOL)),
                    why=raw.get("why"),
                    refuse=bool(raw.get("refuse", False)),
                )
            )
    return out


def load_adapter(protocol: str) -> ModuleType | None:
    path = HERE / "adapters" / f"{protocol}.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location(f"_conformance_adapter_{protocol}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def differences(expect: Any, got: Any, tol: float, where: str = "") -> Iterator[str]:
    """What of ``expect`` the decoded value does not show (empty when it matches)."""
    if isinstance(expect, dict):
        if not isinstance(got, dict):
            yield f"{where or 'value'}: expected an object, got {got!r}"
            return
        for key, value in expect.items():
            path = f"{where}.{key}" if where else key
            if key not in got:
                yield f"{path}: missing (expected {value!r})"
            else:
                yield from differences(value, got[key], tol, path)
    elif isinstance(expect, list):
        if not isinstance(got, list | tuple | set | frozenset):
            yield f"{where}: expected a list containing {expect!r}, got {got!r}"
            return
        pool = list(got)
        for item in expect:
            hit = next((g for g in pool if not list(differences(item, g, tol))), _MISSING)
            if hit is _MISSING:
                yield f"{where}: {item!r} not in {sorted(map(repr, got))}"
            else:
                pool.remove(hit)
    elif isinstance(expect, bool) or expect is None:
        if got is not expect and got != expect:
            yield f"{where}: expected {expect!r}, got {got!r}"
    elif isinstance(expect, int | float):
        if isinstance(got, bool) or not isinstance(got, int | float):
            yield f"{where}: expected {expect!r}, got {got!r}"
        elif not math.isclose(float(got), float(expect), rel_tol=0.0, abs_tol=tol):
            yield f"{where}: expected {expect!r}, got {got!r}"
    elif got != expect:
        yield f"{where}: expected {expect!r}, got {got!r}"


_MISSING = object()


def _is_unsupported(exc: BaseException) -> bool:
    return isinstance(exc, NotImplementedError) or type(exc).__name__ == "Unsupported"


def run_vector(vector: Vector, decode: Callable[[bytes, dict[str, Any]], dict[str, Any]] | None) -> Outcome:
    if decode is None:
        return Outcome(vector, "unsupported", f"no adapter for {vector.protocol}")
    if vector.refuse:
        return _run_refusal(vector, decode)
    try:
        got = decode(vector.frame, vector.context)
    except Exception as exc:  # the adapter's (and our decoder's) failure is the finding
        if _is_unsupported(exc):
            return Outcome(vector, "unsupported", str(exc) or type(exc).__name__)
        return Outcome(vector, "mismatch", f"{type(exc).__name__}: {exc}")
    diffs = list(differences(vector.expect, got, vector.tol))
    if diffs:
        return Outcome(vector, "mismatch", "; ".join(diffs))
    return Outcome(vector, "pass", "")


def _run_refusal(vector: Vector, decode: Callable[[bytes, dict[str, Any]], dict[str, Any]]) -> Outcome:
    """A frame a correct receiver refuses: a pass when our decoder refuses it (its ValueError's reason)."""
    try:
        got = decode(vector.frame, vector.context)
    except Exception as exc:
        if isinstance(exc, ValueError) and not _is_unsupported(exc):
            return Outcome(vector, "pass", f"refused: {exc}")
        return Outcome(vector, "mismatch", f"expected a refusal, got {type(exc).__name__}: {exc}")
    return Outcome(vector, "mismatch", f"decoded a frame that must be refused: {got!r}"[:300])


def run_all(vectors: list[Vector] | None = None) -> list[Outcome]:
    vectors = load_vectors() if vectors is None else vectors
    adapters: dict[str, Any] = {}
    out: list[Outcome] = []
    for v in vectors:
        if v.protocol not in adapters:
            module = load_adapter(v.protocol)
            adapters[v.protocol] = getattr(module, "decode", None) if module else None
        out.append(run_vector(v, adapters[v.protocol]))
    return out


@dataclass(frozen=True)
class Tally:
    protocol: str
    passed: int
    mismatched: int
    unsupported: int

    @property
    def total(self) -> int:
        return self.passed + self.mismatched + self.unsupported

    @property
    def ratio(self) -> float:
        return self.passed / self.total if self.total else 0.0


def tally(outcomes: list[Outcome]) -> list[Tally]:
    protocols = sorted({o.vector.protocol for o in outcomes})
    return [
        Tally(
            p,
            sum(1 for o in outcomes if o.vector.protocol == p and o.status == "pass"),
            sum(1 for o in outcomes if o.vector.protocol == p and o.status == "mismatch"),
            sum(1 for o in outcomes if o.vector.protocol == p and o.status == "unsupported"),
        )
        for p in protocols
    ]


def _sources(outcomes: list[Outcome]) -> list[tuple[str, str, str, int]]:
    seen: dict[str, tuple[str, str, str, int]] = {}
    for o in outcomes:
        v = o.vector
        proto, file, src, n = seen.get(v.file, (v.protocol, v.file, v.source, 0))
        seen[v.file] = (proto, file, src, n + 1)
    return sorted(seen.values())


def report(outcomes: list[Outcome]) -> str:
    rows = tally(outcomes)
    total = Tally("all", *(sum(getattr(t, f) for t in rows) for f in ("passed", "mismatched", "unsupported")))
    lines = [
        "# Conformance",
        "",
        "Generated by `make conformance` (`tests/conformance/runner.py`) from the corpus in",
        "`tests/conformance/vectors/`: frames from public decoders' test suites and captures, with the values",
        "those sources assert (or the specification gives) — never our decoder's own output. The test",
        f"`tests/conformance/test_conformance.py` runs in `make test`; its goal is {GOAL:.0%} of the vectors",
        "decoding to the expected values, per protocol and overall, unsupported ones counting against it.",
        "",
        "Protocols below the goal are held by the test to the vectors they passed when their floor was",
        "last raised (`tests/conformance/floors.json`): no regression, and every vector they miss says why.",
        "A frame a correct receiver must refuse (corrupt, truncated, impossible) passes only when our decoder",
        "refuses it; those are listed, with their reasons, after the sources.",
        "",
        "| protocol | vectors | passed | mismatched | unsupported | pass rate | goal |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    held = floors()
    for t in [*rows, total]:
        name = "**all**" if t.protocol == "all" else t.protocol
        if t.ratio >= GOAL:
            goal = "met"
        elif t.protocol in held:
            goal = f"**not met** (floor {held[t.protocol]})"
        else:
            goal = "**not met**"
        lines.append(
            f"| {name} | {t.total} | {t.passed} | {t.mismatched} | {t.unsupported} | {t.ratio:.1%} | {goal} |"
        )
    lines += ["", "## Sources", "", "| protocol | file | source | vectors |", "|---|---|---|---:|"]
    for proto, file, src, n in _sources(outcomes):
        lines.append(f"| {proto} | `{file}` | {src} | {n} |")
    refused = [o for o in outcomes if o.vector.refuse and o.status == "pass"]
    lines += [
        "",
        "## Frames a correct receiver refuses",
        "",
        "These vectors are invalid frames (the reason is in each vector); they pass because our decoder",
        "refuses them. What their source asserted is kept in the vector (`source_expect`).",
        "",
    ]
    if not refused:
        lines.append("None.")
    for o in refused:
        lines.append(f"- `{o.vector.file}` **{o.vector.id}** — {o.vector.why} ({o.reason})")
    lines += ["", "## Every vector that does not pass, and why", ""]
    misses = [o for o in outcomes if o.status != "pass"]
    if not misses:
        lines.append("None.")
    for o in misses:
        why = o.vector.why or o.reason
        detail = "" if o.vector.why is None else f" (decoder: {o.reason})"
        lines.append(f"- `{o.vector.file}` **{o.vector.id}** — {o.status}: {why}{detail}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="fail if docs/conformance.md is stale")
    args = parser.parse_args(argv)
    text = report(run_all())
    if args.check:
        current = REPORT.read_text(encoding="utf-8") if REPORT.exists() else ""
        if current != text:
            print("docs/conformance.md is stale: run `make conformance`", file=sys.stderr)
            return 1
        return 0
    REPORT.write_text(text, encoding="utf-8")
    for t in tally(run_all()):
        print(f"{t.protocol}: {t.passed}/{t.total} passed ({t.ratio:.1%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
