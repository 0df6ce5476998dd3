"""Dispatch's domain errors. The HTTP shell maps each to its status once (``routes/errors.py``); the
lifecycle's :class:`~.lifecycle.ActionError` (an action the incident's state refuses) maps to 409 too.

- :class:`NotFound` → 404: the thing does not exist *for the caller* (a neighbour's incident included);
- :class:`Forbidden` → 403: the caller's role or unit may not do this;
- :class:`Conflict` → 409: the request clashes with what is stored;
- :class:`Invalid` → 422: a value the rules refuse.
"""

from __future__ import annotations

__all__ = ["Conflict", "DispatchError", "Forbidden", "Invalid", "NotFound"]


class DispatchError(Exception):
    """A refusal the caller can understand: ``detail`` is sent as is."""

    status_code = 500

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(DispatchError):
    status_code = 404

    def __init__(self, detail: str = "no such incident") -> None:
        super().__init__(detail)


class Forbidden(DispatchError, PermissionError):
    status_code = 403


class Conflict(DispatchError):
    status_code = 409


class Invalid(DispatchError, ValueError):
    status_code = 422
