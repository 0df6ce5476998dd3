"""At its open-file limit the receiver refuses the next connection at once and counts it; accept() out of
descriptors neither spins nor stops the listener (issue #19). The listener in a child process whose
RLIMIT_NOFILE is 128 (``fd_limit_child.py``), real loopback connections, every wait bounded: the checks
are ``alarmhub_devstack.fdlimit``'s, shared by the ingest services."""

from __future__ import annotations

from pathlib import Path

import pytest
from alarmhub_devstack import fdlimit

pytestmark = pytest.mark.drill  # resource exhaustion, a fault drill: `make drills`

CHILD = Path(__file__).with_name("fd_limit_child.py")
LOOPS = pytest.mark.parametrize("loop", ["uvloop", "asyncio"])


@LOOPS
def test_the_default_maximum_derives_from_the_file_limit_and_refuses_cleanly(loop: str) -> None:
    """ALARMHUB_DC09_MAX_CONNECTIONS unset: connection_budget(), the open-file limit less the reserve; over it counted as connections_rejected_total{reason="total"}, over the file limit reason="files", accept() out of descriptors reason="accept_failed"."""
    fdlimit.refuses_over_the_default_budget(CHILD, loop)


@LOOPS
def test_descriptors_near_the_limit_refuse_whatever_the_configured_maximum(loop: str) -> None:
    fdlimit.refuses_near_the_file_limit(CHILD, loop)


@LOOPS
def test_accept_out_of_descriptors_neither_spins_nor_stops_the_listener(loop: str) -> None:
    fdlimit.survives_accept_out_of_files(CHILD, loop)
