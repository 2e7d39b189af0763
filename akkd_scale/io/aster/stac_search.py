"""Scenes found by a STAC search: a STAC API's ``/search`` (pystac-client) or a static catalog or collection
(pystac, filtered here), by collection, bounding box and time, as the item locations a run takes.

:class:`StacSearch` holds one search, its bounding box and time interval checked
(:meth:`StacSearch.of`: one clear line for a malformed bbox or datetime); :func:`search_items` runs it and
returns the items' URLs (their ``self`` links), which :func:`~akkd_scale.io.aster.stac.read_stac_scene` reads as
any item given by URL. Whether the URL is an API is read from its landing page: ``conformsTo`` with STAC
API item search and a ``search`` link; anything else that is a catalog or collection is walked item by item
(relative links resolved; read through :func:`~akkd_scale.io.remote.read_document`, so ``s3://`` and local
catalogs work as ``https://`` ones do, with the run's storage options and timeout). A static search keeps an
item whose ``bbox`` (else its geometry's bounds) intersects the box and whose ``datetime`` (or
``start_datetime``/``end_datetime``) falls in the interval, as an API does.

Errors name the URL: unreachable, not a STAC catalog or API, no such collection (the ones there are listed),
no item found (the search is repeated in the message).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ...errors import InputError, ParameterError, SceneFileError
from ..remote import Remote, is_url, read_document, redact

log = logging.getLogger(__name__)

EXPECTED_ROOT = "a STAC API landing page or a static STAC catalog or collection (JSON)"
EXPECTED_BBOX = (
    "4 numbers W S E N in degrees: -180 <= W, E <= 180, -90 <= S <= N <= 90 (W > E crosses the antimeridian)"
)
EXPECTED_DATETIME = (
    "START/END as ISO 8601 dates or times in UTC, '..' for an open end, e.g. 2004-07-01/2004-07-31, "
    "2004-07-15T18:00:00Z/.. or a single date 2004-07-15"
)
#: Conformance class of STAC API item search (any version: 1.0.0, 1.0.0-rc.x, …).
ITEM_SEARCH = re.compile(r"^https?://api\.stacspec\.org/v1\.[^/]+/item-search$")
#: Collections named in an error about a collection that does not exist.
SHOWN_COLLECTIONS = 12
PARTIAL_DATE = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?$")


@dataclass(frozen=True)
class StacSearch:
    """One search: the API or catalog ``url``, an optional ``collection``, ``bbox`` (W, S, E, N in degrees),
    time ``interval`` (start, end; None for an open end, UTC) and ``max_items``. Build it with :meth:`of`."""

    url: str
    collection: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    interval: tuple[_dt.datetime | None, _dt.datetime | None] | None = None
    max_items: int | None = None

    @classmethod
    def of(cls, url, collection=None, bbox=None, datetime=None, max_items=None) -> StacSearch:
        """A search with its arguments checked: ``bbox`` 4 numbers (or text ``"W,S,E,N"``), ``datetime`` text
        (``START/END``, see :func:`parse_datetime`) or a (start, end) pair, ``max_items`` ≥ 1; raises
        ParameterError naming the argument and what it takes."""
        if not str(url or "").strip():
            raise ParameterError(None, "no URL", variable="stac", expected=EXPECTED_ROOT)
        if collection is not None and not str(collection).strip():
            raise ParameterError(None, "an empty collection id", variable="collection", expected="a collection id")
        if max_items is not None and (not isinstance(max_items, int) or isinstance(max_items, bool) or max_items < 1):
            raise ParameterError(None, f"max_items={max_items!r}", variable="max_items", expected="a whole number >= 1")
        interval: tuple[_dt.datetime | None, _dt.datetime | None] | None = None
        if isinstance(datetime, str):
            interval = parse_datetime(datetime)
        elif datetime is not None:
            ends = [_utc(t) if t is not None else None for t in datetime]
            if len(ends) != 2 or ends == [None, None] or (None not in ends and ends[0] > ends[1]):  # type: ignore[operator]
                raise ParameterError(None, f"datetime={datetime!r}", variable="datetime", expected=EXPECTED_DATETIME)
            interval = (ends[0], ends[1])
        return cls(
            str(url).strip(),
            str(collection).strip() if collection is not None else None,
            parse_bbox(bbox) if bbox is not None else None,
            interval,
            max_items,
        )

    def describe(self) -> str:
        """The search in words, for messages: ``collection aster-l1t, bbox [...], datetime A/B``."""
        parts = [f"collection {self.collection}" if self.collection else "all collections"]
        if self.bbox is not None:
            parts.append(f"bbox {list(self.bbox)}")
        if self.interval is not None:
            parts.append(f"datetime {format_interval(self.interval)}")
        return ", ".join(parts)


def parse_bbox(value) -> tuple[float, float, float, float]:
    """(W, S, E, N) from 4 numbers or text ``"W,S,E,N"`` (or space-separated); raises ParameterError."""
    given = value.replace(",", " ").split() if isinstance(value, str) else value
    try:
        numbers = tuple(float(v) for v in given)
    except (TypeError, ValueError):
        raise ParameterError(
            None, f"bbox {value!r} is not 4 numbers", variable="bbox", expected=EXPECTED_BBOX
        ) from None
    if len(numbers) != 4 or not all(math.isfinite(v) for v in numbers):
        raise ParameterError(None, f"bbox {list(numbers)}", variable="bbox", expected=EXPECTED_BBOX)
    west, south, east, north = numbers
    if not (-180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= north <= 90):
        raise ParameterError(None, f"bbox {list(numbers)} is out of range", variable="bbox", expected=EXPECTED_BBOX)
    return west, south, east, north


def _utc(moment: _dt.datetime) -> _dt.datetime:
    return moment.replace(tzinfo=_dt.UTC) if moment.tzinfo is None else moment.astimezone(_dt.UTC)


def _instant(text: str, end: bool) -> _dt.datetime | None:
    """One side of an interval: None for ``..``/empty; a date (or year, year-month) covers the whole day (month,
    year): its start, or with ``end`` its last microsecond."""
    text = text.strip()
    if text in ("", ".."):
        return None
    partial = PARTIAL_DATE.match(text)
    if partial:
        year, month, day = (int(v) if v else None for v in partial.groups())
        start = _dt.datetime(year, month or 1, day or 1, tzinfo=_dt.UTC)  # type: ignore[arg-type]
        if not end:
            return start
        if day:
            after = start + _dt.timedelta(days=1)
        elif month:
            after = start.replace(year=year + (month == 12), month=month % 12 + 1)  # type: ignore[operator]
        else:
            after = start.replace(year=year + 1)  # type: ignore[operator]
        return after - _dt.timedelta(microseconds=1)
    return _utc(_dt.datetime.fromisoformat(text))


def parse_datetime(text: str) -> tuple[_dt.datetime | None, _dt.datetime | None]:
    """(start, end) in UTC of ``START/END`` (``..`` or nothing: open), or of one date or time (that day, or
    that instant); raises ParameterError."""
    value = str(text).strip()
    sides = value.split("/")
    try:
        if len(sides) == 1:
            if value in ("", ".."):
                raise ValueError("no date")
            start, end = _instant(value, False), _instant(value, True)
        elif len(sides) == 2:
            start, end = _instant(sides[0], False), _instant(sides[1], True)
            if start is None and end is None:
                raise ValueError("both ends open")
        else:
            raise ValueError("more than one '/'")
    except (ValueError, OverflowError) as exc:
        raise ParameterError(
            None, f"datetime {value!r} ({exc})", variable="datetime", expected=EXPECTED_DATETIME
        ) from None
    if start is not None and end is not None and start > end:
        raise ParameterError(
            None, f"datetime {value!r} starts after it ends", variable="datetime", expected=EXPECTED_DATETIME
        )
    return start, end


def _rfc3339(moment: _dt.datetime | None) -> str:
    return ".." if moment is None else moment.isoformat().replace("+00:00", "Z")


def format_interval(interval) -> str:
    """An interval as STAC API ``datetime`` text: ``2004-07-01T00:00:00Z/..``."""
    return "/".join(_rfc3339(t) for t in interval)


# --- matching an item (static catalogs here; the test API uses the same rules) ---------------------------------


def item_bbox(item: dict) -> tuple[float, float, float, float] | None:
    """An item's (W, S, E, N): its ``bbox`` (2D or 3D), else its geometry's bounds, else None."""
    bbox = item.get("bbox")
    if isinstance(bbox, list | tuple) and len(bbox) in (4, 6):
        values = [float(v) for v in bbox]
        return tuple(values[:2] + values[2:4]) if len(values) == 4 else (values[0], values[1], values[3], values[4])  # type: ignore[return-value]
    coordinates = list(_positions((item.get("geometry") or {}).get("coordinates")))
    if not coordinates:
        return None
    lons, lats = [c[0] for c in coordinates], [c[1] for c in coordinates]
    return min(lons), min(lats), max(lons), max(lats)


def _positions(coordinates) -> Iterator[tuple[float, float]]:
    if isinstance(coordinates, list | tuple) and coordinates and isinstance(coordinates[0], int | float):
        yield float(coordinates[0]), float(coordinates[1])
    elif isinstance(coordinates, list | tuple):
        for part in coordinates:
            yield from _positions(part)


def _lon_ranges(west: float, east: float) -> list[tuple[float, float]]:
    return [(west, east)] if west <= east else [(west, 180.0), (-180.0, east)]


def bbox_intersects(a, b) -> bool:
    """Whether two (W, S, E, N) boxes intersect (either may cross the antimeridian)."""
    if a[1] > b[3] or b[1] > a[3]:
        return False
    return any(w1 <= e2 and w2 <= e1 for w1, e1 in _lon_ranges(a[0], a[2]) for w2, e2 in _lon_ranges(b[0], b[2]))


def item_interval(item: dict) -> tuple[_dt.datetime, _dt.datetime] | None:
    """An item's time: (``datetime``, ``datetime``), else (``start_datetime``, ``end_datetime``); None without."""
    properties = item.get("properties") or {}
    try:
        if properties.get("datetime"):
            moment = _utc(_dt.datetime.fromisoformat(str(properties["datetime"])))
            return moment, moment
        if properties.get("start_datetime") and properties.get("end_datetime"):
            return (
                _utc(_dt.datetime.fromisoformat(str(properties["start_datetime"]))),
                _utc(_dt.datetime.fromisoformat(str(properties["end_datetime"]))),
            )
    except ValueError:
        return None
    return None


