"""Triage stages, each knowing nothing of Kafka: items in, surviving items out, reasons recorded.

The order lives in one place, :mod:`alarmhub_triage.pipeline`. A stage that drops an item sets
``item.dropped`` to a reason code (counted in ``alarmhub_triage_dropped_total{reason}``).
"""

from ._base import Context, Stage

__all__ = ["Context", "Stage"]
