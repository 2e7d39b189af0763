"""A local server for synthetic COG scenes: their files over HTTP with byte ranges, and a minimal STAC API over
a static catalog (:func:`~akkd_scale.simulate.stac_writer.write_stac_catalog`), on 127.0.0.1.

For the cloud-native demo and the tests: retrieval through GDAL's range reads and a STAC search without any
network beyond this machine. Files under ``root`` are served at ``/`` (GET and HEAD, single byte ranges,
ETag, Last-Modified). With a catalog, ``/api`` answers as a STAC API: the landing page (``conformsTo``: core,
item search, collections, features; links ``search``, ``data``, ``conformance``), ``/api/conformance``,
``/api/collections``, ``/api/collections/<id>`` (404 when there is none), ``/api/collections/<id>/items/<id>``
and ``/api/search`` by GET (query parameters) and POST (JSON body) with ``collections``, ``ids``, ``bbox``,
``datetime`` and ``limit``, paged by ``next`` links, filtered by the rules a static search applies
(:func:`~akkd_scale.io.aster.stac_search.item_matches`). Items carry absolute asset hrefs into the file tree
and ``self`` links into the API. Not a STAC API implementation beyond what a search by collection, box and
time needs.
"""

from __future__ import annotations

import email.utils
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

from ..errors import ParameterError
from ..io.aster.stac_search import item_matches, parse_bbox, parse_datetime

RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
#: Items per page of ``/api/search`` unless ``limit`` asks for fewer or more.
PAGE = 10
CONFORMS_TO = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/collections",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
]


@dataclass
class Served:
    """What the server was asked: (method, path, Range header, bytes sent, status) per request."""

    requests: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, *entry) -> None:
        with self.lock:
            self.requests.append(entry)

    def bytes_sent(self, suffix: str = "") -> int:
        with self.lock:
            return sum(r[3] for r in self.requests if r[1].split("?", 1)[0].endswith(suffix))

    def count(self, prefix: str) -> int:
        with self.lock:
            return sum(1 for r in self.requests if r[1].startswith(prefix))


