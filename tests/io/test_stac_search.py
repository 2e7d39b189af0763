"""STAC search: a STAC API (pystac-client against the package's minimal API on 127.0.0.1) and a static catalog
(by URL and by path, filtered here) find the same items by collection, bbox and time; bad searches fail with one
line naming the URL."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from stac_catalog import BBOX_AB, SEARCH_SCENES, search_catalog  # noqa: F401

from akkd_scale.errors import InputError, ParameterError
from akkd_scale.io.aster.stac import is_stac_item
from akkd_scale.io.aster.stac_search import (
    StacSearch,
    bbox_intersects,
    item_matches,
    parse_bbox,
    parse_datetime,
    search_items,
)
from akkd_scale.io.remote import Remote

A, B, C = SEARCH_SCENES
UTC = dt.UTC


def test_datetime_intervals_open_ends_and_whole_days():
    assert parse_datetime("2004-07-01/2004-07-31") == (
        dt.datetime(2004, 7, 1, tzinfo=UTC),
        dt.datetime(2004, 7, 31, 23, 59, 59, 999999, tzinfo=UTC),
    )
    assert parse_datetime("2004-07-15T18:00:00Z/..") == (dt.datetime(2004, 7, 15, 18, tzinfo=UTC), None)
    assert parse_datetime("../2004-07") == (None, dt.datetime(2004, 7, 31, 23, 59, 59, 999999, tzinfo=UTC))
    assert parse_datetime("2004") == (
        dt.datetime(2004, 1, 1, tzinfo=UTC),
        dt.datetime(2004, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    )
    assert parse_datetime("2004-12")[1] == dt.datetime(2004, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert parse_datetime("2004-07-15T20:00:00+02:00") == (dt.datetime(2004, 7, 15, 18, tzinfo=UTC),) * 2


@pytest.mark.parametrize("text", ["2004-13-01", "2005/2004", "../..", "a/b/c", "yesterday", "", "2004-07-15T25:00"])
def test_malformed_datetimes_name_the_argument_and_the_form(text):
    with pytest.raises(ParameterError) as caught:
        parse_datetime(text)
    assert caught.value.variable == "datetime" and "START/END" in str(caught.value)


@pytest.mark.parametrize(
    "value", [(1, 2, 3), (1, 2, 3, 4, 5), ("a", 1, 2, 3), (0, 50, 10, 40), (-200, 0, 10, 10), (0, 0, float("nan"), 1)]
)
def test_malformed_bboxes_name_the_argument_and_the_form(value):
    with pytest.raises(ParameterError) as caught:
        parse_bbox(value)
    assert caught.value.variable == "bbox" and "W S E N" in str(caught.value)


def test_bbox_text_and_the_antimeridian():
    assert parse_bbox("-117.5,36,-116,37") == BBOX_AB
    assert bbox_intersects((170, -10, -170, 10), (175, 0, 176, 1))  # crosses the antimeridian
    assert bbox_intersects((170, -10, -170, 10), (-175, 0, -174, 1))
    assert not bbox_intersects((170, -10, -170, 10), (0, 0, 1, 1))
    assert not bbox_intersects((0, 0, 1, 1), (0, 2, 1, 3))


def test_items_match_by_bbox_or_geometry_and_by_datetime_or_range():
    item = {"bbox": [0, 0, 1, 1], "properties": {"datetime": "2004-07-15T18:30:00Z"}}
    assert item_matches(item, (0.5, 0.5, 2, 2), parse_datetime("2004-07-15"))
    assert not item_matches(item, (2, 2, 3, 3)) and not item_matches(item, None, parse_datetime("2004-07-16/.."))
    ranged = {
        "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]},
        "properties": {"datetime": None, "start_datetime": "2004-07-01T00:00:00Z", "end_datetime": "2004-07-31T00:00Z"},
    }
    assert item_matches(ranged, (0.9, 0.9, 2, 2), parse_datetime("2004-07-20"))
    assert not item_matches(ranged, None, parse_datetime("2004-08"))
    assert not item_matches({"properties": {"datetime": "2004-07-15T00:00:00Z"}}, (0, 0, 1, 1))  # no geometry


def test_api_item_urls_are_stac_items_and_hdf_urls_are_not():
    assert is_stac_item("https://stac.example/api/collections/aster-l1t/items/AST_L1T_0030715")
    assert is_stac_item("https://example.org/x/item.json?token=1")
    assert not is_stac_item("https://example.org/collections/a/items/x/AST_L1T.hdf")
    assert not is_stac_item("s3://bucket/AST_L1T_0030715.hdf")


def _wheres(catalog):
    return {"API": catalog.api_url, "static over HTTP": catalog.catalog_url, "static by path": str(catalog.catalog)}


@pytest.mark.parametrize("where", ["API", "static over HTTP", "static by path"])
def test_api_and_static_catalog_find_the_same_items(search_catalog, where):  # noqa: F811
    url = _wheres(search_catalog)[where]

    def found(**search):
        return [
            loc.rstrip("/").split("/")[-1].removesuffix(".json") for loc in search_items(StacSearch.of(url, **search))
        ]

    assert found() == [A, B, C]
    assert found(collection="aster-l1t", bbox=BBOX_AB) == [A, B]
    assert found(collection="aster-l1t", bbox=BBOX_AB, datetime="2004-07-01/2004-07-31") == [A]
    assert found(datetime="2004-07-15") == [A, C]
    assert found(datetime="2004-07-15T18:30:30Z/..") == [B, C]
    assert found(bbox=(-106, 39, -104, 41), datetime="2004-07-15T18:31:00Z") == [C]  # one instant
    assert found(max_items=2) == [A, B]


def test_api_items_are_read_by_their_self_links_over_pages(search_catalog):  # noqa: F811
    served = search_catalog.server.served
    before = served.count("/api/search")
    found = search_items(StacSearch.of(search_catalog.api_url, "aster-l1t", BBOX_AB))
    assert found == [f"{search_catalog.api_url}/collections/aster-l1t/items/{name}" for name in (A, B)]
    assert served.count("/api/search") - before >= 2  # one item per page: pystac-client followed the next link
    item = json.loads(Remote.of().filesystem(found[0])[0].cat(found[0]))
    assert item["assets"]["TIR"]["href"].startswith(search_catalog.server.url + "/scenes/")


@pytest.mark.parametrize("where", ["API", "static over HTTP", "static by path"])
def test_nothing_found_and_unknown_collections_are_one_line_naming_the_url(search_catalog, where):  # noqa: F811
    url = _wheres(search_catalog)[where]
    with pytest.raises(InputError) as caught:
        search_items(StacSearch.of(url, "aster-l1t", (0, 0, 1, 1), "2004-07-01/2004-07-31"))
    text = str(caught.value)
    assert text.startswith(url) and "no STAC item found" in text and "bbox [0.0, 0.0, 1.0, 1.0]" in text
    with pytest.raises(InputError) as caught:
        search_items(StacSearch.of(url, "aster-l2-surface-temperature"))
    text = str(caught.value)
    assert "no collection 'aster-l2-surface-temperature'" in text and "aster-l1t" in text and "\n" not in text


def test_unreachable_missing_and_non_stac_urls_fail_with_one_line(search_catalog, closed_endpoint, tmp_path):  # noqa: F811
    remote = Remote.of(timeout=3)
    for url, problem in (
        (f"{closed_endpoint}/api", "unreachable"),
        (f"{search_catalog.server.url}/nothing/catalog.json", "404"),
        (str(tmp_path / "missing.json"), "does not exist"),
    ):
        with pytest.raises(InputError) as caught:
            search_items(StacSearch.of(url, "aster-l1t"), remote)
        assert problem in str(caught.value) and "\n" not in str(caught.value), url
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "item.json").write_text(search_catalog.items[A].read_text())
    for name in ("list.json", "item.json"):
        with pytest.raises(InputError, match="not a STAC catalog or API"):
            search_items(StacSearch.of(tmp_path / name), remote)


def test_api_that_stops_answering_mid_search_fails_with_one_line(search_catalog, stalled_endpoint):  # noqa: F811
    landing = json.loads(Remote.of().filesystem(search_catalog.api_url)[0].cat(search_catalog.api_url))
    for link in landing["links"]:  # the landing page answers, its search endpoint never does
        if link["rel"] == "search":
            link["href"] = f"{stalled_endpoint}/search"
    path = search_catalog.catalog.parent / "stalled_api.json"
    path.write_text(json.dumps(landing))
    with pytest.raises(InputError) as caught:
        search_items(StacSearch.of(search_catalog.server.file_url(path)), Remote.of(timeout=1))
    assert "no answer within 1 s" in str(caught.value)


def test_an_api_item_without_a_self_link_is_copied_to_the_staging_directory(search_catalog, tmp_path):  # noqa: F811
    import pystac

    from akkd_scale.io.aster.stac import read_stac_scene
    from akkd_scale.io.aster.stac_search import _location

    url = f"{search_catalog.api_url}/collections/aster-l1t/items/{A}"
    data = json.loads(Remote.of().filesystem(url)[0].cat(url))
    data["links"] = []
    remote = Remote.of(staging_dir=tmp_path)
    path = _location(pystac.Item.from_dict(data), StacSearch.of(search_catalog.api_url), remote)
    assert path.startswith(str(tmp_path)) and is_stac_item(path)
    assert read_stac_scene(path, remote).item_id == A  # its assets' absolute hrefs still reach the COGs


def test_a_static_catalog_in_s3_is_searched_through_the_run_s_storage_options(search_catalog, s3_server):  # noqa: F811
    root = search_catalog.catalog.parent
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".json", ".xml")):
        s3_server.upload(path, f"catalog/{path.relative_to(root).as_posix()}")
    remote = Remote.of(s3_server.storage_options)
    found = search_items(StacSearch.of("s3://akkd-scenes/catalog/catalog.json", "aster-l1t", BBOX_AB), remote)
    assert found == [f"s3://akkd-scenes/catalog/scenes/{name}/{name}.json" for name in (A, B)]
