"""Real servers for the remote-input tests, on 127.0.0.1 at free ports: moto's S3 server (the S3 API users'
s3fs/botocore stack talks to) and a static HTTP server with byte-range support (Python's
SimpleHTTPRequestHandler has none) that counts what it serves and can be told to fail."""

from __future__ import annotations

import email.utils
import logging
import os
import re
import shutil
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

#: Credentials the S3 tests use (moto accepts any); the tests check they never reach a store.
S3_KEY, S3_SECRET = "AKIAAKKDTESTKEY00000", "akkd-test-secret-never-recorded"
BUCKET = "akkd-scenes"
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass
class Fault:
    """A failure the HTTP server answers every request of a path with (set mid-run: the object is gone)."""

    status: int


@dataclass
class HttpLog:
    """What the HTTP server was asked: (method, path, Range header or None, bytes sent, status) per request."""

    requests: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, *entry) -> None:
        with self.lock:
            self.requests.append(entry)

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()

    def for_path(self, suffix: str) -> list:
        with self.lock:
            return [r for r in self.requests if r[1].endswith(suffix)]


class RangeRequestHandler(BaseHTTPRequestHandler):
    """GET and HEAD of the files under the server's ``root``, with single byte ranges (206, Content-Range),
    ETag and Last-Modified; ``server.faults`` maps a URL path to a :class:`Fault`."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # quiet: the log is kept in server.log
        pass

    def _file(self) -> Path | None:
        path = (self.server.root / self.path.split("?", 1)[0].lstrip("/")).resolve()
        return path if path.is_file() and self.server.root in path.parents else None

    def _fail(self, status: int, method: str) -> None:
        body = f"{status} {self.responses.get(status, ('',))[0]}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if method == "GET":
            self.wfile.write(body)
        self.server.log.add(method, self.path, self.headers.get("Range"), 0, status)

    def _serve(self, method: str) -> None:
        fault = self.server.faults.get(self.path.split("?", 1)[0])
        if fault:
            return self._fail(fault.status, method)
        if not self._signed():
            return self._fail(403, method)
        ranged = RANGE.match(self.headers.get("Range", "") or "")
        path = self._file()
        if path is None:
            return self._fail(404, method)
        data_size = path.stat().st_size
        info = path.stat()
        start, end, status = 0, data_size - 1, 200
        if ranged:
            first, last = ranged.groups()
            if first:
                start, end = int(first), min(int(last), data_size - 1) if last else data_size - 1
            elif last:
                start, end = max(0, data_size - int(last)), data_size - 1
            if start >= data_size or start > end:
                self.server.log.add(method, self.path, self.headers.get("Range"), 0, 416)
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{data_size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        length = end - start + 1
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(length))
        self.send_header("ETag", f'"{info.st_size:x}-{info.st_mtime_ns:x}"')
        self.send_header("Last-Modified", email.utils.formatdate(info.st_mtime, usegmt=True))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{data_size}")
        self.end_headers()
        sent = 0
        if method == "GET":
            with open(path, "rb") as handle:
                handle.seek(start)
                self.wfile.write(handle.read(length))
                sent = length
        self.server.log.add(method, self.path, self.headers.get("Range"), sent, status)

    def _signed(self) -> bool:
        """Whether a request meets ``server.tokens`` (URL path prefix → required ``sig``; JSON is public, as
        the items of a catalogue with signed assets are)."""
        path, _, query = self.path.partition("?")
        for prefix, token in self.server.tokens.items():
            if path.startswith(prefix) and not path.endswith(".json"):
                return f"sig={token}" in query.split("&")
        return True

    def do_GET(self):
        self._serve("GET")

    def do_HEAD(self):
        self._serve("HEAD")


@dataclass
class HttpServer:
    """A running range-capable HTTP server: ``url`` of its ``root``, its request ``log``, ``faults`` and
    ``tokens`` (path prefix → the ``sig`` its assets need, like a catalogue's signed URLs)."""

    url: str
    root: Path
    log: HttpLog
    faults: dict
    tokens: dict

    def publish(self, path, under: str = "") -> str:
        """Copy a file (or a folder's files) under the served root; the URL of the copy (or folder)."""
        path = Path(path)
        target = self.root / under
        target.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            for item in path.iterdir():
                shutil.copy2(item, target / item.name)
            return "/".join([self.url] + ([under] if under else []))
        shutil.copy2(path, target / path.name)
        return "/".join([self.url] + [part for part in (under, path.name) if part])


def start_http_server(root: Path):
    """A ThreadingHTTPServer with :class:`RangeRequestHandler` on 127.0.0.1 at a free port (started)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), RangeRequestHandler)
    server.daemon_threads = True
    server.root, server.log, server.faults, server.tokens = root.resolve(), HttpLog(), {}, {}
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    return server, HttpServer(f"http://{host}:{port}", server.root, server.log, server.faults, server.tokens)


#: The token the test server's signed assets need (:func:`sign_asset` adds it).
ASSET_TOKEN = "test-token-6f1d"


def sign_asset(href: str) -> str:
    """A signing function as ``--sign-assets servers:sign_asset`` takes it (planetary_computer.sign's shape)."""
    return f"{href}{'&' if '?' in href else '?'}sig={ASSET_TOKEN}"


@dataclass
class S3Server:
    """A running moto S3 server: ``endpoint``, the ``storage_options`` that reach it, and a filesystem."""

    endpoint: str
    storage_options: dict
    fs: object

    def upload(self, path, key: str) -> str:
        """Put a local file at ``s3://BUCKET/key``; its URL."""
        self.fs.put_file(str(path), f"{BUCKET}/{key}")
        return f"s3://{BUCKET}/{key}"


AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": S3_KEY,
    "AWS_SECRET_ACCESS_KEY": S3_SECRET,
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on 127.0.0.1 (random free port) with one bucket; credentials in the environment."""
    import s3fs
    from moto.server import ThreadedMotoServer

    saved = {k: os.environ.get(k) for k in AWS_ENVIRONMENT}
    os.environ.update(AWS_ENVIRONMENT)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    fs = s3fs.S3FileSystem(endpoint_url=endpoint, key=S3_KEY, secret=S3_SECRET, skip_instance_cache=True)
    if not fs.exists(BUCKET):  # moto's state is per process: a server of another conftest may have made it
        fs.mkdir(BUCKET)
    yield S3Server(endpoint, {"endpoint_url": endpoint}, fs)
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def http_server(tmp_path_factory):
    """The range-capable HTTP server on 127.0.0.1 (random free port), serving a fresh folder."""
    server, handle = start_http_server(tmp_path_factory.mktemp("http_root"))
    yield handle
    server.shutdown()


@pytest.fixture
def stalled_endpoint():
    """``http://127.0.0.1:PORT`` of a socket that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(2)
    for conn in accepted:
        conn.close()
    listener.close()


@pytest.fixture
def closed_endpoint():
    """``http://127.0.0.1:PORT`` of a port nothing listens on (connection refused)."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    time.sleep(0.05)
    return f"http://127.0.0.1:{port}"


@dataclass(frozen=True)
class L1tPair:
    """One synthetic AST_L1T scene twice: the HDF file and its COG + STAC copy (``item``), both local, and the
    item's URL on the HTTP server."""

    hdf: Path
    item: Path
    item_url: str


#: Size of the L1T test scene: odd, more than one COG tile of TIL pixels in each direction.
L1T_SHAPE, TILE = (72, 83), 32


def write_l1t_pair(root: Path, name: str, seed: int, **writer) -> tuple[Path, Path]:
    """An L1T HDF file with structured BT and day-time VNIR (NDVI), and its COG + STAC copy in ``root/name``."""
    import numpy as np

    from akkd_scale.simulate.l1b_writer import vnir_dn_for_ndvi, write_aster_l1t
    from akkd_scale.simulate.stac_writer import write_aster_l1t_stac

    rng = np.random.default_rng(seed)
    ny, nx = L1T_SHAPE
    yy, xx = np.meshgrid(np.linspace(0, 1, ny), np.linspace(0, 1, nx), indexing="ij")
    base = 295.0 + 15.0 * np.sin(2 * np.pi * (xx + seed / 5)) * np.cos(np.pi * yy) + rng.normal(0, 1.0, (ny, nx))
    bt = base[None] + np.array([-4.0, -3.2, -2.5, 0.0, -0.6])[:, None, None]
    ndvi = np.clip(0.6 * np.sin(3 * xx + seed) * yy, -0.3, 0.8)
    when, sun = "2004-07-15T18:30:05.250Z", (135.0, 62.0)
    hdf = write_aster_l1t(
        root / f"{name}.hdf",
        shape=L1T_SHAPE,
        brightness_temperature=bt,
        acquisition_time=when,
        solar_direction=sun,
        pointing_angle=2.5 + seed,
        vnir_dn=vnir_dn_for_ndvi(ndvi, acquisition_time=when, solar_direction=sun),
    )
    item = write_aster_l1t_stac(hdf, root / name, blocksize=TILE, **writer)
    return hdf, item


@pytest.fixture(scope="session")
def l1t_pair(tmp_path_factory, http_server) -> L1tPair:
    """The L1T scene as HDF and as COG + STAC, the STAC folder published on the HTTP server."""
    root = tmp_path_factory.mktemp("l1t")
    hdf, item = write_l1t_pair(root, "AST_L1T_00307152004183005_20260101000000_1", seed=1)
    folder = http_server.publish(item.parent, under="pair")
    return L1tPair(hdf, item, f"{folder}/{item.name}")
