"""Every vector of the conformance corpus through our decoders; the goal per protocol and overall; the
committed report (docs/conformance.md) matches what the corpus gives today."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest


def _runner() -> ModuleType:
    path = Path(__file__).with_name("runner.py")
    spec = importlib.util.spec_from_file_location("_conformance_runner", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    import sys

    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


runner = _runner()
OUTCOMES = runner.run_all()


def test_corpus_is_not_empty_and_every_vector_names_its_source() -> None:
    assert len(OUTCOMES) >= 50
    for o in OUTCOMES:
        assert o.vector.source and o.vector.expect, o.vector.id


FLOORS = runner.floors()


@pytest.mark.parametrize("tally", runner.tally(OUTCOMES), ids=lambda t: t.protocol)
def test_goal_per_protocol(tally: object) -> None:
    """At the goal, or — for a protocol listed in floors.json — no fewer passes than its floor."""
    floor = FLOORS.get(tally.protocol)  # type: ignore[attr-defined]
    if floor is not None:
        assert tally.ratio < runner.GOAL, "at the goal now: remove it from floors.json"  # type: ignore[attr-defined]
        assert tally.passed >= floor, (  # type: ignore[attr-defined]
            f"{tally.protocol}: {tally.passed} passed, floor {floor}"  # type: ignore[attr-defined]
        )
        return
    assert tally.ratio >= runner.GOAL, (  # type: ignore[attr-defined]
        f"{tally.protocol}: {tally.passed}/{tally.total}; "  # type: ignore[attr-defined]
        + "; ".join(
            f"{o.vector.id}: {o.reason}"
            for o in OUTCOMES
            if o.vector.protocol == tally.protocol and o.status != "pass"  # type: ignore[attr-defined]
        )[:3000]
    )


def test_every_non_pass_is_explained() -> None:
    for o in OUTCOMES:
        if o.status != "pass":
            assert o.vector.why or o.reason, o.vector.id
    # below the goal, every miss carries a human reason, not only the comparison's diff
    unexplained = [
        o.vector.id
        for o in OUTCOMES
        if o.status != "pass" and o.vector.protocol in FLOORS and not o.vector.why
    ]
    assert not unexplained, unexplained


def test_report_is_up_to_date() -> None:
    assert runner.REPORT.read_text(encoding="utf-8") == runner.report(OUTCOMES), (
        "docs/conformance.md is stale: run `make conformance`"
    )


def test_refusal_vectors_say_why_and_pass_only_on_a_refusal() -> None:
    for o in OUTCOMES:
        if o.vector.refuse:
            assert o.vector.why, o.vector.id
    v = runner.Vector("x", "s", "f", "id", b"\x00", {"refused": True}, {}, 1e-4, "corrupt", refuse=True)

    def refuses(frame: bytes, context: dict) -> dict:
        raise ValueError("bad check code")

    def decodes(frame: bytes, context: dict) -> dict:
        return {"decoded": True}

    def crashes(frame: bytes, context: dict) -> dict:
        raise KeyError("bug")

    assert runner.run_vector(v, refuses).status == "pass"
    assert runner.run_vector(v, decodes).status == "mismatch"
    assert runner.run_vector(v, crashes).status == "mismatch"


def test_comparison_rules() -> None:
    diff = runner.differences
    assert not list(diff({"lat": 22.5, "alarms": ["sos"]}, {"lat": 22.50001, "alarms": ["x", "sos"]}, 1e-4))
    assert list(diff({"lat": 22.5}, {"lat": 22.6}, 1e-4))
    assert list(diff({"alarms": ["sos"]}, {"alarms": ["power_cut"]}, 1e-4))
    assert list(diff({"terminal": "0a1b"}, {}, 1e-4))
    assert list(diff({"ok": True}, {"ok": 1}, 1e-4)) == [] and list(diff({"n": 1}, {"n": True}, 1e-4))
