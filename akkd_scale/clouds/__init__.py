"""Cloud detection for ASTER scenes, day (VNIR + TIR) and night (TIR only): the tests (:mod:`.tests`), their
combination per block (:mod:`.mask`) and VNIR TOA reflectance (:mod:`.reflectance`). NumPy/SciPy only;
a runtime layer at the rank of ``landcover``."""
