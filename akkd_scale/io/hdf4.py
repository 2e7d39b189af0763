"""Locked, reopen-by-path access to HDF4 SD files (pyhdf), with errors that name file and variable.

The HDF4 library is not thread safe, so every call into it holds :data:`HDF4_LOCK` (one per process;
Dask worker processes each get their own). No open handle is ever kept: every read opens the file by
path and closes it, so objects built on these functions pickle by path and run on any worker.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SceneFileError, describe_path

log = logging.getLogger(__name__)

#: Serialises every HDF4 call in this process.
HDF4_LOCK = threading.RLock()
HDF4_MAGIC = b"\x0e\x03\x13\x01"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
NETCDF_MAGICS = (b"CDF\x01", b"CDF\x02", b"CDF\x05")


@dataclass(frozen=True)
class SdsInfo:
    """One scientific dataset: index in the file, name, shape, pyhdf type code, dimension names."""

    index: int
    name: str
    shape: tuple[int, ...]
    type_code: int
    dim_names: tuple[str, ...]


def check_hdf4(path) -> Path:
    """Return ``path`` if it exists and starts with the HDF4 signature, else raise SceneFileError."""
    path = Path(path)
    expected = "an HDF4 (HDF-EOS2) file such as AST_L1B_*.hdf"
    if not path.is_file():
        raise SceneFileError(describe_path(path), "file does not exist", expected=expected)
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head.startswith(HDF4_MAGIC):
        return path
    if head.startswith(HDF5_MAGIC):
        kind = "an HDF5 file (e.g. ASTER GED, AST_07XT/AST_08 in HDF5)"
    elif head.startswith(NETCDF_MAGICS):
        kind = "a netCDF-3 file"
    elif not head:
        kind = "empty"
    else:
        kind = f"not HDF (starts with {head[:8]!r})"
    raise SceneFileError(describe_path(path), f"file is {kind}", expected=expected)


@contextmanager
def open_sd(path):
    """Open an HDF4 SD file read-only under the lock; HDF4 failures become SceneFileError."""
    from pyhdf.error import HDF4Error
    from pyhdf.SD import SD, SDC

    with HDF4_LOCK:
        try:
            sd = SD(str(path), SDC.READ)
        except HDF4Error as exc:
            raise SceneFileError(
                describe_path(path),
                f"HDF4 library cannot open the file ({exc}); truncated or corrupt?",
                expected="a complete HDF4 file",
            ) from exc
        try:
            yield sd
        finally:
            sd.end()


def list_sds(sd, path) -> list[SdsInfo]:
    """Every SDS of an open file, by index (HDF-EOS files repeat names such as ``Latitude``)."""
    from pyhdf.error import HDF4Error

    out = []
    try:
        count = sd.info()[0]
        for index in range(count):
            sds = sd.select(index)
            try:
                name, rank, dims, type_code, _ = sds.info()
                shape = tuple(np.atleast_1d(dims).tolist())
                dim_names = tuple(sds.dim(axis).info()[0] for axis in range(rank))
            finally:
                sds.endaccess()
            out.append(SdsInfo(index, name, shape, type_code, dim_names))
    except HDF4Error as exc:
        raise SceneFileError(
            describe_path(path),
            f"cannot list datasets ({exc}); truncated or corrupt?",
            expected="a readable HDF4 SD file",
        ) from exc
    return out


def read_text_attributes(sd, path) -> dict[str, str]:
    """Global attributes that are text (ODL metadata), as str."""
    from pyhdf.error import HDF4Error

    try:
        attributes = sd.attributes()
    except HDF4Error as exc:
        raise SceneFileError(
            describe_path(path),
            f"cannot read global attributes ({exc})",
            expected="readable HDF-EOS metadata attributes",
        ) from exc
    return {k: v for k, v in attributes.items() if isinstance(v, str)}


def read_sds(sd, path, info: SdsInfo, key=()) -> np.ndarray:
    """Read ``info``'s SDS (optionally a basic-index ``key`` of ints/slices) from an open file."""
    from pyhdf.error import HDF4Error

    try:
        sds = sd.select(info.index)
        try:
            return np.asarray(sds[key] if key != () else sds[:])
        finally:
            sds.endaccess()
    except (HDF4Error, ValueError, IndexError) as exc:
        raise SceneFileError(
            describe_path(path),
            f"reading failed ({exc}); truncated or corrupt?",
            variable=info.name,
            expected=f"a readable {info.shape} dataset",
        ) from exc


def swath_members(path) -> dict[str, set[int]]:
    """SDS indices (as in :func:`list_sds`) under each HDF-EOS swath Vgroup (class ``SWATH``), by swath
    name; empty when the file has no such Vgroups. Opens the file itself, under :data:`HDF4_LOCK`."""
    import pyhdf.V  # noqa: F401  (HDF.vgstart uses pyhdf.V without importing it)
    from pyhdf.error import HDF4Error
    from pyhdf.HDF import HC, HDF
    from pyhdf.SD import SD, SDC

    members: dict[str, set[int]] = {}
    with HDF4_LOCK:
        try:
            hdf = HDF(str(path), HC.READ)
            sd = SD(str(path), SDC.READ)
            vgroups = hdf.vgstart()
            try:
                ref = -1
                while True:
                    try:
                        ref = vgroups.getid(ref)
                    except HDF4Error:  # past the last Vgroup
                        break
                    group = vgroups.attach(ref)
                    try:
                        if group._class == "SWATH":
                            members[group._name] = {sd.reftoindex(r) for r in _sds_refs(vgroups, group, HC)}
                    finally:
                        group.detach()
            finally:
                vgroups.end()
                hdf.close()
                sd.end()
        except HDF4Error as exc:
            raise SceneFileError(
                describe_path(path),
                f"cannot read the HDF-EOS Vgroups ({exc}); truncated or corrupt?",
                expected="a readable HDF4 file",
            ) from exc
    return members


def _sds_refs(vgroups, group, hc) -> list[int]:
    """Reference numbers of every SDS in ``group`` and its child Vgroups."""
    refs = []
    for tag, ref in group.tagrefs():
        if tag == hc.DFTAG_NDG:
            refs.append(ref)
        elif tag == hc.DFTAG_VG:
            child = vgroups.attach(ref)
            try:
                refs += _sds_refs(vgroups, child, hc)
            finally:
                child.detach()
    return refs
