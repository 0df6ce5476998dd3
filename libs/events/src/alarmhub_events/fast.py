"""Pieces for the ingest hot paths that build events without a pydantic round trip.

The receivers (DC-09, the GPS gateway) type every field in their decoders, so on their hot path they
fill a model directly and write its JSON themselves (``fastalarm``, ``fastfix``); their tests compare
the result with the validated model. What both need lives here once: filling a model's slots as
``model_construct`` does, the contract's timestamp text (the same memo the models' serializer uses),
a memoised JSON form of strings that repeat, and the text cleaning the models apply on validation
(``clean_text``, ``clean_attributes``, ``escape_raw``: a fast path must clean exactly as the model would,
or a NUL from a sender reaches PostgreSQL).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from typing import Any, TypeVar

from pydantic import BaseModel

from ._common import _iso_z
from ._text import RAW_ESCAPED, clean_attributes, clean_text, escape_raw

__all__ = [
    "RAW_ESCAPED",
    "clean_attributes",
    "clean_text",
    "dumps",
    "escape_raw",
    "filled",
    "iso_z",
    "json_string_memo",
]

M = TypeVar("M", bound=BaseModel)
_set = object.__setattr__

#: ``Timestamp``'s JSON text (RFC 3339 UTC, milliseconds, ``Z``), memoised and shared with the models
iso_z = _iso_z

#: like pydantic's JSON: UTF-8 rather than ``\\u`` escapes, compact; NaN/inf raise (callers fall back)
dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def filled(cls: type[M], values: dict[str, Any], fields: AbstractSet[str]) -> M:
    """An instance of ``cls`` holding ``values`` unvalidated: what ``model_construct`` does, minus its
    per-field default handling. ``values`` must name every field; the caller has checked them. ``fields``
    becomes the fields set: a ``set`` of its own if the instance may be ``model_copy``'d with an update
    (which adds to it), else a shared ``frozenset`` will do."""
    obj = cls.__new__(cls)
    _set(obj, "__dict__", values)
    _set(obj, "__pydantic_fields_set__", fields)
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj


def json_string_memo(limit: int) -> Callable[[str], str]:
    """A function giving a string's JSON form, remembering up to ``limit`` of them (device ids,
    accounts, plates and platform names repeat); the memo is cleared when full. The text is cleaned
    (:func:`clean_text`) first, as a model field would be."""
    memo: dict[str, str] = {}

    def json_string(text: str) -> str:
        out = memo.get(text)
        if out is None:
            if len(memo) > limit:
                memo.clear()
            out = memo[text] = dumps(clean_text(text))
        return out

    return json_string
