"""Fixture factories shipped as a feature: synthetic ASTER files for tests, demos and benchmarks."""
from .l1b import geodetic_to_geocentric, radiance_to_dn, write_aster_l1b, write_aster_l1t, write_ast08

__all__ = ["geodetic_to_geocentric", "radiance_to_dn", "write_aster_l1b", "write_aster_l1t", "write_ast08"]
