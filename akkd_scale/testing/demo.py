"""The reader demo behind ``make demo``: write a synthetic AST_L1B scene, open it lazily, summarise BT."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import open_aster_l1b
from .l1b import write_aster_l1b


def reader_demo(out_dir) -> str:
    """Write ``out_dir/AST_L1B_demo.hdf`` (700 × 830, fill margins), open it with the lazy reader and
    return a per-band brightness-temperature summary as text."""
    out = Path(out_dir)
    ny, nx = 700, 830
    yy, xx = np.mgrid[0:ny, 0:nx]
    margin = (xx < 40 + yy // 10) | (xx > nx - 40 - (ny - yy) // 10)  # slanted no-data edges as in real L1B
    path = write_aster_l1b(out / "AST_L1B_demo.hdf", shape=(ny, nx), fill_mask=margin)
    ds = open_aster_l1b(path)
    bt = ds.brightness_temperature
    stats = {name: values.compute().values for name, values in (
        ("min", bt.min(("y", "x"))), ("mean", bt.mean(("y", "x"))), ("max", bt.max(("y", "x"))),
        ("valid", bt.notnull().sum(("y", "x"))))}
    lines = [f"scene: {path}", f"acquired {ds.attrs['acquisition_time']}, view zenith {float(ds.view_zenith):.2f} deg, "
             f"{ny} x {nx} pixels, chunks {bt.data.chunksize}",
             f"{'band':>5} {'um':>7} {'min K':>8} {'mean K':>8} {'max K':>8} {'valid px':>9}"]
    for i, band in enumerate(ds.band.values):
        lines.append(f"{band:>5} {float(ds.wavelength[i]):7.3f} {stats['min'][i]:8.2f} {stats['mean'][i]:8.2f} "
                     f"{stats['max'][i]:8.2f} {int(stats['valid'][i]):9d}")
    return "\n".join(lines)
