"""External cloud masks: what the codes of a cloud-mask raster mean (its convention), chosen or detected once.

Two conventions (``--cloud-mask-convention``):

* ``mod35``: MODIS MOD35/MYD35-style confidence, 0 cloudy, 1 probably cloudy, 2 probably clear, 3 confident
  clear (the two "unobstructed field of view" bits of MOD35's first byte); 0 and 1 count as cloud, the
  conservative choice of MOD35 users (Ackerman et al. 2010, MOD35 ATBD);
* ``binary``: 0 clear, 1 cloud.

The two disagree about what 0 means, so a mask is never read as one of them by guesswork: the convention is
the one given, else the one its file name or tags name (``mod35``/``myd35``, ``binary``), else the one its codes
under the scene prove (a 2 or a 3: ``mod35``). A mask of 0s and 1s alone fits both and is refused until the
convention is given. Codes outside the convention (and not the file's no-data) are refused before any task runs.
"""
from __future__ import annotations

import re

import numpy as np

from ..errors import InputError, ParameterError

#: Convention → {code: cloudy}.
CONVENTIONS = {"mod35": {0: True, 1: True, 2: False, 3: False}, "binary": {0: False, 1: True}}
CONVENTION_MEANINGS = {"mod35": "0 cloudy, 1 probably cloudy (both cloud), 2 probably clear, 3 confident clear",
                       "binary": "0 clear, 1 cloud"}
#: Words in a file name or its tags that name a convention.
HINTS = {"mod35": re.compile(r"m[oy]d35", re.IGNORECASE), "binary": re.compile(r"binary", re.IGNORECASE)}


def check_convention(convention: str | None, source: str = "cloud_mask_convention") -> None:
    """Refuse an unknown convention name (None: detect)."""
    if convention is not None and convention not in CONVENTIONS:
        raise ParameterError(source, f"unknown cloud-mask convention {convention!r}", variable="cloud_mask_convention",
                             expected=" or ".join(CONVENTIONS))


def hinted_convention(text: str) -> str | None:
    """The one convention a file's name/tags name, else None."""
    named = [name for name, pattern in HINTS.items() if pattern.search(text)]
    return named[0] if len(named) == 1 else None


def decide_convention(source: str, codes: set[int], convention: str | None, hint_text: str = "") -> str:
    """The convention of a mask whose ``codes`` (no-data removed) lie under the scene: ``convention`` if given,
    else named by ``hint_text``, else proven by the codes; checked against the codes (InputError naming the file)."""
    check_convention(convention)
    chosen = convention or hinted_convention(hint_text)
    if chosen is None and codes <= {0, 1}:
        raise InputError(source, f"codes {sorted(codes)} fit both cloud-mask conventions (0 means cloudy in mod35, "
                                 "clear in binary)", variable="cloud mask",
                         expected="the convention given: --cloud-mask-convention mod35|binary "
                                  "(cloud_mask_convention=...)")
    chosen = chosen or "mod35"
    unknown = sorted(codes - set(CONVENTIONS[chosen]))
    if unknown:
        raise InputError(source, f"unknown codes {unknown} under the scene for convention {chosen}",
                         variable="cloud mask", expected=f"{chosen} codes: {CONVENTION_MEANINGS[chosen]} (the file's "
                                                          "no-data code marks gaps)")
    return chosen


def cloudy_codes(codes: np.ndarray, convention: str) -> tuple[np.ndarray, np.ndarray]:
    """(cloudy, known) of an array of mask codes: ``known`` False for codes the convention lacks."""
    table = CONVENTIONS[convention]
    codes = np.asarray(codes)
    known = np.isin(codes, list(table))
    cloudy = np.isin(codes, [code for code, cloud in table.items() if cloud])
    return cloudy & known, known
