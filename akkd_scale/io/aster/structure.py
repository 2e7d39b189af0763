"""HDF-EOS structure of an ASTER L1B/L1T file: its swaths, their dimension sizes and maps, and which SDS
belongs to which swath (rules in ``docs/reader.md``, *SDS read*). Reads no pixel data."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ...errors import SceneFileError, describe_path
from ..hdf4 import SdsInfo
from ..odl import OdlNode

SWATH, VNIR_SWATH = "TIR_Swath", "VNIR_Swath"
PYHDF_UINT8, PYHDF_UINT16 = 21, 23  # pyhdf.SDC.UINT8, pyhdf.SDC.UINT16


@dataclass(frozen=True)
class Structure:
    """The layout of one file: its SDS table, the SDS indices in each swath Vgroup (empty when the file has
    none) and the swath groups of ``StructMetadata.0`` by name."""

    path: Path
    table: list[SdsInfo]
    members: dict[str, set[int]]
    swaths: dict[str, OdlNode]


def file_error(path, problem, variable=None, expected=None) -> SceneFileError:
    """The reader's error about ``path`` (named as :func:`describe_path` names it)."""
    return SceneFileError(describe_path(path), problem, variable=variable, expected=expected)


def swaths(struct: OdlNode) -> dict[str, OdlNode]:
    """The swath groups of a parsed ``StructMetadata.0`` by SWATHNAME."""
    return {str(node.attrs["SWATHNAME"]): node for node in struct.walk()
            if node.kind == "GROUP" and "SWATHNAME" in node.attrs}


def _dimension_sizes(swath: OdlNode) -> dict[str, int]:
    return {str(n.attrs["DIMENSIONNAME"]): int(n.attrs["SIZE"]) for n in swath.walk()
            if "DIMENSIONNAME" in n.attrs and isinstance(n.attrs.get("SIZE"), int)}


def _as_float(value) -> float:
    """A number as float; anything else (text, a list) as NaN, which the lattice check then refuses."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def dimension_maps(swath: OdlNode) -> dict[tuple[str, str], tuple[float, float]]:
    """(geo dimension, data dimension) → (offset, increment) from the swath's DimensionMap (NaN where not a number)."""
    group = swath.find("DimensionMap", "GROUP")
    maps = {}
    for node in (group.children if group else []):
        a = node.attrs
        if {"GEODIMENSION", "DATADIMENSION", "OFFSET", "INCREMENT"} <= set(a):
            key = (str(a["GEODIMENSION"]), str(a["DATADIMENSION"]))
            maps[key] = (_as_float(a["OFFSET"]), _as_float(a["INCREMENT"]))
    return maps


def lattice_map(maps, geo_dim: str, data_dim: str, lattice_size: int, image_size: int) -> tuple[float, float]:
    """Lattice ↔ image mapping from the DimensionMap, else offset 0 and increment floor(n / (points − 1))."""
    offset, increment = maps.get((geo_dim, data_dim), (0.0, 0.0))
    if increment:
        return offset, increment
    return 0.0, float(max(1, image_size // (lattice_size - 1)))


def check_lattice_map(path, mapping: tuple[float, float], geo_dim: str, data_dim: str, lattice_size: int,
                      image_size: int) -> None:
    """SceneFileError unless the lattice points (offset + k·increment) are finite, increasing, start inside the
    image and span at least half of it (real files: offset 0, increment floor(n/10))."""
    offset, increment = mapping
    last = offset + (lattice_size - 1) * increment
    if not (math.isfinite(offset) and math.isfinite(increment) and increment > 0 and 0 <= offset < image_size
            and math.isfinite(last) and last - offset >= (image_size - 1) / 2):
        raise file_error(path, f"{geo_dim} → {data_dim}: Offset {offset:g}, Increment {increment:g} put the "
                         f"{lattice_size} lattice points at {data_dim} {offset:g} … {last:g} of 0 … {image_size - 1}",
                         variable="DimensionMap", expected="finite numbers, Increment > 0, the lattice starting inside "
                         "the image and spanning at least half of it")


def find_sds(table: list[SdsInfo], name: str, swath: str, members: dict[str, set[int]],
             shape: tuple[int, ...] | None, path) -> SdsInfo | None:
    """The SDS ``name`` of ``swath``: by Vgroup membership when the file has swath Vgroups, else by a
    dimension name that mentions the swath (any separator), else by the swath's image ``shape``, else any SDS
    of that name. None if there is none; an error if several remain."""
    candidates = [info for info in table if info.name == name]
    if swath in members:
        picked = [c for c in candidates if c.index in members[swath]]
    else:
        picked = [c for c in candidates if c.dim_names and all(swath in d for d in c.dim_names)]
        if not picked and shape is not None:
            picked = [c for c in candidates if c.shape == shape]
        if not picked:
            picked = candidates
    if len(picked) > 1:
        raise file_error(path, f"{len(picked)} datasets called {name} and nothing says which belongs to {swath}",
                         variable=name, expected="HDF-EOS swath Vgroups or dimension names naming the swath")
    return picked[0] if picked else None


def expected_shape(swath: OdlNode) -> tuple[int, int] | None:
    """(ImageLine, ImagePixel) sizes the swath declares, or None."""
    sizes = _dimension_sizes(swath)
    return (sizes["ImageLine"], sizes["ImagePixel"]) if {"ImageLine", "ImagePixel"} <= set(sizes) else None


def image_bands(structure: Structure, swath: str, names, type_code: int, type_name: str) -> tuple[SdsInfo, ...]:
    """The 2-D ``type_code`` image SDS ``names`` of ``swath``, all of one shape (errors name the field)."""
    path = structure.path
    shape = expected_shape(structure.swaths[swath])
    bands = []
    for field in names:
        info = find_sds(structure.table, field, swath, structure.members, shape, path)
        if info is None:
            raise file_error(path, f"band B{field[len('ImageData'):]} is missing", variable=field,
                             expected=f"{type_name} datasets {', '.join(names)} in {swath}")
        if len(info.shape) != 2 or info.type_code != type_code:
            raise file_error(path, f"has shape {info.shape} and HDF type code {info.type_code}", variable=field,
                             expected=f"a 2-D {type_name} image (line, pixel)")
        bands.append(info)
    if len({b.shape for b in bands}) != 1:
        detail = ", ".join(f"{b.name} {b.shape}" for b in bands)
        raise file_error(path, f"bands differ in shape: {detail}", variable=f"{names[0]}…{names[-1]}",
                         expected=f"all {swath} bands on one (line, pixel) grid")
    return tuple(bands)
