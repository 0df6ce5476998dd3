"""Dispatch's HTTP API, one :class:`fastapi.APIRouter` per resource under ``/api/v1``.

Each router holds its routes only: the caller and the services come in as dependencies (``deps.py``),
domain errors become HTTP statuses in one place (``errors.py``), SQL lives in the store. ``api.py``
assembles them in :data:`ORDER` (the JT/T 809 platform routes before the generic registry's, so they
take precedence).
"""
