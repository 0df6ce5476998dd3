"""Text cleaning at the event-model boundary: a strange byte never makes an event unstorable.

Senders put anything in a frame: a NUL in a DC-09 extended data block, a control character in an ONVIF
``camera=`` id, bytes that are not UTF-8 (decoded with ``surrogateescape``). PostgreSQL refuses NUL in
``text`` and ``\\u0000`` in ``jsonb`` and cannot encode a lone surrogate, so such a value used to travel to
dispatch and fail there on every retry. The models therefore clean their text on the way in and never
refuse it (an SOS with a strange byte in it is still an SOS):

- identifiers and free text (every string field of a model, and every string key and value inside
  ``attributes``/``data``; :class:`CleanText`, the models' base): each
  C0 control character except tab, LF and CR, DEL, each C1 control character and each lone surrogate is
  replaced by a visible escape, ``\\xNN`` (a surrogate from ``surrogateescape`` becomes the byte it stands
  for), so two ids that differ only there stay different;
- the original frame (``AlarmEvent.raw``): escaped the same way plus ``\\`` → ``\\\\``, which makes it
  reversible; ``attributes["raw_escaped"]`` is then ``true`` and :func:`unescape_raw` gives the text back.

Clean text is left as it is (the check is one regular-expression search), and cleaning is idempotent, so
an event validated again downstream does not change. The ingest hot paths that fill models without
validation (``alarmhub_events.fast``) call the same functions.
"""

from __future__ import annotations

import re
from types import UnionType
from typing import Any, ClassVar, Final, Self, Union, get_args, get_origin

from pydantic import BaseModel, model_validator

__all__ = [
    "RAW_ESCAPED",
    "CleanText",
    "clean_attributes",
    "clean_text",
    "escape_raw",
    "needs_cleaning",
    "unescape_raw",
]

#: ``AlarmEvent.attributes`` key set (to ``true``) when ``raw`` holds an escaped frame
RAW_ESCAPED: Final = "raw_escaped"

# C0 except \t \n \r, DEL, C1, and surrogates (only lone ones can exist in a Python str)
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_SEARCH = _UNSAFE.search
_UNSAFE_OR_BACKSLASH = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\\\\]")
_ESCAPE = re.compile(r"\\(\\|x[0-9a-f]{2}|u[0-9a-f]{4})")


def _escape(m: re.Match[str]) -> str:
    c = m.group()
    if c == "\\":
        return "\\\\"
    n = ord(c)
    if 0xDC80 <= n <= 0xDCFF:  # a byte ``surrogateescape`` could not decode
        return f"\\x{n - 0xDC00:02x}"
    return f"\\x{n:02x}" if n <= 0xFF else f"\\u{n:04x}"


def needs_cleaning(text: str) -> bool:
    return _UNSAFE.search(text) is not None


def clean_text(text: str) -> str:
    """``text`` with control characters and lone surrogates escaped (``\\xNN``); clean text unchanged."""
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_escape, text)


def _clean_value(value: Any) -> Any:
    t = type(value)
    if t is str:
        return clean_text(value)
    if t is dict:
        return {clean_text(k) if type(k) is str else k: _clean_value(v) for k, v in value.items()}
    if t is list:
        return [_clean_value(v) for v in value]
    return value


def _dirty(value: Any) -> bool:
    t = type(value)
    if t is str:
        return _UNSAFE.search(value) is not None
    if t is dict:
        return any((type(k) is str and _UNSAFE.search(k) is not None) or _dirty(v) for k, v in value.items())
    if t is list:
        return any(_dirty(v) for v in value)
    return False


def clean_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """``attributes`` with every string key and value (nested too) cleaned; the same dict when clean."""
    search = _SEARCH
    for k, v in attributes.items():  # the common case, flat and clean, in one pass without calls
        t = type(v)
        if (t is str and search(v) is not None) or t is dict or t is list:
            break
        if type(k) is str and search(k) is not None:
            break
    else:
        return attributes
    if not _dirty(attributes):
        return attributes
    out: dict[str, Any] = _clean_value(attributes)
    return out


def escape_raw(raw: str) -> str | None:
    """The reversible escape of a frame holding unsafe characters, or ``None`` when it needs none."""
    if _UNSAFE.search(raw) is None:
        return None
    return _UNSAFE_OR_BACKSLASH.sub(_escape, raw)


def _unescape(m: re.Match[str]) -> str:
    body = m.group(1)
    if body == "\\":
        return "\\"
    n = int(body[1:], 16)
    return chr(n)


def unescape_raw(raw: str) -> str:
    """The frame :func:`escape_raw` escaped (bytes ``surrogateescape`` had kept come back as U+0080–U+00FF:
    encode with ``latin-1`` when the frame was read that way)."""
    return _ESCAPE.sub(_unescape, raw)


class CleanText(BaseModel):
    """Base of the event models: every string field, and every string in a dict field, is cleaned after
    validation: one call per model, a regular-expression search per string (the fields to look at are
    listed once per class).

    Length limits apply to the text as received (an id within its limit stays accepted when escaping
    lengthens it). A lone surrogate in a ``str`` given from Python is refused by pydantic before this runs;
    no decoder produces one (the fast paths clean it with :func:`clean_text`), and JSON cannot carry one.
    ``raw`` is left to :func:`escape_raw` (reversibly, by ``AlarmEvent``).
    """

    __text_fields__: ClassVar[tuple[str, ...]] = ()
    __dict_fields__: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        text, dicts = [], []
        for name, field in cls.model_fields.items():
            ann = field.annotation
            if name != "raw" and (
                ann is str or (get_origin(ann) in (Union, UnionType) and str in get_args(ann))
            ):
                text.append(name)
            elif ann is dict or get_origin(ann) is dict:
                dicts.append(name)
        cls.__text_fields__, cls.__dict_fields__ = tuple(text), tuple(dicts)

    @model_validator(mode="after")
    def _clean_text(self) -> Self:
        d = self.__dict__
        for k in self.__text_fields__:
            v = d[k]
            if v is not None and _SEARCH(v) is not None:
                d[k] = _UNSAFE.sub(_escape, v)
        for k in self.__dict_fields__:
            v = d[k]
            if v:
                cleaned = clean_attributes(v)
                if cleaned is not v:
                    d[k] = cleaned
        return self
