"""Coalescer: concurrent submissions share one call, order is kept, each submitter gets its own outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from alarmhub_kafka import Coalescer


class Recorder:
    def __init__(self, fail_on: set[str] | None = None, delay: float = 0.0) -> None:
        self.calls: list[list[str]] = []
        self.fail_on = fail_on or set()
        self.delay = delay

    async def __call__(self, items: Sequence[str]) -> None:
        self.calls.append(list(items))
        await asyncio.sleep(self.delay)
        if self.fail_on & set(items):
            raise RuntimeError("database went away")


async def test_submissions_of_one_iteration_share_one_call_in_order() -> None:
    rec = Recorder()
    c = Coalescer(rec)
    await asyncio.gather(c.submit(["p0-1", "p0-2"]), c.submit(["p1-1"]), c.submit(["p2-1", "p2-2", "p2-3"]))
    assert rec.calls == [["p0-1", "p0-2", "p1-1", "p2-1", "p2-2", "p2-3"]]
    assert c.calls == 1


async def test_what_arrives_during_a_call_forms_the_next_round() -> None:
    rec = Recorder(delay=0.05)
    c = Coalescer(rec)
    first = asyncio.ensure_future(c.submit(["a"]))
    await asyncio.sleep(0.01)  # the first call is running
    later = [asyncio.ensure_future(c.submit([x])) for x in ("b", "c")]
    await asyncio.gather(first, *later)
    assert rec.calls == [["a"], ["b", "c"]]


async def test_a_failed_joint_call_gives_each_submitter_its_own_outcome_and_spares_the_next_round() -> None:
    """A poison record in one partition's batch must not fail another partition's clean batch."""
    rec = Recorder(fail_on={"bad"}, delay=0.02)
    c = Coalescer(rec)
    r1 = asyncio.ensure_future(c.submit(["ok-1"]))
    r2 = asyncio.ensure_future(c.submit(["bad"]))
    await asyncio.sleep(0.005)
    r3 = asyncio.ensure_future(c.submit(["ok-2"]))  # joins the next round
    results = await asyncio.gather(r1, r2, r3, return_exceptions=True)
    assert results[0] is None and isinstance(results[1], RuntimeError)
    assert results[2] is None
    assert rec.calls == [["ok-1", "bad"], ["ok-1"], ["bad"], ["ok-2"]]


async def test_rounds_are_bounded_but_a_large_submission_goes_whole() -> None:
    rec = Recorder()
    c = Coalescer(rec, max_items=3)
    await asyncio.gather(c.submit(["a", "b"]), c.submit(["c", "d"]), c.submit(["e", "f", "g", "h"]))
    assert rec.calls == [["a", "b"], ["c", "d"], ["e", "f", "g", "h"]]


async def test_a_cancelled_submitter_is_left_out_and_the_others_still_complete() -> None:
    rec = Recorder(delay=0.02)
    c = Coalescer(rec)
    blocker = asyncio.ensure_future(c.submit(["first"]))
    await asyncio.sleep(0.005)
    gone = asyncio.ensure_future(c.submit(["gone"]))
    kept = asyncio.ensure_future(c.submit(["kept"]))
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.gather(blocker, kept)
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert rec.calls == [["first"], ["kept"]]
