"""The embedded dev stack: backing services reused or started, and the process supervisor of ``make run``."""

from ._backing import BackingServices, StartedProcess, free_port, reachable

__all__ = ["BackingServices", "StartedProcess", "free_port", "reachable"]
