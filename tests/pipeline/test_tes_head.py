"""The ``tes`` head of the pipeline: TES with an assumed AFGL atmosphere, next to the networks."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from akkd_scale.errors import InputError
from akkd_scale.io import open_aster_l1b
from akkd_scale.physics.forward import at_sensor_radiance
from akkd_scale.physics.tes import tes
from akkd_scale.pipeline import open_scene, run_scenes, scene_group
from akkd_scale.pipeline.graph import tes_terms
from akkd_scale.simulate.l1b_writer import write_aster_l1b

SHAPE = (30, 36)
LST = 300.0


@pytest.fixture(scope="module")
def greybody_scene(tmp_path_factory):
    """A 0.985 greybody at 300 K seen through the AFGL mid-latitude summer atmosphere."""
    path = tmp_path_factory.mktemp("tes") / "AST_L1B_greybody.hdf"
    write_aster_l1b(path, brightness_temperature=280.0, shape=SHAPE, pointing_angle=4.0)  # for the view zenith
    terms = tes_terms(open_aster_l1b(path), "midlatitude_summer")
    radiance = at_sensor_radiance(
        np.full(SHAPE, LST),
        np.full(SHAPE + (5,), 0.985),
        terms["transmittance"],
        terms["path_radiance"],
        terms["sky_radiance"],
    )
    return write_aster_l1b(path, radiance=np.moveaxis(radiance, -1, 0), shape=SHAPE, pointing_angle=4.0)


def test_tes_head_recovers_a_greybody_and_matches_direct_tes(greybody_scene, bundle_path, client, tmp_path):
    out = tmp_path / "tes.zarr"
    table = run_scenes(
        [greybody_scene],
        out,
        bundle=bundle_path,
        heads=("fusion", "tes"),
        atmosphere="midlatitude_summer",
        chunks=16,
        client=client,
    )
    assert list(table["status"]) == ["complete"], table["error"].tolist()
    result = open_scene(out, scene_group(greybody_scene)).load()
    assert "midlatitude_summer" in result.attrs["tes_atmosphere"]
    lst_tes = result["lst_tes"].values
    assert np.isfinite(lst_tes).all()
    assert abs(float(np.mean(lst_tes)) - LST) < 0.5  # greybody: only the MMD curve and 12-bit DN remain
    ds = open_aster_l1b(greybody_scene)
    terms = tes_terms(ds, "midlatitude_summer")
    direct = tes(
        ds["brightness_temperature"].values,
        *(terms[n][:, None, None] for n in ("transmittance", "path_radiance", "sky_radiance")),
        quantity="brightness_temperature",
        band_axis=0,
    )
    np.testing.assert_allclose(lst_tes, direct.lst, atol=1e-4)
    np.testing.assert_allclose(
        result["emissivity_tes"].transpose("band", "y", "x").values, direct.emissivity, atol=1e-6
    )


@pytest.mark.parametrize(
    "heads, atmosphere, message",
    [
        (("fusion", "tes"), None, r"atmosphere: the 'tes' head needs atmospheric terms"),
        (("fusion", "tes"), "mars", r"atmosphere: unknown atmosphere 'mars' for the 'tes' head \(expected an AFGL"),
        (("fusion",), "tropical", r"atmosphere: atmosphere 'tropical' given but no 'tes' head"),
        (("tes", "fusion"), "tropical", r"heads: 'tes' cannot be the first head"),
    ],
)
def test_tes_head_needs_a_known_atmosphere_and_a_network_first(heads, atmosphere, message, bundle_path, tmp_path):
    with pytest.raises(InputError, match=message):
        run_scenes([tmp_path / "x.hdf"], tmp_path / "x.zarr", bundle=bundle_path, heads=heads, atmosphere=atmosphere)


def test_accessor_passes_the_atmosphere(greybody_scene, bundle_path):
    ds = xr.open_dataset(greybody_scene, engine="aster_l1b", chunks={})
    result = ds.akkd.retrieve(bundle=bundle_path, heads=("student", "tes"), atmosphere="midlatitude_summer")
    assert {"lst_tes", "emissivity_tes", "lst_student"} <= set(result.data_vars)
    assert abs(float(result["lst_tes"].mean()) - LST) < 0.5


def test_shipped_afgl_terms_equal_lowtran_at_the_scene_view_zenith(greybody_scene):
    """The package-data table (scripts/make_afgl_tes_terms.py) against a fresh LOWTRAN7 run."""
    from akkd_scale.physics.atmosphere import band_terms
    from akkd_scale.simulate.profiles import read_afgl

    ds = open_aster_l1b(greybody_scene)
    view_zenith = float(ds["view_zenith"])
    assert 3.0 < view_zenith < 5.0 and view_zenith % 2.0 > 0.1  # between two grid angles
    for atmosphere in ("tropical", "subarctic_winter"):
        shipped = tes_terms(ds, atmosphere)
        live = band_terms(read_afgl(atmosphere), view_zenith=view_zenith, surface_altitude=0.0)
        for name in ("transmittance", "path_radiance", "sky_radiance"):
            np.testing.assert_allclose(shipped[name], live[name].values, rtol=3e-4, err_msg=f"{atmosphere} {name}")
