"""Cloud-optimised GeoTIFFs and a STAC item (the ``aster-l1t`` layout of stactools' ASTER package) made from a
synthetic AST_L1T HDF file (:func:`~akkd_scale.simulate.l1b_writer.write_aster_l1t`), so the COG scene and
the HDF file it was made from hold the same DN on the same grid.

Written next to the item: ``<id>-TIR.tif`` (bands 10–14, uint16 DN, nodata 0), ``<id>-VNIR.tif`` (bands 1,
2, 3N, uint8, 15 m), ``<id>.hdf.xml`` (LP DAAC-style granule metadata: ``GranuleURMetaData`` with
``SingleDateTime`` and PSAs ``ASTERTIRPointingAngle``, ``Solar_Azimuth_Angle``, ``Solar_Elevation_Angle``,
``ASTERGains``, ``UTMZoneNumber``) and ``<id>.json``, whose assets ``TIR``, ``VNIR``, ``xml`` have relative
hrefs (the item works wherever the folder is served), ``proj:epsg``, ``proj:shape``, ``proj:transform``,
``eo:bands``, ``raster:bands`` (nodata, data type, and for TIR the HDF's INCL/OFFSET as scale/offset unless
``raster_scale=False``), and ``view:off_nadir`` (|TIR pointing angle|), ``view:sun_azimuth``,
``view:sun_elevation``, ``eo:cloud_cover`` and the ``aster:*`` quadrant cloud covers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..conventions import BANDS
from ..io.aster.scene import inspect_scene
from ..io.hdf4 import list_sds, open_sd, read_sds
from ..sensors import ASTER_TIR

#: stactools' ASTER band names and centre wavelengths (µm) of the COG bands.
TIR_EO_BANDS = [
    {"name": f"ImageData{b[1:]}", "description": f"ASTER TIR band {b[1:]}", "center_wavelength": round(float(c), 3)}
    for b, c in zip(BANDS, ASTER_TIR.centers_um, strict=True)
]
VNIR_EO_BANDS = [
    {"name": "ImageData1", "common_name": "green", "center_wavelength": 0.56},
    {"name": "ImageData2", "common_name": "red", "center_wavelength": 0.66},
    {"name": "ImageData3N", "common_name": "nir", "center_wavelength": 0.82},
]
EXTENSIONS = [
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/view/v1.0.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
]
COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"


def write_cog(
    path, data: np.ndarray, transform, epsg: int, *, nodata=0, blocksize: int = 256, descriptions=None
) -> Path:
    """Write a (bands, rows, cols) array as a deflate-compressed cloud-optimised GeoTIFF of ``blocksize`` tiles."""
    import rasterio
    from affine import Affine

    path = Path(path)
    data = np.asarray(data)
    profile = {
        "driver": "COG",
        "count": data.shape[0],
        "height": data.shape[1],
        "width": data.shape[2],
        "dtype": data.dtype.name,
        "crs": f"EPSG:{epsg}",
        "transform": Affine(*transform[:6]),
        "nodata": nodata,
        "BLOCKSIZE": blocksize,
        "COMPRESS": "DEFLATE",
        "OVERVIEWS": "NONE",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if descriptions:
            dst.descriptions = tuple(descriptions)
    return path


def _dn(path: Path, names: tuple[str, ...]) -> np.ndarray:
    """The image SDS ``names`` of an HDF file as one (bands, rows, cols) array (the names are unique)."""
    with open_sd(path) as sd:
        table = {info.name: info for info in list_sds(sd, path)}
        return np.stack([read_sds(sd, path, table[name]) for name in names])


def _transform(projection, shape) -> tuple[float, ...]:
    """GeoTIFF transform (a, b, c, d, e, f) of a MapProjection (pixel centres) on ``shape``."""
    dx, dy = projection.pixel_size(shape)
    (x0, y0) = projection.upper_left
    return (dx, 0.0, x0 - dx / 2, 0.0, -dy, y0 + dy / 2)


def _xml(item_id: str, when: str, pointing: float, sun: tuple, zone: int) -> str:
    """Granule XML in the LP DAAC layout stactools reads (GranuleURMetaData, PSAs)."""
    date, _, clock = when.rstrip("Z").partition("T")
    psas = {
        "ASTERTIRPointingAngle": f"{pointing:.4f}",
        "ASTERVNIRPointingAngle": f"{pointing + 0.02:.4f}",
        "ASTERSWIRPointingAngle": f"{pointing - 0.01:.4f}",
        "Solar_Azimuth_Angle": repr(float(sun[0])),
        "Solar_Elevation_Angle": repr(float(sun[1])),
        "UTMZoneNumber": str(zone),
        "SceneCloudCoverage": "0",
        "ASTERGains": "01 NOR, 02 NOR, 3N NOR, 3B NOR, 04 NOR, 05 NOR, 06 NOR, 07 NOR, 08 NOR, 09 NOR",
        "FlyingDirection": "DE",
    }
    rows = "".join(f"      <PSA><PSAName>{k}</PSAName><PSAValue>{v}</PSAValue></PSA>\n" for k, v in psas.items())
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<GranuleMetaDataFile>\n  <GranuleURMetaData>\n'
        f"    <GranuleUR>{item_id}</GranuleUR>\n    <SingleDateTime><CalendarDate>{date}</CalendarDate>"
        f"<TimeofDay>{clock}</TimeofDay></SingleDateTime>\n    <PSAs>\n{rows}    </PSAs>\n"
        "  </GranuleURMetaData>\n</GranuleMetaDataFile>\n"
    )


def write_aster_l1t_stac(
    hdf_path, out_dir, *, item_id: str | None = None, blocksize: int = 256, raster_scale: bool = True, vnir: bool = True
) -> Path:
    """Write the COGs, XML and STAC item of a synthetic AST_L1T file into ``out_dir``; returns the item path.

    ``item_id`` defaults to the HDF file's stem (so a run names both scenes' groups alike); ``blocksize``:
    COG tile size; ``raster_scale=False`` leaves the TIR scale/offset out of ``raster:bands`` (readers then
    fall back to the handbook UCC); ``vnir=False`` writes no VNIR asset (a night scene)."""
    import pystac

    hdf_path, out_dir = Path(hdf_path), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scene = inspect_scene(hdf_path)
    if scene.projection is None:
        raise ValueError(f"{hdf_path} is an L1B: COGs need the L1T UTM grid")
    item_id = item_id or hdf_path.stem
    epsg, shape = scene.projection.epsg, scene.shape
    tir_transform = _transform(scene.projection, shape)
    tir_href = f"{item_id}-TIR.tif"
    write_cog(
        out_dir / tir_href,
        _dn(hdf_path, tuple(f"ImageData{b[1:]}" for b in BANDS)),
        tir_transform,
        epsg,
        blocksize=blocksize,
        descriptions=[f"ImageData{b[1:]} TIR_Swath" for b in BANDS],
    )
    pointing = scene.pointing_angle
    sun = (scene.attrs["solar_azimuth"], scene.attrs["solar_elevation"])
    xml_href = f"{item_id}.hdf.xml"
    (out_dir / xml_href).write_text(_xml(item_id, scene.acquisition_time, pointing, sun, epsg % 100))
    raster = [
        {
            "nodata": 0,
            "data_type": "uint16",
            "unit": "W/m2/sr/um",
            **({"scale": g, "offset": o} if raster_scale else {}),
        }
        for g, o in zip(scene.gain, scene.offset, strict=True)
    ]
    lat = [scene.attrs["scene_center_lat"] + d for d in (-0.4, 0.4)]
    lon = [scene.attrs["scene_center_lon"] + d for d in (-0.5, 0.5)]
    item = pystac.Item(
        item_id,
        geometry={
            "type": "Polygon",
            "coordinates": [[[lon[0], lat[0]], [lon[1], lat[0]], [lon[1], lat[1]], [lon[0], lat[1]], [lon[0], lat[0]]]],
        },
        bbox=[lon[0], lat[0], lon[1], lat[1]],
        datetime=pystac.utils.str_to_datetime(scene.acquisition_time),
        properties={
            "platform": "terra",
            "instruments": ["aster"],
            "eo:cloud_cover": 0.0,
            "view:off_nadir": abs(pointing) if math.isfinite(pointing) else None,
            "view:sun_azimuth": sun[0],
            "view:sun_elevation": sun[1],
            "proj:epsg": epsg,
            "aster:processing_number": "0",
            "aster:upper_left_quad_cloud_cover": 0.0,
            "aster:upper_right_quad_cloud_cover": 0.0,
            "aster:lower_left_quad_cloud_cover": 0.0,
            "aster:lower_right_quad_cloud_cover": 0.0,
        },
        stac_extensions=list(EXTENSIONS),
    )
    item.add_asset(
        "xml", pystac.Asset(xml_href, title="XML metadata", media_type="application/xml", roles=["metadata"])
    )
    item.add_asset(
        "TIR",
        pystac.Asset(
            tir_href,
            title="TIR Swath data",
            media_type=COG_MEDIA_TYPE,
            roles=["data"],
            extra_fields={
                "eo:bands": TIR_EO_BANDS,
                "proj:shape": list(shape),
                "proj:transform": list(tir_transform) + [0.0, 0.0, 1.0],
                "raster:bands": raster,
            },
        ),
    )
    if vnir and scene.vnir is not None:
        vshape = scene.vnir.bands[0].shape
        factor = scene.vnir.factor
        vnir_transform = (
            tir_transform[0] / factor,
            0.0,
            tir_transform[2] - scene.vnir.origin[1] * tir_transform[0] / factor,
            0.0,
            tir_transform[4] / factor,
            tir_transform[5] + scene.vnir.origin[0] * tir_transform[0] / factor,
        )
        vnir_href = f"{item_id}-VNIR.tif"
        write_cog(
            out_dir / vnir_href,
            _dn(hdf_path, ("ImageData1", "ImageData2", "ImageData3N")),
            vnir_transform,
            epsg,
            blocksize=blocksize,
            descriptions=["ImageData1 VNIR_Swath", "ImageData2 VNIR_Swath", "ImageData3N VNIR_Swath"],
        )
        item.add_asset(
            "VNIR",
            pystac.Asset(
                vnir_href,
                title="VNIR Swath data",
                media_type=COG_MEDIA_TYPE,
                roles=["data"],
                extra_fields={
                    "eo:bands": VNIR_EO_BANDS,
                    "proj:shape": list(vshape),
                    "proj:transform": list(vnir_transform) + [0.0, 0.0, 1.0],
                    "raster:bands": [{"nodata": 0, "data_type": "uint8"}] * 3,
                },
            ),
        )
    path = out_dir / f"{item_id}.json"
    path.write_text(json.dumps(item.to_dict(include_self_link=False), indent=1))
    return path


#: Collection id of stactools' ASTER L1T items (and of the catalogs written here).
COLLECTION_ID = "aster-l1t"


def _relative(target: Path, start: Path) -> str:
    import os

    return Path(os.path.relpath(target.resolve(), start.resolve())).as_posix()


def write_stac_catalog(root, items, *, collection_id: str = COLLECTION_ID) -> Path:
    """Write a static, self-contained STAC catalog over item JSON files (written by :func:`write_aster_l1t_stac`,
    anywhere under ``root``): ``root/catalog.json`` with one child, ``root/<collection_id>/collection.json``,
    whose item links point at the items where they are (relative links, so the folder can be served anywhere);
    its extent is the items' bboxes and times. The items are not rewritten. Returns the catalog's path."""
    root = Path(root)
    folder = root / collection_id
    folder.mkdir(parents=True, exist_ok=True)
    items = [Path(p) for p in items]
    loaded = [json.loads(p.read_text()) for p in items]
    boxes = [d["bbox"] for d in loaded]
    times = sorted(d["properties"]["datetime"] for d in loaded)
    collection = {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": collection_id,
        "title": "ASTER L1T (synthetic, akkd_scale)",
        "description": "Synthetic ASTER L1T scenes as COGs (stactools' aster-l1t layout), written by akkd_scale.",
        "license": "proprietary",
        "extent": {
            "spatial": {
                "bbox": [
                    [
                        min(b[0] for b in boxes),
                        min(b[1] for b in boxes),
                        max(b[2] for b in boxes),
                        max(b[3] for b in boxes),
                    ]
                ]
            },
            "temporal": {"interval": [[times[0], times[-1]]]},
        },
        "links": [
            {"rel": "root", "href": "../catalog.json", "type": "application/json"},
            {"rel": "parent", "href": "../catalog.json", "type": "application/json"},
        ]
        + [
            {"rel": "item", "href": _relative(path, folder), "type": "application/geo+json", "title": data["id"]}
            for path, data in zip(items, loaded, strict=True)
        ],
    }
    catalog = {
        "type": "Catalog",
        "stac_version": "1.0.0",
        "id": "akkd-scale-synthetic",
        "description": "Synthetic ASTER scenes written by akkd_scale",
        "links": [
            {"rel": "root", "href": "./catalog.json", "type": "application/json"},
            {"rel": "child", "href": f"./{collection_id}/collection.json", "type": "application/json"},
        ],
    }
    (folder / "collection.json").write_text(json.dumps(collection, indent=1))
    path = root / "catalog.json"
    path.write_text(json.dumps(catalog, indent=1))
    return path
