"""JT/T 809 (inter-platform exchange): lower platforms' main links into alarmhub, and requests back down.

- ``platforms.py``: the registry of platforms a link may log in as (``PlatformRecord``, ``PlatformDirectory``);
- ``session.py``: one main link, sans-IO (``Jt809LinkSession.feed(bytes, now) -> LinkOutput``), with its
  position and alarm half in ``positions.py`` and its result type in ``output.py``;
- ``server.py``: the asyncio shell (``Jt809Server``): main-link server, slave-link clients, group commit;
- ``commands.py``: dispatch's requests down a link (0x9205/0x9206 tracking, 0x9401 supervision) and
  their answers.

The frames themselves are ``protocols/jt809.py``'s.
"""

from ..fastfix import RawFix, fast_fix, fix_json, raw_items
from .commands import Jt809Commands, SharedSupervisions
from .output import LinkOutput, SlaveTarget
from .platforms import (
    LinkStatusSink,
    PlatformDirectory,
    PlatformRecord,
    link_status_writer,
    load_platforms,
    refresh_platforms,
)
from .server import AnswerSink, DeadLetter, Jt809Server, Publish
from .session import WARN_KINDS, Jt809LinkSession

__all__ = [
    "WARN_KINDS",
    "AnswerSink",
    "DeadLetter",
    "Jt809Commands",
    "Jt809LinkSession",
    "Jt809Server",
    "LinkOutput",
    "LinkStatusSink",
    "PlatformDirectory",
    "PlatformRecord",
    "Publish",
    "RawFix",
    "SharedSupervisions",
    "SlaveTarget",
    "fast_fix",
    "fix_json",
    "link_status_writer",
    "load_platforms",
    "raw_items",
    "refresh_platforms",
]
