"""The atmosphere plan: reanalysis column water vapour and air temperature as network inputs.

``retrieve(atmosphere_data=...)`` / ``akkd-scale run --atmosphere-data FILE …`` give a bundle trained with the
atmospheric inputs (``conventions.ATMOSPHERE_INPUTS``) the reanalysis atmosphere at every pixel:
:func:`~akkd_scale.io.reanalysis.read_atmosphere` interpolates ERA5/MERRA-2 fields lazily to the pixels'
latitude/longitude at the scene's acquisition time, height-corrected to the pixels' elevation when a DEM is
given (``--elevation DEM.tif``, :mod:`akkd_scale.io.elevation`) or the dataset has an ``elevation``. Without
atmosphere data the networks see the missing values (the bands-only path), also when the dataset happens to
carry a ``column_water_vapour`` (a simulated scene's truth): the atmosphere is used only when asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import xarray as xr

from ..conventions import ATMOSPHERE_FROM_DATASET, ATMOSPHERE_INPUTS, CWV, OPTIONAL_INPUTS, TAIR
from ..errors import InputError, ParameterError
from ..io.elevation import sample_elevation
from ..io.reanalysis import read_atmosphere

#: Dataset variables of the atmospheric inputs (``column_water_vapour``, ``air_temperature``).
ATMOSPHERE_VARIABLES = tuple(OPTIONAL_INPUTS[name][0] for name in ATMOSPHERE_INPUTS)
#: A pixel elevation the reanalysis is height-corrected to, when the dataset has it (m, or ``units`` km).
ELEVATION = "elevation"


@dataclass(frozen=True)
class AtmospherePlan:
    """Where the atmospheric inputs come from: ``mode`` ``"none"``, ``"files"`` (reanalysis ``files``, absolute
    paths) or ``"dataset"`` (the dataset's own variables); ``optional``: pixels or times the files do not cover
    run without them (flagged) instead of failing the scene; ``elevation``: a DEM GeoTIFF (absolute path) the
    reanalysis is height-corrected to."""

    mode: str = "none"
    files: tuple[str, ...] = ()
    optional: bool = False
    elevation: str | None = None

    @property
    def active(self) -> bool:
        return self.mode != "none"


def plan_atmosphere(atmosphere_data=None, optional: bool = False, elevation=None) -> AtmospherePlan:
    """The plan for ``atmosphere_data``: None, ``"dataset"``, or one or more ERA5/MERRA-2 files (each must exist);
    ``elevation``: a DEM GeoTIFF for the height correction (with files only)."""
    dem = None
    if elevation is not None:
        dem = str(Path(elevation).expanduser().resolve())
        if not Path(dem).is_file():
            raise InputError(dem, "no such file", variable="elevation", expected="a DEM GeoTIFF (metres)")
    if atmosphere_data is None or (not isinstance(atmosphere_data, (str, Path)) and not list(atmosphere_data)):
        if dem is not None:
            raise ParameterError(
                None,
                "an elevation model but no atmosphere data",
                variable="elevation",
                expected="--atmosphere-data FILE with --elevation DEM.tif (the DEM height-corrects the reanalysis)",
            )
        if optional:
            raise ParameterError(
                None,
                "atmosphere data marked optional but none given",
                variable="atmosphere_data_optional",
                expected="--atmosphere-data FILE [FILE …] with --atmosphere-data-optional",
            )
        return AtmospherePlan()
    if isinstance(atmosphere_data, str) and atmosphere_data == ATMOSPHERE_FROM_DATASET:
        if dem is not None:
            raise ParameterError(
                None,
                "an elevation model with atmosphere_data='dataset'",
                variable="elevation",
                expected="reanalysis files to height-correct (the dataset's own atmosphere is used as given)",
            )
        return AtmospherePlan(ATMOSPHERE_FROM_DATASET, (), bool(optional))
    names = [atmosphere_data] if isinstance(atmosphere_data, (str, Path)) else list(atmosphere_data)
    files = []
    for name in names:
        path = Path(name).expanduser().resolve()
        if not path.is_file():
            raise InputError(
                path, "no such file", variable="atmosphere data", expected="an ERA5 or MERRA-2 NetCDF (or GRIB) file"
            )
        files.append(str(path))
    return AtmospherePlan("files", tuple(files), bool(optional), dem)


def with_atmosphere(ds: xr.Dataset, plan: AtmospherePlan, bundle) -> tuple[xr.Dataset, dict]:
    """``ds`` with ``column_water_vapour``/``air_temperature`` per pixel (lazy for a lazy dataset) and the
    attributes saying where they came from; a bundle without the atmospheric inputs is refused."""
    if not plan.active:
        return ds, {"atmosphere_data": "none"}
    missing = [name for name in ATMOSPHERE_INPUTS if OPTIONAL_INPUTS[name][0] not in bundle.extra_inputs]
    if missing:
        raise ParameterError(
            bundle.path,
            f"atmosphere data given but the bundle has no {', '.join(missing)} input",
            variable="atmosphere_data",
            expected="a bundle trained with the atmospheric inputs (manifest inputs.names with "
            f"{', '.join(ATMOSPHERE_INPUTS)}), or no --atmosphere-data",
        )
    source = ds.attrs.get("source_file", "dataset")
    if plan.mode == ATMOSPHERE_FROM_DATASET:
        for name in ATMOSPHERE_VARIABLES:
            if name not in ds.variables:
                raise InputError(
                    source,
                    "variable missing",
                    variable=name,
                    expected="column_water_vapour (g cm-2) and "
                    "air_temperature (K) per pixel for atmosphere_data='dataset'",
                )
        return ds, {"atmosphere_data": "from the dataset"}
    for name in ("latitude", "longitude"):
        if name not in ds.variables:
            raise InputError(
                source, "variable missing", variable=name, expected="pixel latitude/longitude to place the reanalysis"
            )
    when = ds.attrs.get("acquisition_time") or (ds["time"].values if "time" in ds.variables else None)
    if when is None or (isinstance(when, str) and not when.strip()):
        raise InputError(
            source,
            "no acquisition time",
            variable="acquisition_time",
            expected="the scene's acquisition time (attribute acquisition_time or a time coordinate)",
        )
    elevation: xr.DataArray | None
    if plan.elevation is not None:
        elevation = sample_elevation(plan.elevation, ds["latitude"], ds["longitude"])
    else:
        elevation = ds[ELEVATION] if ELEVATION in ds.variables else None
    atmosphere = read_atmosphere(
        plan.files, ds["latitude"], ds["longitude"], when, elevation=elevation, optional=plan.optional
    )
    attrs = {"atmosphere_data": "reanalysis files", **atmosphere.attrs}
    if plan.elevation is not None:
        attrs["atmosphere_elevation"] = plan.elevation
    return ds.assign({CWV: atmosphere[CWV], TAIR: atmosphere[TAIR]}), attrs
