"""`akkd-scale simulate` end to end: AFGL profiles, real LOWTRAN terms, library spectra, Zarr out."""

from __future__ import annotations

from click.testing import CliRunner

from akkd_scale.cli import main
from akkd_scale.simulate.trainingset import open_training_set


def test_simulate_command(tmp_path):
    out = tmp_path / "train.zarr"
    args = [
        "simulate",
        "--profiles",
        "afgl",
        "--samples",
        "600",
        "--seed",
        "3",
        "--view-zenith",
        "0,40",
        "--altitudes",
        "0,2",
        "--mixtures",
        "20",
        "--processes",
        "1",
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    ds = open_training_set(out)
    assert ds.sizes["sample"] == 600 and ds.attrs["seed"] == 3 and ds.attrs["sources"] == "afgl"
    assert float(ds["view_zenith"].max()) <= 40
    again = CliRunner().invoke(main, args)
    assert again.exit_code != 0 and "exists" in again.output
    bad = CliRunner().invoke(main, args[:-2] + ["--profiles", "nonsense", "--out", str(tmp_path / "x.zarr")])
    assert bad.exit_code != 0 and "nonsense" in bad.output


def test_simulate_land_cover_geometry_terms_reuse_and_perturbation(tmp_path):
    terms = tmp_path / "terms.nc"
    base = [
        "simulate",
        "--profiles",
        "afgl",
        "--samples",
        "3000",
        "--altitudes",
        "0,2",
        "--per-class",
        "30",
        "--processes",
        "1",
        "--terms",
        str(terms),
    ]
    out = tmp_path / "a.zarr"
    first = CliRunner().invoke(
        main, base + ["--land-cover", "water=1,tree_cover=3", "--view-zenith-range", "0,5", "--out", str(out)]
    )
    assert first.exit_code == 0, first.output
    assert terms.is_file()
    ds = open_training_set(out)
    assert float(ds["view_zenith"].max()) <= 5 and set(ds["land_cover"].values) == {0, 2}
    assert abs(float((ds["land_cover"] == 2).mean()) - 0.75) < 0.05
    assert {"ndvi", "vegetation_fraction"} <= set(ds) and "rt_continuum" not in ds
    stamp = terms.stat().st_mtime_ns
    again = CliRunner().invoke(main, base + ["--rt-perturbation", "-0.5,1.5", "--out", str(tmp_path / "b.zarr")])
    assert again.exit_code == 0, again.output
    assert terms.stat().st_mtime_ns == stamp  # reused, not rewritten
    ds = open_training_set(tmp_path / "b.zarr")
    assert "rt_continuum" in ds and float(ds["view_zenith"].max()) <= 12  # ASTER default range
    assert len(set(ds["land_cover"].values)) == 8
    bad = CliRunner().invoke(main, base + ["--land-cover", "lava=1", "--out", str(tmp_path / "c.zarr")])
    assert bad.exit_code != 0 and "mixture" in bad.output
    wide = CliRunner().invoke(main, base + ["--view-zenith-range", "0,30", "--out", str(tmp_path / "d.zarr")])
    assert wide.exit_code != 0 and "view_zenith_range" in wide.output and "terms grid" in wide.output


def test_simulate_defaults_equal_the_library_defaults():
    """One set of defaults: the CLI's option defaults are simulate_training_set's (used by the recipes)."""
    import inspect

    from akkd_scale.cli import simulate_command
    from akkd_scale.simulate import trainingset as T

    options = {p.name: p.default for p in simulate_command.params}
    library = inspect.signature(T.simulate_training_set).parameters
    numbers = lambda text: tuple(float(v) for v in text.split(","))  # noqa: E731
    assert tuple(options["profile_sets"].split(",")) == library["profile_sets"].default
    assert numbers(options["view_zenith"]) == library["view_zenith"].default
    assert numbers(options["view_zenith_range"]) == library["view_zenith_range"].default
    assert numbers(options["altitudes"]) == library["altitudes"].default
    assert float(options["max_relative_humidity"]) == library["max_relative_humidity"].default
    assert options["per_class"] == library["n_per_class"].default and options["rt_perturbation"] == "off"
    assert numbers(options["temperature_offsets"]) == library["temperature_offsets"].default
    assert options["surfaces"].replace("-", "_") == library["surfaces"].default
