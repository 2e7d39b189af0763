"""Scene inputs by URL (``s3://``, ``gs://``, ``https://`` and glob patterns over them) through fsspec.

HDF4 can only be read from a local file, so an HDF input given by URL is *staged*: streamed once into a
local cache (:func:`stage`), hashed while it streams (sha256, the digest the run records; MD5 too, compared
with a single-part S3 ETag, a warning when they differ: encrypted objects' ETags are no MD5), its byte count
checked against the object's size, and renamed into place only when complete. The object is never
modified. A staged copy is removed after use unless kept (:func:`release`); a kept copy is reused by a later
run only while the object's identity (size, ETag / Last-Modified / version) is unchanged and the copy still
hashes to what was recorded. The process that builds a scene's graph stages it; a Dask worker on
another host (no shared file system) stages its own copy on its first read (:class:`StagedSource`,
:func:`local_copy`), checked against the run's sha256, and removes it when the scene ends
(:func:`discard_copy`).

Access settings (:class:`Remote`): credentials come from the usual environment (AWS_* variables, shared
credential files, instance roles; for https nothing or a signed URL) and ``storage_options`` (fsspec's,
per protocol), which live only in memory — never in records, provenance or logs; URLs are recorded
without their user-info and query string (:func:`redact`: signed URLs carry tokens there). Every network
call has a bounded wait: connect/read timeouts and a bounded number of retries unless the storage options
set their own. Errors name the URL (redacted), the problem in a few words and what was expected.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from ..errors import InputError, OutputError, ParameterError, SceneFileError

log = logging.getLogger(__name__)

#: Seconds a connection or a read may stall before the call fails (per request, not per file).
TIMEOUT_S = 30.0
#: Attempts per S3 request (botocore "standard" retry mode) before the call fails.
S3_ATTEMPTS = 3
#: Passes of s3fs's own retry loop around each (botocore-retried) S3 call.
S3FS_PASSES = 1
#: Bytes per read when streaming an object into the staging cache.
STAGE_BLOCK = 16 << 20
#: Largest small document (STAC item, XML metadata) read whole into memory.
MAX_DOCUMENT_BYTES = 16 << 20
SIDECAR = ".staged.json"
#: Top-level keys that make storage options per protocol ({"s3": {...}, "https": {...}}).
PROTOCOL_KEYS = ("s3", "gs", "gcs", "http", "https")
GLOB_CHARS = re.compile(r"[*?\[]")


def is_url(location) -> bool:
    """Whether ``location`` names an object by URL (``scheme://…``) rather than a local path."""
    return "://" in str(location)


def has_glob(location) -> bool:
    """Whether ``location`` is a glob pattern (``*``, ``?``, ``[…]``); of an http(s) URL only the path counts
    (``?`` starts its query: a signed URL is no pattern)."""
    text = str(location)
    if text.lower().startswith(("http://", "https://")):
        text = urlsplit(text).path
    return bool(GLOB_CHARS.search(text))


def redact(location) -> str:
    """``location`` as it may be recorded or logged: URLs without user-info and query string (signed URLs
    carry their token there); local paths unchanged."""
    text = str(location)
    if not is_url(text):
        return text
    parts = urlsplit(text)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass
class Remote:
    """How a run reaches URL inputs: fsspec ``storage_options`` (credentials, endpoint; never recorded),
    the local ``staging_dir``, whether staged copies are kept, and the per-request ``timeout`` (s).
    Holds one filesystem per protocol for the run."""

    storage_options: dict = field(default_factory=dict, repr=False)
    staging_dir: Path | None = None
    keep_staged: bool = False
    timeout: float = TIMEOUT_S
    sign: Callable[[str], str] | None = field(default=None, repr=False, compare=False)
    _filesystems: dict = field(default_factory=dict, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def of(
        cls,
        storage_options=None,
        staging_dir=None,
        keep_staged: bool = False,
        timeout: float = TIMEOUT_S,
        sign_assets=None,
    ) -> Remote:
        """Settings checked: ``storage_options`` a dict (or a JSON object as text), ``staging_dir`` a path
        (default :func:`akkd_scale.config.staging_dir`), ``sign_assets`` a function or ``"module:function"``
        (:func:`asset_signer`)."""
        from ..config import staging_dir as default_staging_dir

        options = parse_storage_options(storage_options)
        where = Path(staging_dir).expanduser() if staging_dir is not None else default_staging_dir()
        return cls(options, where.resolve(), bool(keep_staged), float(timeout), asset_signer(sign_assets))

    def signed(self, href: str) -> str:
        """A STAC asset's URL as the catalogue wants it read: signed by :attr:`sign` when given (local
        paths as they are). Errors name the asset (redacted) and the signing function."""
        if self.sign is None or not is_url(href):
            return href
        name = getattr(self.sign, "__qualname__", repr(self.sign))
        try:
            signed = self.sign(href)
        except Exception as exc:  # noqa: BLE001  (a user's signing function: whatever it raises is reported)
            raise SceneFileError(
                redact(href),
                f"signing the asset URL failed ({name}: {_one_line(exc)})",
                expected="an asset the signing function can sign (its service reachable, the token valid)",
            ) from None
        if not isinstance(signed, str) or not is_url(signed):
            raise SceneFileError(
                redact(href),
                f"the signing function {name} returned {type(signed).__name__} {redact(str(signed))!r}",
                expected="the asset's URL, signed (a str)",
            )
        return signed

    def filesystem(self, url: str):
        """(fsspec filesystem, path within it) for ``url``, with bounded timeouts unless the options set them."""
        import fsspec

        protocol = urlsplit(url).scheme.lower()
        with self._lock:
            fs = self._filesystems.get(protocol)
            if fs is None:
                try:
                    cls = fsspec.get_filesystem_class(protocol)
                except (ImportError, ValueError) as exc:
                    raise InputError(
                        redact(url),
                        f"cannot open {protocol}:// URLs ({_one_line(exc)})",
                        expected="s3://, gs:// (with the gcsfs package) or https:// URLs",
                    ) from None
                fs = cls(**self._options_for(protocol), skip_instance_cache=True)
                if protocol == "s3":  # s3fs would retry botocore's (already retried) calls 5 times
                    fs.retries = S3FS_PASSES
                self._filesystems[protocol] = fs
        return fs, fs._strip_protocol(url) if protocol not in ("http", "https") else url

    def options_for(self, protocol: str) -> dict:
        """The fsspec options of ``protocol`` with bounded timeouts and retries (see :meth:`_options_for`): also
        what the result store's filesystem is made with (``pipeline.store``)."""
        return self._options_for(protocol)

    def _options_for(self, protocol: str) -> dict:
        """The storage options of ``protocol``, with connect/read timeouts and bounded retries added (s3, http)
        where they set none: the entry ``{protocol: {...}}`` when the options are nested by protocol, else the flat
        options for object stores (``s3``, ``gs``) and none for ``http(s)`` (whose request options, such as
        ``headers``, go under an ``"https"`` entry)."""
        given = self.storage_options
        nested = {k: v for k, v in given.items() if k in PROTOCOL_KEYS}
        if nested:
            options = dict(nested.get(protocol) or nested.get({"https": "http", "http": "https"}.get(protocol)) or {})
        else:
            options = dict(given) if protocol not in ("http", "https") else {}
        if protocol == "s3":
            config = dict(options.get("config_kwargs", {}))
            config.setdefault("connect_timeout", self.timeout)
            config.setdefault("read_timeout", self.timeout)
            config.setdefault("retries", {"max_attempts": S3_ATTEMPTS, "mode": "standard"})
            options["config_kwargs"] = config
        elif protocol in ("http", "https"):
            import aiohttp

            client = dict(options.get("client_kwargs", {}))
            client.setdefault(
                "timeout",
                aiohttp.ClientTimeout(
                    total=None, connect=self.timeout, sock_connect=self.timeout, sock_read=self.timeout
                ),
            )
            options["client_kwargs"] = client
        return options  # gs:// (gcsfs): its own timeouts and retries


#: What ``--sign-assets`` expects.
EXPECTED_SIGNER = (
    "MODULE:FUNCTION, a function taking a STAC asset URL and returning it signed "
    "(e.g. planetary_computer:sign for Microsoft Planetary Computer)"
)


def asset_signer(value) -> Callable[[str], str] | None:
    """The asset-signing function of ``sign_assets``: None, a callable, or ``"module:function"`` imported
    here (ParameterError naming ``--sign-assets`` when it cannot be)."""
    if value is None or callable(value):
        return value
    import importlib

    module_name, _, attribute = str(value).partition(":")
    if not module_name or not attribute:
        raise ParameterError(
            None, f"{value!r} is not MODULE:FUNCTION", variable="--sign-assets", expected=EXPECTED_SIGNER
        )
    try:
        function = importlib.import_module(module_name)
        for part in attribute.split("."):
            function = getattr(function, part)
    except ImportError as exc:
        raise ParameterError(
            None,
            f"cannot import {module_name!r} ({_one_line(exc)}; install the package that provides it)",
            variable="--sign-assets",
            expected=EXPECTED_SIGNER,
        ) from None
    except AttributeError:
        raise ParameterError(
            None, f"module {module_name!r} has no {attribute!r}", variable="--sign-assets", expected=EXPECTED_SIGNER
        ) from None
    if not callable(function):
        raise ParameterError(None, f"{value!r} is not callable", variable="--sign-assets", expected=EXPECTED_SIGNER)
    return function


def redact_command_line(command_line: str) -> str:
    """A command line as it may be recorded (provenance, the store's lock): ``--storage-options`` values (they
    may hold credentials) replaced by ``<redacted>``, URLs without user-info and query string."""
    import shlex

    try:
        argv = shlex.split(command_line)
    except ValueError:  # unbalanced quotes: nothing safe can be kept of it
        return "<command line not recorded: it could not be parsed>"
    out, hide = [], False
    for arg in argv:
        if hide and not arg.startswith("-"):  # every word up to the next option (an unquoted JSON value too)
            if out[-1] != "<redacted>":
                out.append("<redacted>")
            continue
        hide = False
        if arg == "--storage-options":
            out.append(arg)
            hide = True
        elif arg.startswith("--storage-options="):
            out.append("--storage-options=<redacted>")
        else:
            out.append(redact(arg) if is_url(arg) else arg)
    return shlex.join(out)


def parse_storage_options(value) -> dict:
    """Storage options as a dict: None → {}, a dict as is, text as a JSON object."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return dict(value)
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError) as exc:
        raise InputError(
            None,
            f"storage options are not JSON ({exc.__class__.__name__}: {exc})",
            variable="storage_options",
            expected='a JSON object, e.g. {"anon": true}',
        ) from None
    if not isinstance(parsed, dict):
        raise InputError(
            None,
            f"storage options are a JSON {type(parsed).__name__}",
            variable="storage_options",
            expected='a JSON object, e.g. {"endpoint_url": "http://127.0.0.1:9000"}',
        )
    return parsed


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _chain(exc: BaseException):
    """``exc`` and the exceptions it was raised from or during."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def describe_failure(exc: BaseException, timeout: float = TIMEOUT_S) -> str:
    """A few words for what went wrong reaching an object (credentials, endpoint, status, missing key)."""
    names = [type(e).__name__ for e in _chain(exc)]
    status = next(
        (getattr(e, "status", None) for e in _chain(exc) if isinstance(getattr(e, "status", None), int)), None
    )
    text = " ".join(_one_line(e) for e in _chain(exc))
    if "NoCredentialsError" in names or "PartialCredentialsError" in names:
        return (
            "no credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or give key/"
            "secret or anon in --storage-options)"
        )
    if any(
        n in names
        for n in (
            "ConnectTimeoutError",
            "ReadTimeoutError",
            "TimeoutError",
            "ServerTimeoutError",
            "ConnectionTimeoutError",
            "SocketTimeoutError",
        )
    ):
        return f"no answer within {timeout:g} s (endpoint unreachable or stalled)"
    if any(
        n in names
        for n in (
            "EndpointConnectionError",
            "ClientConnectorError",
            "ConnectionRefusedError",
            "ClientOSError",
            "ServerDisconnectedError",
        )
    ):
        return "endpoint unreachable (connection refused or host unknown)"
    if "NoSuchBucket" in text or "bucket does not exist" in text:
        return "no such bucket"
    if status == 404 or "NoSuchKey" in text:
        return "HTTP 404: no such object"
    if status in (401, 403) or isinstance(exc, PermissionError) or "AccessDenied" in text or "Forbidden" in text:
        return f"HTTP {status or 403}: access denied (credentials or signed URL missing, expired or not allowed)"
    if status is not None:
        return f"HTTP {status}"
    if isinstance(exc, FileNotFoundError):
        return "no such object"
    return _one_line(exc)


def remote_error(url: str, exc: BaseException, expected: str, timeout: float = TIMEOUT_S) -> SceneFileError:
    """The one-line error for a failed access to ``url``."""
    return SceneFileError(redact(url), describe_failure(exc, timeout), expected=expected)


def expand(inputs, remote: Remote) -> list[str]:
    """Inputs with URL glob patterns replaced by the objects they match (sorted); local paths and plain
    URLs unchanged. A pattern whose listing fails or matches nothing stays as given: opening it then
    reports why (:func:`stage`, :func:`read_document`)."""
    out = []
    for item in inputs:
        text = str(item)
        if not (is_url(text) and has_glob(text)):
            out.append(text)
            continue
        try:
            fs, path = remote.filesystem(text)
            matches = sorted(fs.glob(path))
        except Exception as exc:  # reported per input when it is opened
            log.debug("listing %s failed: %s", redact(text), exc)
            matches = []
        if not matches:
            out.append(text)
            continue
        out += [fs.unstrip_protocol(m) if not str(m).startswith(("http://", "https://")) else str(m) for m in matches]
    return out


def _no_match(url: str, remote: Remote, expected: str) -> SceneFileError:
    """Why a glob pattern gave nothing: the listing's own error, else no match."""
    try:
        fs, path = remote.filesystem(url)
        fs.glob(path)
    except InputError:
        raise
    except Exception as exc:
        return remote_error(url, exc, expected, remote.timeout)
    return SceneFileError(redact(url), "the pattern matches no object", expected=expected)


@dataclass(frozen=True)
class Identity:
    """What tells one version of an object from another: size and ETag / Last-Modified / version id."""

    size: int
    tag: str

    @classmethod
    def of(cls, info: dict) -> Identity:
        keys = ("ETag", "VersionId", "LastModified", "Last-Modified", "mtime", "generation", "md5Hash")
        tag = ";".join(f"{k}={info[k]}" for k in keys if info.get(k) not in (None, ""))
        return cls(int(info.get("size") or 0), tag)


def identity(url: str, remote: Remote, expected: str) -> Identity:
    """The current :class:`Identity` of the object at ``url`` (one HEAD request)."""
    if has_glob(url):
        raise _no_match(url, remote, expected)
    fs, path = remote.filesystem(url)
    try:
        info = fs.info(path)
    except InputError:
        raise
    except Exception as exc:
        raise remote_error(url, exc, expected, remote.timeout) from None
    if info.get("type") == "directory":
        raise SceneFileError(redact(url), "is a prefix (directory), not an object", expected=expected)
    return Identity.of(info)


@dataclass(frozen=True)
class Staged:
    """A local copy of the object ``url``: ``path``, ``size``, ``sha256`` and the object's ``identity`` when
    it was taken; ``removable``: whether :func:`release` may remove it — this run made it, or a run that did
    not keep it left it behind (killed before it released it); a copy kept on purpose is reused and left."""

    url: str
    path: Path
    size: int
    sha256: str
    identity: Identity
    removable: bool


def staged_path(url: str, remote: Remote) -> Path:
    """Where ``url`` is staged: ``<staging dir>/<hash of the redacted URL>/<object name>`` (the name is kept,
    so the scene's group name is the object's stem)."""
    key = hashlib.sha256(redact(url).encode()).hexdigest()[:20]
    name = Path(urlsplit(url).path).name or "object"
    return remote.staging_dir / key / name


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR)


def _reuse(url: str, target: Path, current: Identity) -> Staged | None:
    """A kept copy of ``url`` at ``target`` when the object is unchanged and the copy hashes as recorded."""
    from ..utils import sha256_file

    try:
        record = json.loads(_sidecar(target).read_text())
    except (OSError, ValueError):
        return None
    if (
        record.get("identity") != [current.size, current.tag]
        or not target.is_file()
        or target.stat().st_size != current.size
    ):
        return None
    digest = sha256_file(target)
    if digest != record.get("sha256"):
        log.warning("kept copy %s of %s no longer matches its sha256: staging again", target, redact(url))
        return None
    # a copy a run meant to keep stays; one left behind by a killed run that did not mean to is removed after use
    return Staged(url, target, current.size, digest, current, removable=not record.get("kept", True))


def stage(url: str, remote: Remote, expected: str = "an ASTER L1B/L1T HDF object") -> Staged:
    """Copy the object at ``url`` into the staging cache (or reuse a kept, verified copy) and return it.

    The object streams into a temporary file, hashed as it goes; the copy is renamed into place only when
    its byte count equals the object's size. Raises SceneFileError
    naming the URL on any failure; nothing partial is left behind."""
    current = identity(url, remote, expected)
    target = staged_path(url, remote)
    kept = _reuse(url, target, current)
    if kept is not None:
        log.info("reusing kept copy %s of %s", target, redact(url))
        return kept
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part")
    fs, path = remote.filesystem(url)
    sha, md5, count = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    try:
        with fs.open(path, "rb", block_size=STAGE_BLOCK, cache_type="none") as source, open(part, "wb") as sink:
            for block in iter(lambda: source.read(STAGE_BLOCK), b""):
                sha.update(block)
                md5.update(block)
                sink.write(block)
                count += len(block)
        if count != current.size or part.stat().st_size != current.size:
            raise SceneFileError(
                redact(url),
                f"transfer incomplete: {count} of {current.size} bytes arrived",
                expected=f"{expected} of {current.size} bytes",
            )
        etag = re.search(r"ETag=\"?([0-9a-f]{32})\"?(;|$)", current.tag)
        if url.startswith("s3://") and etag and etag.group(1) != md5.hexdigest():
            log.warning(
                "%s: MD5 %s of the transfer differs from the ETag %s: the transfer may be corrupt, or the "
                "object is encrypted with SSE-KMS/SSE-C (whose ETags are no MD5)",
                redact(url),
                md5.hexdigest(),
                etag.group(1),
            )
        os.replace(part, target)
    except SceneFileError:
        part.unlink(missing_ok=True)
        raise
    except InputError:
        part.unlink(missing_ok=True)
        raise
    except Exception as exc:
        part.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename and str(remote.staging_dir) in str(exc.filename):
            raise  # a local problem of the staging directory (full disk, permissions): not the object's
        raise remote_error(url, exc, expected, remote.timeout) from None
    staged = Staged(url, target, count, sha.hexdigest(), current, removable=True)
    _sidecar(target).write_text(
        json.dumps(
            {
                "url": redact(url),
                "size": count,
                "sha256": staged.sha256,
                "identity": [current.size, current.tag],
                "kept": remote.keep_staged,
            }
        )
    )
    log.debug("staged %s → %s (%d bytes)", redact(url), target, count)
    return staged


def release(staged: Staged, keep: bool) -> None:
    """Remove a copy this run staged (and its record) unless ``keep``; kept copies reused from an earlier
    run are left as they are."""
    if keep or not staged.removable:
        return
    for path in (staged.path, _sidecar(staged.path)):
        path.unlink(missing_ok=True)
    try:
        staged.path.parent.rmdir()
    except OSError:
        pass  # not empty (another copy) or already gone


def host_name() -> str:
    """This machine's name: a staged copy is read by path only on the host that staged it."""
    return socket.gethostname()


@dataclass(frozen=True)
class StagedSource:
    """What a task needs to read a staged HDF object wherever it runs: the client's copy (``path``) on the
    client's ``host``; on any other host a copy of ``url`` staged there (:func:`local_copy`) that must hash
    to ``sha256``. ``options``: the storage options as JSON text; like fsspec's, they travel in the task graph
    and are never written to a store."""

    url: str
    sha256: str
    size: int
    path: str
    host: str
    options: str = field(repr=False)
    timeout: float = TIMEOUT_S
    keep: bool = False

    @classmethod
    def of(cls, staged: Staged, remote: Remote) -> StagedSource:
        options = json.dumps(remote.storage_options, sort_keys=True, default=str)
        return cls(
            staged.url,
            staged.sha256,
            staged.size,
            str(staged.path),
            host_name(),
            options,
            remote.timeout,
            remote.keep_staged,
        )

    def __str__(self) -> str:
        return redact(self.url)


#: Copies this process staged for tasks on a host other than the client's: (url, sha256) → Staged.
_COPIES: dict[tuple[str, str], Staged] = {}
_COPY_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_COPIES_LOCK = threading.Lock()


def local_copy(source) -> str:
    """A local path to read ``source`` from: a path as given; for a :class:`StagedSource` the client's copy
    on the client's host, elsewhere this host's own copy, staged on the first read (into the worker's
    :func:`akkd_scale.config.staging_dir`) and checked against the run's sha256 (SceneFileError naming the
    URL when the object changed since the run staged it)."""
    if not isinstance(source, StagedSource):
        return str(source)
    if source.host == host_name():
        return source.path
    key = (source.url, source.sha256)
    with _COPIES_LOCK:
        lock = _COPY_LOCKS.setdefault(key, threading.Lock())
    with lock:  # one transfer per process, however many of its threads read the scene
        known = _COPIES.get(key)
        if known is not None and known.path.is_file():
            return str(known.path)
        staged = stage(source.url, Remote.of(source.options, None, source.keep, source.timeout))
        if staged.sha256 != source.sha256:
            release(staged, keep=False)
            raise SceneFileError(
                redact(source.url),
                f"changed since the run staged it: sha256 {staged.sha256[:16]}… on worker host {host_name()}, "
                f"{source.sha256[:16]}… when the run started",
                expected="the object unchanged while its scene runs (rerun to retrieve the new version)",
            )
        _COPIES[key] = staged
        log.info("staged %s on worker host %s: %s", redact(source.url), host_name(), staged.path)
        return str(staged.path)


def discard_copy(source: StagedSource) -> bool:
    """Remove this process's own copy of ``source`` (made by :func:`local_copy`) unless it is to be kept;
    run on every worker when the scene ends. Returns whether this process had one."""
    with _COPIES_LOCK:
        staged = _COPIES.pop((source.url, source.sha256), None)
        _COPY_LOCKS.pop((source.url, source.sha256), None)
    if staged is None:
        return False
    release(staged, source.keep)
    return True


def read_document(location, remote: Remote, expected: str) -> bytes:
    """The bytes of a small document (a STAC item, XML metadata): a local file or an object by URL."""
    text = str(location)
    if not is_url(text):
        path = Path(text).expanduser()
        if not path.is_file():
            raise SceneFileError(str(path.resolve()), "file does not exist", expected=expected)
        return path.read_bytes()
    if has_glob(text):
        raise _no_match(text, remote, expected)
    fs, path = remote.filesystem(text)
    try:
        with fs.open(path, "rb") as handle:
            data = handle.read(MAX_DOCUMENT_BYTES + 1)
    except InputError:
        raise
    except Exception as exc:
        raise remote_error(text, exc, expected, remote.timeout) from None
    if len(data) > MAX_DOCUMENT_BYTES:
        raise SceneFileError(redact(text), f"larger than {MAX_DOCUMENT_BYTES >> 20} MiB", expected=expected)
    return data


def gdal_options(url: str, remote: Remote) -> dict:
    """GDAL configuration for range reads of ``url`` with rasterio: bounded timeouts and retries, no
    directory listing on open; for ``s3://`` the endpoint, addressing and credentials of the storage options
    (the environment's otherwise)."""
    options = {
        "GDAL_HTTP_TIMEOUT": int(max(1, round(remote.timeout))),
        "GDAL_HTTP_CONNECTTIMEOUT": int(max(1, round(remote.timeout))),
        "GDAL_HTTP_MAX_RETRY": 2,
        "GDAL_HTTP_RETRY_DELAY": 0.5,
        "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
        "CPL_VSIL_CURL_USE_HEAD": "YES",
    }
    if urlsplit(url).scheme.lower() == "s3":
        given = remote._options_for("s3")
        endpoint = given.get("endpoint_url") or given.get("client_kwargs", {}).get("endpoint_url")
        if endpoint:
            parts = urlsplit(endpoint)
            options.update(
                AWS_S3_ENDPOINT=parts.netloc,
                AWS_HTTPS="YES" if parts.scheme == "https" else "NO",
                AWS_VIRTUAL_HOSTING="FALSE",
            )
        if given.get("anon"):
            options["AWS_NO_SIGN_REQUEST"] = "YES"
        for key, name in (
            ("key", "AWS_ACCESS_KEY_ID"),
            ("secret", "AWS_SECRET_ACCESS_KEY"),
            ("token", "AWS_SESSION_TOKEN"),
        ):
            if given.get(key):
                options[name] = given[key]
    return options


def publish(files, url: str, remote: Remote) -> list[str]:
    """Upload local ``files`` under the prefix ``url`` (``url/<file name>``, one PUT each: an object appears
    whole or not at all); their URLs. On a failure the objects this call uploaded are removed again and
    OutputError names the URL."""
    fs, root = remote.filesystem(url)
    root = root.rstrip("/")
    done: list[str] = []
    try:
        for path in files:
            target = f"{root}/{Path(path).name}"
            fs.put_file(str(path), target)
            done.append(target)
    except InputError:
        raise
    except Exception as exc:
        for target in done:
            try:
                fs.rm_file(target)
            except Exception:  # noqa: BLE001  (best effort: the error below is what matters)
                log.debug("could not remove %s after a failed upload", target)
        problem = describe_failure(exc, remote.timeout)
        raise OutputError(f"{redact(url)}: cannot upload the outputs: {problem}") from None
    return [f"{redact(url).rstrip('/')}/{Path(path).name}" for path in files]