def item_matches(item: dict, bbox=None, interval=None) -> bool:
    """Whether an item (a STAC item dict) intersects ``bbox`` and overlaps the (start, end) ``interval``."""
    if bbox is not None:
        own = item_bbox(item)
        if own is None or not bbox_intersects(own, bbox):
            return False
    if interval is not None:
        own_time = item_interval(item)
        if own_time is None:
            return False
        start, end = interval
        if (start is not None and own_time[1] < start) or (end is not None and own_time[0] > end):
            return False
    return True


# --- running a search --------------------------------------------------------------------------------------------


def is_api(root: dict) -> bool:
    """Whether a landing page is a STAC API with item search: the conformance class and a ``search`` link."""
    conforms = [str(c) for c in root.get("conformsTo") or []]
    links = [link for link in root.get("links") or [] if isinstance(link, dict)]
    return any(ITEM_SEARCH.match(c) for c in conforms) and any(link.get("rel") == "search" for link in links)


def search_items(search: StacSearch, remote: Remote | None = None) -> list[str]:
    """Run ``search``; the locations (URLs, or paths for a local catalog) of the items found, in the order
    the API or catalog gives them, at most ``max_items``. Raises InputError naming the URL when it cannot be
    reached or read, is no STAC catalog or API, has no such collection, or nothing matches."""
    remote = remote or Remote.of()
    data = read_document(search.url, remote, EXPECTED_ROOT)
    try:
        root = json.loads(data)
    except ValueError as exc:
        raise SceneFileError(redact(search.url), f"not JSON ({exc})", expected=EXPECTED_ROOT) from None
    if not isinstance(root, dict) or (root.get("type") not in ("Catalog", "Collection") and "conformsTo" not in root):
        kind = root.get("type") if isinstance(root, dict) else type(root).__name__
        raise SceneFileError(redact(search.url), f"not a STAC catalog or API (type {kind!r})", expected=EXPECTED_ROOT)
    if is_api(root):
        found = _api_search(search, remote)
        where = "STAC API"
    else:
        found = _static_search(search, root, remote)
        where = "static STAC catalog"
    if not found:
        raise InputError(
            redact(search.url),
            f"no STAC item found ({where}; {search.describe()})",
            variable="search",
            expected="at least one item: widen the bbox or datetime, or check the collection",
        )
    log.info("STAC search of %s (%s): %d item(s)", redact(search.url), search.describe(), len(found))
    return found


