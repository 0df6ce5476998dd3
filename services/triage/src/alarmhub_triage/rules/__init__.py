"""Packaged default rules (``default.yaml``)."""
