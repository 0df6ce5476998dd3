"""Pure decoders of the camera protocols: bytes in, models out, no I/O."""