def _no_collection(search: StacSearch, ids: Iterable[str]) -> InputError:
    ids = sorted(set(ids))
    shown = ", ".join(ids[:SHOWN_COLLECTIONS]) + (", …" if len(ids) > SHOWN_COLLECTIONS else "")
    return InputError(
        redact(search.url),
        f"no collection {search.collection!r}",
        variable="collection",
        expected=f"one of its collections: {shown}" if ids else "a collection id (it lists no collections)",
    )


def _api_error(search: StacSearch, exc: BaseException, remote: Remote) -> InputError:
    """One line for a failed API call (status, unreachable, timeout)."""
    names: set[str] = set()
    current: BaseException | None = exc
    while current is not None and len(names) < 20:
        names.add(type(current).__name__)
        current = current.__cause__ or current.__context__
    status = getattr(exc, "status_code", None)
    if names & {"ConnectTimeout", "ReadTimeout", "Timeout", "TimeoutError"}:
        problem = f"no answer within {remote.timeout:g} s (endpoint unreachable or stalled)"
    elif names & {"ConnectionError", "ConnectionRefusedError", "NewConnectionError"}:
        problem = "endpoint unreachable (connection refused or host unknown)"
    elif status:
        problem = f"the search failed: HTTP {status} ({' '.join(str(exc).split())[:200]})"
    else:
        problem = f"the search failed ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})"
    return InputError(redact(search.url), problem, variable="search", expected="a reachable STAC API")