class _Api:
    """The collections and items of a static catalog, as the API serves them (hrefs made absolute)."""

    def __init__(self, catalog: Path, files_url: str, api_url: str, root: Path, page: int = PAGE):
        import pystac

        self.url, self.page = api_url, page
        self.collections: dict[str, dict] = {}
        self.items: dict[str, list[dict]] = {}
        for collection in pystac.Catalog.from_file(str(catalog)).get_all_collections():
            own = []
            for item in collection.get_items():
                item.make_asset_hrefs_absolute()
                data = item.to_dict(include_self_link=False, transform_hrefs=False)
                for asset in data["assets"].values():
                    asset["href"] = files_url + "/" + Path(asset["href"]).resolve().relative_to(root).as_posix()
                data["collection"] = collection.id
                data["links"] = self._links(f"collections/{collection.id}/items/{item.id}", collection.id)
                own.append(data)
            meta = collection.to_dict(include_self_link=False, transform_hrefs=False)
            meta["links"] = [
                {"rel": "self", "href": f"{api_url}/collections/{collection.id}", "type": "application/json"},
                {"rel": "root", "href": api_url, "type": "application/json"},
                {"rel": "parent", "href": api_url, "type": "application/json"},
                {
                    "rel": "items",
                    "href": f"{api_url}/collections/{collection.id}/items",
                    "type": "application/geo+json",
                },
            ]
            self.collections[collection.id], self.items[collection.id] = meta, own

    def _links(self, path: str, collection: str) -> list[dict]:
        return [
            {"rel": "self", "href": f"{self.url}/{path}", "type": "application/geo+json"},
            {"rel": "collection", "href": f"{self.url}/collections/{collection}", "type": "application/json"},
            {"rel": "parent", "href": f"{self.url}/collections/{collection}", "type": "application/json"},
            {"rel": "root", "href": self.url, "type": "application/json"},
        ]

    def landing(self) -> dict:
        return {
            "type": "Catalog",
            "stac_version": "1.0.0",
            "id": "akkd-scale-local-api",
            "title": "akkd_scale local STAC API",
            "description": "A minimal STAC API over a static catalog of synthetic scenes",
            "conformsTo": CONFORMS_TO,
            "links": [
                {"rel": "self", "href": self.url, "type": "application/json"},
                {"rel": "root", "href": self.url, "type": "application/json"},
                {"rel": "conformance", "href": f"{self.url}/conformance", "type": "application/json"},
                {"rel": "data", "href": f"{self.url}/collections", "type": "application/json"},
                {"rel": "search", "href": f"{self.url}/search", "type": "application/geo+json", "method": "GET"},
                {"rel": "search", "href": f"{self.url}/search", "type": "application/geo+json", "method": "POST"},
            ]
            + [
                {"rel": "child", "href": f"{self.url}/collections/{c}", "type": "application/json"}
                for c in self.collections
            ],
        }

    def search(self, params: dict, method: str) -> dict:
        """An ItemCollection page; raises ParameterError for a malformed parameter (answered with 400)."""
        collections = params.get("collections")
        if isinstance(collections, str):
            collections = [c for c in collections.split(",") if c]
        ids = params.get("ids")
        if isinstance(ids, str):
            ids = [i for i in ids.split(",") if i]
        bbox = parse_bbox(params["bbox"]) if params.get("bbox") is not None else None
        interval = parse_datetime(params["datetime"]) if params.get("datetime") else None
        limit = int(params.get("limit") or self.page)
        offset = int(params.get("offset") or 0)
        if limit < 1 or offset < 0:
            raise ParameterError(None, f"limit {limit}, offset {offset}", variable="limit")
        matched = [
            item
            for name, items in self.items.items()
            if not collections or name in collections
            for item in items
            if (not ids or item["id"] in ids) and item_matches(item, bbox, interval)
        ]
        page = matched[offset : offset + limit]
        links: list[dict] = [{"rel": "root", "href": self.url, "type": "application/json"}]
        if offset + limit < len(matched):
            following = {**params, "offset": offset + limit, "limit": limit}
            if method == "POST":
                links.append(
                    {"rel": "next", "href": f"{self.url}/search", "method": "POST", "body": following, "merge": False}
                )
            else:
                from urllib.parse import urlencode

                query = {k: (",".join(map(str, v)) if isinstance(v, list) else v) for k, v in following.items()}
                links.append({"rel": "next", "href": f"{self.url}/search?{urlencode(query)}", "method": "GET"})
        return {
            "type": "FeatureCollection",
            "features": page,
            "links": links,
            "numberMatched": len(matched),
            "numberReturned": len(page),
        }

    def answer(self, path: str, query: str, body: bytes | None, method: str) -> tuple[int, dict]:
        """(status, JSON) of an API path (after ``/api``)."""
        parts = [p for p in path.split("/") if p]
        if not parts:
            return 200, self.landing()
        if parts == ["conformance"]:
            return 200, {"conformsTo": CONFORMS_TO}
        if parts == ["collections"]:
            return 200, {"collections": list(self.collections.values()), "links": []}
        if parts[0] == "collections" and len(parts) >= 2:
            name = parts[1]
            if name not in self.collections:
                return 404, {"code": "NotFound", "description": f"no collection {name!r}"}
            if len(parts) == 2:
                return 200, self.collections[name]
            if parts[2:3] == ["items"] and len(parts) == 3:
                return 200, {"type": "FeatureCollection", "features": self.items[name], "links": []}
            if parts[2:3] == ["items"] and len(parts) == 4:
                item = next((i for i in self.items[name] if i["id"] == parts[3]), None)
                if item is not None:
                    return 200, item
                return 404, {"code": "NotFound", "description": f"no item {parts[3]!r} in {name!r}"}
        if parts == ["search"]:
            try:
                if method == "POST":
                    params = json.loads(body or b"{}")
                else:
                    params = {k: v[-1] for k, v in parse_qs(query).items()}
                return 200, self.search(params, method)
            except (ParameterError, ValueError, TypeError, KeyError) as exc:
                return 400, {"code": "BadRequest", "description": " ".join(str(exc).split())}
        return 404, {"code": "NotFound", "description": f"no such endpoint {path!r}"}


