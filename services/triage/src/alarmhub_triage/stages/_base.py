from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ..model import Item
from ..ruleset import RuleSet
from ..state import TriageState

__all__ = ["Context", "Stage"]


@dataclass(frozen=True, slots=True)
class Context:
    """What a stage may use besides its items: the rules of this batch, the shared state, the clock."""

    rules: RuleSet
    state: TriageState
    now: Callable[[], datetime]


class Stage(Protocol):
    name: str

    async def exec(self, items: list[Item], ctx: Context) -> list[Item]:
        """Return the items that survive; set ``item.dropped`` on the others."""
        ...
