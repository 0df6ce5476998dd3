"""The Dispatch API's OpenAPI document, committed as ``proto/openapi.json`` beside the AsyncAPI.

``alarmhub-proto`` (libs/events) writes and checks ``proto/``; it finds this generator through the
``alarmhub.proto`` entry point, so the events library does not depend on a service. The document is the
one FastAPI serves at ``/openapi.json`` (the ``/api/v1`` routes); the console's files, ``/map/*`` and the
health port are outside it.
"""

from __future__ import annotations

import json
from typing import Any

from .api import build_api

__all__ = ["document", "render"]


def document() -> dict[str, Any]:
    # devices: the report route is there whenever the app tracks device status (the service always does)
    spec: dict[str, Any] = build_api(None, devices=object()).openapi()
    return spec


def render() -> dict[str, str]:
    """``{path under proto/: text}`` for ``alarmhub-proto``."""
    return {"openapi.json": json.dumps(document(), indent=2, ensure_ascii=False) + "\n"}
