"""Pure protocol modules: framers, decoders and reply builders, bytes in and dataclasses/bytes out."""

from ._common import FrameError, Position

__all__ = ["FrameError", "Position"]
