"""Pure protocol modules: DC-09 framing/encryption, Contact ID and SIA DCS payload decoding."""