def _api_search(search: StacSearch, remote: Remote) -> list[str]:
    """Items found by the API's ``/search`` (pages followed by pystac-client), as their ``self`` links; an item
    without one is written to the staging directory and given by path."""
    import warnings

    import pystac_client

    headers = remote._options_for("https").get("headers") or None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # conformance warnings of partial APIs: the search says what fails
            client = pystac_client.Client.open(search.url, headers=headers, timeout=remote.timeout)
            from pystac_client import ConformanceClasses

            collections = client.conforms_to(ConformanceClasses.COLLECTIONS) or client.conforms_to(
                ConformanceClasses.FEATURES
            )
            if search.collection and collections:
                if client.get_collection(search.collection) is None:
                    raise _no_collection(search, (c.id for c in client.get_collections()))
            found = client.search(
                collections=[search.collection] if search.collection else None,
                bbox=list(search.bbox) if search.bbox is not None else None,
                datetime=format_interval(search.interval) if search.interval is not None else None,
                max_items=search.max_items,
            )
            items = list(found.items())
    except InputError:
        raise
    except Exception as exc:  # pystac-client's APIError, requests' connection errors and timeouts
        raise _api_error(search, exc, remote) from None
    return [_location(item, search, remote) for item in items]


def _location(item, search: StacSearch, remote: Remote) -> str:
    """Where a found item is read from: its ``self`` link, else a copy in the staging directory."""
    href = item.get_self_href()
    if href:
        return href
    key = hashlib.sha256(redact(search.url).encode()).hexdigest()[:20]
    path = Path(remote.staging_dir or ".") / "stac-items" / key / f"{item.id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(item.to_dict(include_self_link=False)))
    log.info("STAC item %s has no self link: copied to %s", item.id, path)
    return str(path)


def _stac_io(remote: Remote):
    """A pystac StacIO reading through the run's remote settings (fsspec: https, s3, …; local files)."""
    import pystac

    class _RemoteStacIO(pystac.StacIO):
        def read_text(self, source, *args, **kwargs) -> str:
            return read_document(str(source), remote, "a STAC catalog, collection or item (JSON)").decode()

        def write_text(self, dest, txt, *args, **kwargs) -> None:
            raise NotImplementedError("searches never write catalogs")

    return _RemoteStacIO()


def _static_search(search: StacSearch, root: dict, remote: Remote) -> list[str]:
    """Items of a static catalog (or of its collection ``search.collection``) that match, walked through
    child and item links."""
    import pystac

    base = search.url if is_url(search.url) else str(Path(search.url).expanduser().resolve())
    try:
        catalog = pystac.read_dict(root, href=base, stac_io=_stac_io(remote))
        if not isinstance(catalog, pystac.Catalog):
            raise SceneFileError(redact(search.url), "a STAC item, not a catalog", expected=EXPECTED_ROOT)
        if search.collection and not (isinstance(catalog, pystac.Collection) and catalog.id == search.collection):
            collections = list(catalog.get_all_collections())
            chosen = next((c for c in collections if c.id == search.collection), None)
            if chosen is None:
                raise _no_collection(search, [c.id for c in collections])
            catalog = chosen
        found = []
        for item in catalog.get_items(recursive=True):
            if item_matches(item.to_dict(include_self_link=False, transform_hrefs=False), search.bbox, search.interval):
                found.append(item.get_self_href())
                if search.max_items is not None and len(found) >= search.max_items:
                    break
    except InputError:
        raise
    except (pystac.STACError, pystac.STACTypeError, KeyError, TypeError, ValueError) as exc:
        raise SceneFileError(
            redact(search.url), f"cannot read the catalog ({type(exc).__name__}: {exc})", expected=EXPECTED_ROOT
        ) from None
    return [href for href in found if href]
