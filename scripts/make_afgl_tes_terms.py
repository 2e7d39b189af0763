"""Write ``akkd_scale/data/afgl_tes_terms.json``: the band terms the pipeline's ``tes`` head assumes.

For each of the six AFGL-1986 atmospheres, LOWTRAN7 (this package's build and level handling, ASTER
SRFs) gives band-effective τ, L↑ and hemispheric L↓ at sea level on a view-zenith grid. Shipping the
table lets retrieval run TES without a Fortran compiler or the training extras; the pipeline
interpolates it in view zenith (ln τ, linear radiances). Rerun after any change to the radiative
transfer (it takes about a minute on 2 cores):

    AKKD_DATA_DIR=../shared/data .venv/bin/python scripts/make_afgl_tes_terms.py
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from akkd_scale import __version__
from akkd_scale.conventions import TES_TERMS
from akkd_scale.physics.atmosphere import terms_table
from akkd_scale.simulate.profiles import AFGL_TABLES, read_afgl

VIEW_ZENITH = np.arange(0.0, 61.0, 2.0)
OUT = Path(__file__).resolve().parents[1] / "akkd_scale" / "data" / "afgl_tes_terms.json"


def main() -> None:
    atmospheres = {}
    for name in AFGL_TABLES:
        table = terms_table(read_afgl(name), view_zenith=VIEW_ZENITH, surface_altitude=[0.0], processes=2)
        one = table.isel(profile=0, surface_altitude=0).transpose("view_zenith", "band")
        atmospheres[name] = {term: np.round(one[term].values, 7).tolist() for term in TES_TERMS}
        bands = [str(b) for b in one["band"].values]
    document = {
        "description": "ASTER TIR band-effective transmittance, path radiance (L_up) and hemispheric sky "
        "radiance (L_down) of the AFGL-1986 atmospheres at sea level, LOWTRAN7 with the "
        "near-surface layering of physics.atmosphere",
        "units": {"transmittance": "1", "path_radiance": "W m-2 sr-1 um-1", "sky_radiance": "W m-2 sr-1 um-1"},
        "surface_altitude_km": 0.0,
        "bands": bands,
        "view_zenith": VIEW_ZENITH.tolist(),
        "dims": ["view_zenith", "band"],
        "atmospheres": atmospheres,
        "generator": "scripts/make_afgl_tes_terms.py",
        "akkd_scale_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    OUT.write_text(json.dumps(document, indent=1))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
