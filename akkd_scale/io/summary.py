"""Per-band brightness-temperature summary of an opened scene (what a user checks first)."""

from __future__ import annotations

import dask
import xarray as xr


def brightness_temperature_summary(ds: xr.Dataset) -> str:
    """Text table of min / mean / max BT and valid pixels per band; computes the statistics in one pass."""
    bt = ds["brightness_temperature"]
    low, mean, high, valid = dask.compute(
        bt.min(("y", "x")), bt.mean(("y", "x")), bt.max(("y", "x")), bt.notnull().sum(("y", "x"))
    )
    ny, nx = bt.sizes["y"], bt.sizes["x"]
    lines = [
        f"scene: {ds.attrs.get('source_file', '?')}",
        f"acquired {ds.attrs.get('acquisition_time', '?')}, view zenith {float(ds['view_zenith']):.2f} deg, "
        f"{ny} x {nx} pixels",
        f"{'band':>5} {'um':>7} {'min K':>8} {'mean K':>8} {'max K':>8} {'valid px':>9}",
    ]
    for i, band in enumerate(ds["band"].values):
        lines.append(
            f"{band:>5} {float(ds['wavelength'][i]):7.3f} {float(low[i]):8.2f} {float(mean[i]):8.2f} "
            f"{float(high[i]):8.2f} {int(valid[i]):9d}"
        )
    return "\n".join(lines)
