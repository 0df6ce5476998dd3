"""``alarmhub-triage`` / ``python -m alarmhub_triage``: settings, then the shared entry point."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

from alarmhub_runtime import run_async, serve

from .app import TriageApp
from .config import TriageSettings

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], *, use_uvloop: bool = True, gc_tune: bool = True) -> T:
    """Run as the service runs (uvloop, GC tuning: ``alarmhub_runtime.run_async``); the bench runs
    through here too, to measure the loop the service uses."""
    return run_async(coro, use_uvloop=use_uvloop, gc_tune=gc_tune)


def main() -> None:
    settings = TriageSettings()
    serve("triage", settings, lambda registry, health: TriageApp(settings, registry))


if __name__ == "__main__":
    main()
