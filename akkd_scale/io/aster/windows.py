"""Window reads for the lazy variables: one basic-index (line, pixel) window of image SDS, read by path
per Dask chunk, and the base class of the variables computed per window (geolocation, NDVI)."""

from __future__ import annotations

import numpy as np
from xarray.backends import BackendArray
from xarray.core import indexing

from ..hdf4 import open_sd, read_sds
from ..remote import local_copy


def _axis_plan(key, size: int):
    """Split a basic index (int or slice) into a pyhdf read (a positive-step slice) and a NumPy step
    applied afterwards: None, an index array (negative steps), or 0 for an integer (drops the axis).
    Integers are read as length-1 slices: pyhdf 0.11 returns wrong values for all-integer keys."""
    if isinstance(key, (int, np.integer)):
        k = int(key) % size
        return slice(k, k + 1), 0
    start, stop, step = key.indices(size)
    if step > 0:
        return slice(start, max(start, stop), step), None
    idx = np.arange(size)[key]
    if idx.size == 0:
        return slice(0, 0), None
    low = int(idx.min())
    return slice(low, int(idx.max()) + 1), idx - low


def window_shape(key: tuple, shape: tuple) -> tuple[int, ...]:
    """Shape of a basic (line, pixel) key on an image of ``shape`` (integer axes dropped)."""
    return tuple(len(range(*k.indices(n))) for k, n in zip(key, shape) if not isinstance(k, (int, np.integer)))


def read_windows(path, infos, key: tuple) -> list[np.ndarray]:
    """Read the same (line, pixel) basic-index window of several bands, reopening the file by path once.
    ``path``: a file path, or a :class:`~akkd_scale.io.remote.StagedSource` (read from this host's copy)."""
    path = local_copy(path)

    def read(window):
        with open_sd(path) as sd:
            return [read_sds(sd, path, info, window) for info in infos]

    return read_basic(read, key, infos[0].shape, len(infos))


def read_basic(read, key: tuple, shape: tuple, count: int) -> list[np.ndarray]:
    """The (line, pixel) basic-index ``key`` window of ``count`` bands of an image of ``shape``, read by
    ``read(window)`` (a tuple of positive-step slices → one array per band); steps, negative steps and
    integer axes applied afterwards. Any image source (HDF4 SDS, GeoTIFF) reads windows this way."""
    plans = [_axis_plan(k, n) for k, n in zip(key, shape)]
    if any(read_slice.start >= read_slice.stop for read_slice, _ in plans):
        return [np.zeros(window_shape(key, shape), np.uint16) for _ in range(count)]
    windows = read(tuple(read_slice for read_slice, _ in plans))
    for axis in reversed(range(len(plans))):  # from the last axis so earlier axis numbers stay valid
        post = plans[axis][1]
        if post is not None:
            windows = [np.take(w, post, axis=axis) for w in windows]
    return windows


def window_positions(key: tuple, shape: tuple) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Row and column indices (1-D) of a basic (line, pixel) key, and the index that drops integer axes."""
    rows = np.arange(shape[0])[key[0]]
    cols = np.arange(shape[1])[key[1]]
    squeeze = (0 if np.ndim(rows) == 0 else slice(None), 0 if np.ndim(cols) == 0 else slice(None))
    return np.atleast_1d(rows), np.atleast_1d(cols), squeeze


class SpatialArray(BackendArray):
    """Base of the computed (y, x) variables: basic indexing → :meth:`_compute` on row/column indices."""

    def __getitem__(self, key):
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self._raw_indexing_method
        )

    def _raw_indexing_method(self, key: tuple) -> np.ndarray:
        rows, cols, squeeze = window_positions(key, self.shape)
        if rows.size == 0 or cols.size == 0:
            return np.empty((rows.size, cols.size), self.dtype)[squeeze]
        return self._compute(rows, cols)[squeeze]
