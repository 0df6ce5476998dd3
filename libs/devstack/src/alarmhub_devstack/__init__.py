"""The embedded dev stack: backing services reused or started, and the process supervisor of ``make run``."""

from ._backing import BackingServices, StartedProcess, free_port, popen_as_user, reachable

__all__ = ["BackingServices", "StartedProcess", "free_port", "popen_as_user", "reachable"]
