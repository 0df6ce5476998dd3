"""DC-09 data blocks (SIA-DCS and ADM-CID) through ingest-contactid's payload decoders.

``context.token`` says which (``SIA-DCS`` or ``ADM-CID``); the vocabulary is the ``events`` list of the
``dc09`` adapter, here as ``{"events": [...]}``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

_spec = importlib.util.spec_from_file_location("_conformance_dc09", Path(__file__).with_name("dc09.py"))
assert _spec is not None and _spec.loader is not None
_dc09 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_dc09)


def decode(frame: bytes, context: dict[str, Any]) -> dict[str, Any]:
    return {"events": _dc09.payload_events(context["token"], frame.decode("latin-1"))}
