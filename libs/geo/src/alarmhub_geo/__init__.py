"""Coordinate systems shared by the services. Argument order is (lon, lat), as in GeoJSON."""

from ._gcj02 import gcj02_to_wgs84, out_of_china, wgs84_to_gcj02

__all__ = ["gcj02_to_wgs84", "out_of_china", "wgs84_to_gcj02"]
