"""The geolocation helpers shared by the reader and the GeoTIFF export: longitude unwrap and lattice GCPs."""

from __future__ import annotations

import numpy as np

from akkd_scale.io.aster.geolocation import lattice_gcps, lattice_positions, unwrap_longitude


def test_unwrap_longitude_is_continuous_across_the_dateline():
    lon = np.array([[179.9, -179.9, -179.8], [179.8, 179.95, -179.95]])
    out = unwrap_longitude(lon)
    np.testing.assert_allclose(out, [[179.9, 180.1, 180.2], [179.8, 179.95, 180.05]])


def test_lattice_gcps_at_pixel_centres_skip_non_finite_points():
    lines, pixels = lattice_positions((0.0, 10.0), (2.0, 5.0), (2, 3))
    np.testing.assert_array_equal(lines, [0.0, 10.0])
    np.testing.assert_array_equal(pixels, [2.0, 7.0, 12.0])
    lat = np.array([[1.0, 2.0, 3.0], [4.0, np.nan, 6.0]])
    lon = lat + 100.0
    gcps = lattice_gcps(lat, lon, lines, pixels)
    assert [g.id for g in gcps] == ["0,0", "0,1", "0,2", "1,0", "1,2"]
    last = gcps[-1]
    assert (last.row, last.col, last.x, last.y, last.z) == (10.5, 12.5, 106.0, 6.0, 0.0)