class _Server(ThreadingHTTPServer):
    """The HTTP server with what its handlers need: the served ``root``, the ``api`` (or None) and the log."""

    daemon_threads = True

    def __init__(self, root: Path):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root, self.served = root, Served()
        self.api: _Api | None = None


class _Handler(BaseHTTPRequestHandler):
    """Files under ``server.root`` (byte ranges) and, with ``server.api``, the STAC API under ``/api``."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format, *args):  # quiet: kept in server.served
        pass

    def _send(self, status: int, data: bytes, method: str, content_type: str, headers: dict | None = None) -> None:
        """``data`` (or the requested byte range of it) with its headers."""
        start, end = 0, len(data) - 1
        ranged = RANGE.match(self.headers.get("Range", "") or "") if status == 200 else None
        if ranged:
            first, last = ranged.groups()
            if first:
                start, end = int(first), min(int(last), len(data) - 1) if last else len(data) - 1
            elif last:
                start = max(0, len(data) - int(last))
            if start >= len(data) or start > end:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                self.server.served.add(method, self.path, self.headers.get("Range"), 0, 416)
                return
            status = 206
        part = data[start : end + 1]
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(part)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(part)
        self.server.served.add(method, self.path, self.headers.get("Range"), len(part) * (method != "HEAD"), status)

    def _serve(self, method: str) -> None:
        split = urlsplit(self.path)
        api = self.server.api
        if api is not None and (split.path == "/api" or split.path.startswith("/api/")):
            body = None
            if method == "POST":
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, answer = api.answer(split.path[len("/api") :], split.query, body, method)
            kind = (
                "application/geo+json" if answer.get("type") in ("Feature", "FeatureCollection") else "application/json"
            )
            return self._send(status, json.dumps(answer).encode(), method, kind)
        if method == "POST":
            return self._send(405, b"405 Method Not Allowed\n", method, "text/plain")
        root: Path = self.server.root
        path = (root / split.path.lstrip("/")).resolve()
        if not (path.is_file() and root in path.parents):
            return self._send(404, b"404 Not Found\n", method, "text/plain")
        info = path.stat()
        kind = "application/json" if path.suffix == ".json" else "application/octet-stream"
        headers = {
            "ETag": f'"{info.st_size:x}-{info.st_mtime_ns:x}"',
            "Last-Modified": email.utils.formatdate(info.st_mtime, usegmt=True),
        }
        self._send(200, path.read_bytes(), method, kind, headers)

    def do_GET(self):
        self._serve("GET")

    def do_HEAD(self):
        self._serve("HEAD")

    def do_POST(self):
        self._serve("POST")


@dataclass
class LocalStacServer:
    """A running server: ``url`` of the file tree, ``api_url`` (None without a catalog) and what it ``served``."""

    url: str
    api_url: str | None
    root: Path
    served: Served
    _server: _Server = field(repr=False)

    def file_url(self, path) -> str:
        """The URL of a file under the served root."""
        return urljoin(self.url + "/", Path(path).resolve().relative_to(self.root).as_posix())

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LocalStacServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def serve(root, catalog=None, *, page: int = PAGE) -> LocalStacServer:
    """Serve the files under ``root`` on 127.0.0.1 at a free port, and with ``catalog`` (a static catalog under
    ``root``) the STAC API at ``/api`` (``page``: items per search page unless the client asks for a ``limit``);
    a started server (close it, or use it as a context manager)."""
    root = Path(root).resolve()
    server = _Server(root)
    port = server.server_address[1]
    url = f"http://127.0.0.1:{port}"
    server.api = _Api(Path(catalog), url, f"{url}/api", root, page) if catalog is not None else None
    threading.Thread(target=server.serve_forever, daemon=True, name="akkd-stac-server").start()
    return LocalStacServer(url, f"{url}/api" if catalog is not None else None, root, server.served, server)
