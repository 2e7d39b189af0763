"""Zarr output: one store, one group per scene, written by one run at a time, marked complete last.

Layout::

    results.zarr/                      zarr v3 store (consolidated=False), root attribute akkd_scale_store
      .akkd-lock.json                  present while a run writes (owner pid, host, start time, command)
      <scene stem>/                    one group per input file, named from the file stem
        lst(y, x), emissivity(band, y, x), lst_uncertainty(y, x), qc(y, x),
        lst_<head>, emissivity_<head>, lst_uncertainty_<head>  (every head, when several are asked for)
        latitude/longitude(y, x), time, band, wavelength
        attrs: CF + provenance + akkd_status (+ akkd_record once complete)

Contract (docs/pipeline.md): the tool writes only into a new path, an empty directory or a store it
created, and deletes only scene groups it wrote; one run holds the store's lock; a group becomes
``complete`` only after every chunk of every variable is verified present, together with the record of
what produced it (input sha256 and size, bundle sha256, heads, chunks, atmosphere, package version).
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import logging
import os
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InputError, StoreError, describe_os_error
from ..io.remote import TIMEOUT_S, Remote, describe_failure, is_url, parse_storage_options, redact

log = logging.getLogger(__name__)

STATUS = "akkd_status"
COMPLETE = "complete"
INCOMPLETE = "incomplete"
MISSING = "missing"
RECORD = "akkd_record"
STORE_MARKER = "akkd_scale_store"
LOCK_FILE = ".akkd-lock.json"
#: Seconds an empty or unreadable lock file counts as held (its creator may still be writing the owner record:
#: only file systems without hard links create it empty); older, it is stale.
LOCK_GRACE_S = 30.0


@dataclass(eq=False)
class StoreLocation:
    """Where a result store is: a local path or an object-store URL (``s3://bucket/prefix.zarr``) with the fsspec
    ``storage_options`` (credentials, ``endpoint_url``; never recorded) and the per-request ``timeout`` (s) that
    reach it. ``str()`` is the location as it may be shown (a URL without user-info and query string). Holds one
    Zarr store and one filesystem for its URL, created on first use."""

    url: str
    storage_options: dict = field(default_factory=dict, repr=False)
    timeout: float = TIMEOUT_S
    _zarr: Any = field(default=None, repr=False)
    _fs: Any = field(default=None, repr=False)
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __str__(self) -> str:
        return redact(self.url)

    @property
    def remote(self) -> bool:
        """Whether the store is an object-store URL rather than a local path."""
        return is_url(self.url)

    def _options(self) -> dict:
        """fsspec options of the URL's protocol, with bounded timeouts and retries (:class:`~..io.remote.Remote`)
        and without listing caches, so a listing always shows the objects there now."""
        protocol = self.url.split("://", 1)[0].lower()
        options = Remote(self.storage_options, timeout=self.timeout).options_for(protocol)
        return {**options, "use_listings_cache": False}

    def zarr_store(self):
        """What Zarr and xarray open: the local path, or an fsspec-backed Zarr store of the URL."""
        if not self.remote:
            return self.url
        with self._guard:
            if self._zarr is None:
                from zarr.storage import FsspecStore

                self._zarr = FsspecStore.from_url(self.url, storage_options=self._options())
                _one_pass(self._zarr.fs)
        return self._zarr

    def filesystem(self) -> tuple[Any, str]:
        """(fsspec filesystem, path of the store's root within it) of a URL store."""
        with self._guard:
            if self._fs is None:
                import fsspec

                protocol = self.url.split("://", 1)[0].lower()
                try:
                    cls = fsspec.get_filesystem_class(protocol)
                except (ImportError, ValueError) as exc:
                    raise StoreError(f"{self}: cannot open {protocol}:// stores ({exc})") from None
                self._fs = cls(**self._options())  # fsspec's instance cache: one per options, closed at exit
                _one_pass(self._fs)
        return self._fs, self._fs._strip_protocol(self.url).rstrip("/")

    def child(self, name: str) -> str:
        """The URL (or path) of ``name`` inside the store, as shown."""
        return f"{self}/{name}"


def _one_pass(fs) -> None:
    """One pass of s3fs's own retry loop: botocore already retries each call (``io.remote.S3_ATTEMPTS``), and five
    passes of those would make the bounded wait of an unreachable endpoint five times as long."""
    if hasattr(fs, "retries"):
        fs.retries = 1


def locate_store(out, storage_options=None, timeout: float = TIMEOUT_S) -> StoreLocation:
    """The :class:`StoreLocation` of ``out`` (a local path, a URL, or a location already, returned as is).
    ``storage_options``: fsspec options (a dict or JSON text, flat or by protocol as for inputs) for a URL."""
    if isinstance(out, StoreLocation):
        return out
    text = str(out)
    if is_url(text):
        return StoreLocation(text.rstrip("/"), parse_storage_options(storage_options), float(timeout))
    return StoreLocation(text)


def _zarr(out):
    """What Zarr opens for ``out`` (path, URL or :class:`StoreLocation`)."""
    return locate_store(out).zarr_store()


def scene_group(path) -> str:
    """Group name of a scene: the file stem with characters Zarr paths dislike replaced by ``_``."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(path).stem).lstrip(".")
    if not name:
        raise InputError(path, "file name gives an empty group name", expected="a named scene file")
    return name


def group_status(out, group: str) -> str:
    """``complete``, ``incomplete`` (started, not finished) or ``missing`` for one scene group."""
    import zarr

    try:
        attrs = zarr.open_group(_zarr(out), path=group, mode="r").attrs
    except (
        FileNotFoundError,
        KeyError,
        ValueError,
        zarr.errors.GroupNotFoundError,
        zarr.errors.NodeTypeValidationError,
    ):
        return MISSING
    return COMPLETE if attrs.get(STATUS) == COMPLETE else INCOMPLETE


def scene_groups(store) -> list[str]:
    """Names of the scene groups of a result store, complete or not (InputError if it is no Zarr group)."""
    import zarr

    try:
        root = zarr.open_group(_zarr(store), mode="r")
    except (
        FileNotFoundError,
        ValueError,
        KeyError,
        zarr.errors.GroupNotFoundError,
        zarr.errors.NodeTypeValidationError,
    ) as exc:
        raise InputError(
            store,
            f"not a result store: no Zarr group there ({type(exc).__name__})",
            expected="a store written by `akkd-scale run` (one group per scene)",
        ) from exc
    return sorted(root.group_keys())


#: URL schemes a result store may have: the writer lock needs S3's conditional writes (``If-None-Match``/``If-Match``).
STORE_SCHEMES = ("s3",)


def prepare_store(out, storage_options=None, timeout: float = TIMEOUT_S) -> StoreLocation:
    """Create the result store at ``out`` or check that it is one; refuse anything else; its location.

    A new path or an empty directory (a URL prefix with no object under it) becomes a store (root group with
    the ``akkd_scale_store`` attribute). Anything else that exists — a file, a user's folder, another Zarr store,
    objects the tool did not write — is refused, so the tool never writes into (or deletes from) what it did not
    create. ``storage_options``/``timeout`` reach a store by URL (:func:`locate_store`).
    """
    import zarr

    location = locate_store(out, storage_options, timeout)
    if location.remote:
        _prepare_remote(location)
        return location
    root = _root_group(location)
    if root is not None and _written_by_us(root):
        return location
    path = Path(location.url)
    if path.exists() and not path.is_dir():
        raise StoreError(f"{path}: exists and is a file (expected a new path or a result store from akkd-scale)")
    try:
        if root is not None or (path.is_dir() and any(path.iterdir())):
            raise StoreError(
                f"{location}: exists and is not a result store written by akkd-scale; refusing to write "
                "into it (choose a new --out path)"
            )
        zarr.open_group(_zarr(location), mode="a", zarr_format=3).attrs[STORE_MARKER] = 1
    except OSError as exc:  # read-only file system, no permission, full disk
        raise StoreError(f"{location}: cannot create the result store: {describe_os_error(exc)}") from None
    return location


def _prepare_remote(location: StoreLocation) -> None:
    """:func:`prepare_store` of a URL: the bucket must exist and be reachable; a prefix with objects must be a
    store of ours (its root ``zarr.json`` with the marker), an empty one becomes a store."""
    import zarr

    scheme = location.url.split("://", 1)[0].lower()
    if scheme not in STORE_SCHEMES:
        raise StoreError(
            f"{location}: result stores by URL must be s3:// (AWS S3 or an S3-compatible store: the store's writer "
            "lock needs conditional writes); write to a local path and copy it"
        )
    fs, root = location.filesystem()
    bucket, _, key = root.partition("/")
    if not key:
        raise StoreError(f"{location}: a bucket alone is no store (expected s3://bucket/prefix.zarr)")
    try:
        listing = fs.call_s3("list_objects_v2", Bucket=bucket, Prefix=key + "/", MaxKeys=1)
    except Exception as exc:  # network, credentials, bucket: one line
        raise StoreError(
            f"{location}: cannot reach the result store: {describe_failure(exc, location.timeout)} (expected an "
            "existing bucket, reachable, with credentials that may list and write it)"
        ) from None
    if listing.get("KeyCount", len(listing.get("Contents", []))):
        root_group = _root_group(location)
        if root_group is not None and _written_by_us(root_group):
            return
        raise StoreError(
            f"{location}: holds objects and is not a result store written by akkd-scale; refusing to write into "
            "it (choose a new --out prefix)"
        )
    try:
        zarr.open_group(location.zarr_store(), mode="a", zarr_format=3).attrs[STORE_MARKER] = 1
    except Exception as exc:  # e.g. credentials that may list but not write
        raise StoreError(
            f"{location}: cannot create the result store: {describe_failure(exc, location.timeout)}"
        ) from None


def _root_group(out):
    """The Zarr group at ``out``, or None when there is none."""
    import zarr

    try:
        return zarr.open_group(_zarr(out), mode="r")
    except Exception:  # noqa: BLE001  (nothing readable as a Zarr group there)
        return None


def _written_by_us(root) -> bool:
    """A store with our marker, or (stores from before the marker) only scene groups with our status attribute."""
    if root.attrs.get(STORE_MARKER) == 1:
        return True
    groups = [g for _, g in root.groups()]
    return bool(groups) and not list(root.arrays()) and all(STATUS in g.attrs for g in groups)


class StoreLock:
    """Exclusive writer lock of a local result store: a lock file that appears atomically, complete.

    The file records pid, process start time, host, start time and command line. It is written under a
    temporary name and hard-linked into place (the link fails when a lock exists: O_EXCL semantics, also on
    NFS), so no run ever sees another's lock half written; on file systems without hard links it is created
    with O_EXCL and then written, and an empty or unreadable lock counts as held for ``LOCK_GRACE_S``. A lock
    left by a dead process on this host (pid gone, or reused by another process) is stale and taken over
    with a warning; a lock from another host is always respected (liveness cannot be checked from here).
    """

    def __init__(self, out, command_line: str = ""):
        self.path = Path(str(out)) / LOCK_FILE
        self.command_line = command_line
        self.owned = False

    def __enter__(self):
        import psutil

        if self.path.is_dir():
            raise StoreError(
                f"{self.path}: is a directory, not the store's lock file (expected a file {LOCK_FILE} "
                "or none: remove that directory)"
            )
        me = psutil.Process()
        owner = {
            "pid": me.pid,
            "process_started": me.create_time(),
            "host": socket.gethostname(),
            "started": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "command_line": self.command_line,
        }
        for _ in range(3):
            try:
                created = _create_lock(self.path, json.dumps(owner))
            except OSError as exc:  # read-only file system, no permission, full disk
                raise StoreError(
                    f"{self.path.parent}: cannot take the store lock {LOCK_FILE}: {describe_os_error(exc)}"
                ) from None
            if created:
                self.owned = True
                return self
            text, holder, age = self._holder()
            if text is None:
                continue  # released meanwhile
            if holder is not None and _is_me(holder, me):
                return self  # re-entered by the run that holds it (the CLI locks before its cluster starts)
            if holder is None and age < LOCK_GRACE_S:
                raise StoreError(
                    f"{self.path.parent}: locked by another run (its lock file is being written, "
                    f"{age:.0f} s old); wait for it, or delete {self.path} if no run is starting"
                )
            if holder is not None and not _stale(holder):
                raise StoreError(
                    f"{self.path.parent}: locked by another run (pid {holder.get('pid')} on "
                    f"{holder.get('host')}, started {holder.get('started')}: "
                    f"{holder.get('command_line') or 'unknown command'}); wait for it to finish, "
                    f"or delete {self.path} if that run is dead"
                ) from None
            if self._holder()[0] != text:
                continue  # replaced meanwhile (another run took the stale lock over first): look again
            log.warning(
                "%s: taking over a stale lock left by %s",
                self.path.parent,
                holder or f"an empty or unreadable lock file ({age:.0f} s old)",
            )
            self.path.unlink(missing_ok=True)
        raise StoreError(f"{self.path}: could not take the store lock (another run raced for it)")

    def _holder(self) -> tuple[str | None, dict | None, float]:
        """(text of the lock file or None when there is none, its owner record or None, age in seconds)."""
        try:
            age = time.time() - self.path.stat().st_mtime
            text = self.path.read_text()
        except FileNotFoundError:
            return None, None, 0.0
        except OSError:
            return "", None, age
        try:
            holder = json.loads(text)
        except ValueError:
            return text, None, age
        return text, holder if isinstance(holder, dict) else None, age

    def __exit__(self, *exc):
        if self.owned:
            self.path.unlink(missing_ok=True)
            self.owned = False


def _create_lock(path: Path, record: str) -> bool:
    """Put a lock file holding ``record`` at ``path`` unless one exists (False then): written under a temporary
    name and hard-linked into place, so it appears complete; without hard links, O_EXCL create and write."""
    temporary = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    temporary.write_text(record)
    try:
        os.link(temporary, path)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS):
            raise
    finally:
        temporary.unlink(missing_ok=True)
    try:  # a file system without hard links
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        handle.write(record)
    return True


#: Seconds between the heartbeats of an object-store lock (its owner rewrites it, so its age shows it is alive).
LOCK_HEARTBEAT_S = 30.0
#: Age (s) since the last heartbeat after which an object-store lock of another host counts as stale (taken over
#: with a warning); a lock of this host is stale as soon as its process is gone, as for a local store.
LOCK_STALE_S = 300.0
#: Runs that hold the lock of an object store, by store URL: ``mark_complete`` asks them whether they still do.
_HELD: dict[str, ObjectStoreLock] = {}


class ObjectStoreLock:
    """Exclusive writer lock of a result store on S3: the lock object ``<store>/.akkd-lock.json``, created with a
    conditional write (``PutObject`` with ``If-None-Match: *``: of two runs that race, exactly one creates it).

    The object holds the owner record (pid, process start time, host, start time, command line, a random token
    and the time of its last heartbeat). While the run holds it, a thread rewrites it every ``LOCK_HEARTBEAT_S``
    with ``If-Match`` on the ETag it wrote last, so the object's age (Last-Modified) is the time since the owner
    was last seen alive; a heartbeat that finds another ETag has lost the lock (another run took it over), and
    from then on no scene of this run is marked complete (:meth:`check`, called before every completion record).
    A lock is stale when its owner process on this host is gone, or when its last heartbeat is older than
    ``LOCK_STALE_S`` (another host, or a record that is not ours); a stale lock is taken over with a warning by a
    conditional overwrite (``If-Match`` on the stale ETag: of two runs taking it over, one wins). At the end
    the lock is deleted with ``If-Match`` on its own ETag, so a lock another run holds now is never removed.
    """

    def __init__(self, out, command_line: str = ""):
        self.location = locate_store(out)
        self.command_line = command_line
        self.owned = False
        self.lost: str | None = None
        self._etag: str | None = None
        self._record: dict = {}
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.location.child(LOCK_FILE)

    def _key(self) -> tuple[Any, str, str]:
        fs, root = self.location.filesystem()
        bucket, _, prefix = root.partition("/")
        return fs, bucket, f"{prefix}/{LOCK_FILE}"

    def _put(self, record: dict, **condition) -> str:
        """Write the lock object (under ``condition``: ``IfNoneMatch``/``IfMatch``); its new ETag."""
        fs, bucket, key = self._key()
        body = json.dumps(record).encode()
        answer = fs.call_s3(
            "put_object", Bucket=bucket, Key=key, Body=body, ContentType="application/json", **condition
        )
        return str(answer.get("ETag", ""))

    def _holder(self) -> tuple[str | None, dict | None, str, float]:
        """(text of the lock object or None when there is none, its owner record or None, ETag, age in s)."""
        fs, bucket, key = self._key()
        try:
            answer = fs.call_s3("get_object", Bucket=bucket, Key=key)
            text = _read_body(fs, answer).decode(errors="replace")
        except FileNotFoundError:
            return None, None, "", 0.0
        modified = answer.get("LastModified")
        age = (_dt.datetime.now(_dt.UTC) - modified).total_seconds() if modified is not None else 0.0
        try:
            holder = json.loads(text)
        except ValueError:
            holder = None
        return text, holder if isinstance(holder, dict) else None, str(answer.get("ETag", "")), age

    def __enter__(self):
        import psutil

        me = psutil.Process()
        self._record = {
            "pid": me.pid,
            "process_started": me.create_time(),
            "host": socket.gethostname(),
            "started": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "command_line": self.command_line,
            "token": secrets.token_hex(16),
            "heartbeat": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "heartbeat_s": LOCK_HEARTBEAT_S,
        }
        try:
            for _ in range(3):
                try:
                    etag = self._put(self._record, IfNoneMatch="*")
                except OSError as exc:
                    if not (isinstance(exc, FileExistsError) or _precondition_failed(exc)):
                        raise
                else:
                    return self._taken(etag)
                text, holder, etag, age = self._holder()
                if text is None:
                    continue  # released meanwhile
                if holder is not None and _is_me(holder, me):
                    return self  # re-entered by the run that holds it (the CLI locks before its cluster starts)
                if not self._is_stale(holder, age):
                    raise StoreError(
                        f"{self.location}: locked by another run ({_describe_holder(holder, age)}); "
                        f"wait for it to finish, or delete {self.url} if that run is dead"
                    )
                log.warning("%s: taking over a stale lock left by %s", self.location, _describe_holder(holder, age))
                try:
                    return self._taken(self._put(self._record, IfMatch=etag))
                except OSError as exc:
                    if not _precondition_failed(exc):
                        raise  # another run took it over first: look again
        except StoreError:
            raise
        except Exception as exc:  # network, credentials, permissions
            raise StoreError(
                f"{self.location}: cannot take the store lock {LOCK_FILE}: "
                f"{describe_failure(exc, self.location.timeout)}"
            ) from None
        raise StoreError(f"{self.url}: could not take the store lock (another run raced for it)")

    def _is_stale(self, holder: dict | None, age: float) -> bool:
        if holder is not None and holder.get("host") == socket.gethostname() and _stale(holder):
            return True  # its process on this host is gone
        return age > LOCK_STALE_S

    def _taken(self, etag: str) -> ObjectStoreLock:
        """Own the lock just written (ETag ``etag``) after reading it back: a store that ignored the condition
        and let another run's write land over ours is caught here, not later."""
        text, holder, current, _ = self._holder()
        if holder is None or holder.get("token") != self._record["token"]:
            raise StoreError(
                f"{self.location}: locked by another run ({_describe_holder(holder, 0.0)}): its lock replaced "
                "this run's as it was written (does the store honour S3 conditional writes?)"
            )
        self._etag, self.owned = current or etag, True
        _HELD[self.location.url] = self
        self._stop.clear()
        self._beat = threading.Thread(target=self._heartbeat, name="akkd-lock-heartbeat", daemon=True)
        self._beat.start()
        return self

    def _heartbeat(self) -> None:
        while not self._stop.wait(LOCK_HEARTBEAT_S):
            record = {**self._record, "heartbeat": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
            try:
                with self._guard:
                    self._etag = self._put(record, IfMatch=self._etag)
            except Exception as exc:  # noqa: BLE001  (a thread: kept as state, reported by check())
                if _precondition_failed(exc) or isinstance(exc, FileNotFoundError):
                    self.lost = "another run took the store's lock over (this run's heartbeat was late)"
                    log.error("%s: %s; no further scene is marked complete", self.location, self.lost)
                    return
                log.warning("%s: lock heartbeat failed (%s); retrying", self.location, describe_failure(exc))

    def check(self) -> None:
        """Raise StoreError unless this run still holds the lock (one HEAD request)."""
        if self.lost is None:
            fs, bucket, key = self._key()
            with self._guard:  # no heartbeat between the HEAD and the comparison
                try:
                    etag = str(fs.call_s3("head_object", Bucket=bucket, Key=key).get("ETag", ""))
                except FileNotFoundError:
                    etag = ""
                if etag != self._etag:
                    self.lost = "the store's lock is no longer this run's (removed or taken over by another run)"
        if self.lost is not None:
            raise StoreError(f"{self.location}: {self.lost}; not marked complete (rerun when the other run ended)")

    def __exit__(self, *exc):
        if not self.owned:
            return False
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        _HELD.pop(self.location.url, None)
        self.owned = False
        fs, bucket, key = self._key()
        try:
            try:
                fs.call_s3("delete_object", Bucket=bucket, Key=key, IfMatch=self._etag)
            except OSError as error:
                if _precondition_failed(error):
                    raise
                # a store without conditional DELETE: delete only while the lock still holds this run's token
                holder = self._holder()[1]
                if holder is None or holder.get("token") != self._record["token"]:
                    raise _NotOurs(self.url) from error
                fs.call_s3("delete_object", Bucket=bucket, Key=key)
        except Exception as error:  # noqa: BLE001  (the run's own outcome matters more than its lock)
            if _precondition_failed(error) or isinstance(error, _NotOurs):
                log.warning("%s: the lock is another run's now; left in place", self.location)
            else:
                log.warning("%s: could not remove the lock %s (%s)", self.location, self.url, describe_failure(error))
        return False


class _NotOurs(Exception):
    """The lock object holds another run's token (found when deleting it without a conditional DELETE)."""


def _read_body(fs, answer: dict) -> bytes:
    """The body of a ``get_object`` answer (an aiobotocore stream, read on the filesystem's loop)."""
    from fsspec.asyn import sync

    async def read():
        async with answer["Body"] as stream:
            return await stream.read()

    return sync(fs.loop, read)


def _precondition_failed(exc: BaseException) -> bool:
    """Whether an S3 call failed on its ``If-None-Match``/``If-Match`` condition (412), or a concurrent
    conditional write of the same key (409 ConditionalRequestConflict)."""
    seen: BaseException | None = exc
    while seen is not None:
        response = getattr(seen, "response", None) or {}
        code = str(response.get("Error", {}).get("Code", ""))
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409") or status in (409, 412):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _describe_holder(holder: dict | None, age: float) -> str:
    """A lock's owner in words."""
    if holder is None:
        return f"a lock object not written by akkd-scale, last changed {age:.0f} s ago"
    return (
        f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}, last heartbeat "
        f"{age:.0f} s ago: {holder.get('command_line') or 'unknown command'}"
    )


def store_lock(out, command_line: str = ""):
    """The writer lock of a store: :class:`StoreLock` (a local lock file) or :class:`ObjectStoreLock` (a lock
    object created by conditional write). Re-entrant in one process."""
    location = locate_store(out)
    return ObjectStoreLock(location, command_line) if location.remote else StoreLock(out, command_line)


def check_lock(out) -> None:
    """Raise StoreError when this process took the lock of the object store ``out`` and has lost it since."""
    location = locate_store(out)
    lock = _HELD.get(location.url) if location.remote else None
    if lock is not None:
        lock.check()


def active_writer(out) -> str | None:
    """Who holds the store's lock now (a live run, described in words), else None: ``--verify`` names it, since
    the scenes that run is writing are incomplete on purpose."""
    location = locate_store(out)
    if location.remote:
        lock = ObjectStoreLock(location)
        try:
            text, holder, _, age = lock._holder()
        except Exception:  # noqa: BLE001  (unreachable: --verify reports the scenes themselves)
            return None
        if text is None or lock._is_stale(holder, age):
            return None
        return _describe_holder(holder, age)
    text, holder, age = StoreLock(out)._holder()
    if text is None:
        return None
    if holder is None:
        return f"a run whose lock file is being written ({age:.0f} s old)" if age < LOCK_GRACE_S else None
    if _stale(holder):
        return None
    return (
        f"pid {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}: "
        f"{holder.get('command_line') or 'unknown command'}"
    )


def _is_me(holder: dict, me) -> bool:
    """A lock taken by this very process."""
    return (
        holder.get("host") == socket.gethostname()
        and holder.get("pid") == me.pid
        and abs(float(holder.get("process_started", 0)) - me.create_time()) < 1.0
    )


def _stale(holder: dict) -> bool:
    """A lock of this host whose process no longer exists (or whose pid now belongs to another process)."""
    import psutil

    if holder.get("host") != socket.gethostname():
        return False
    try:
        process = psutil.Process(int(holder["pid"]))
        return abs(process.create_time() - float(holder.get("process_started", 0))) > 1.0
    except (psutil.NoSuchProcess, KeyError, TypeError, ValueError):
        return True


def group_record(out, group: str) -> dict | None:
    """The completion record of a complete group, else None."""
    import zarr

    if group_status(out, group) != COMPLETE:
        return None
    record = zarr.open_group(_zarr(out), path=group, mode="r").attrs.get(RECORD)
    return dict(record) if isinstance(record, dict) else None


def group_source(out, group: str) -> str | None:
    """The input file a scene group was written from (its ``source_file`` attribute), None if unknown."""
    import zarr

    if group_status(out, group) == MISSING:
        return None
    source = zarr.open_group(_zarr(out), path=group, mode="r").attrs.get("source_file")
    return str(source) if source else None


def record_mismatch(stored: dict | None, wanted: dict) -> str | None:
    """Why a complete group does not match what this run would write (None when it does)."""
    if stored is None:
        return "it has no completion record"
    # a key added by a later version is "" (not used) in records written before it existed
    differences = [
        f"{key} {stored.get(key)!r} → {wanted[key]!r}"
        for key in wanted
        if stored.get(key, "" if wanted[key] == "" else None) != wanted[key]
    ]
    return "; ".join(differences) or None


def missing_chunks(out, group: str, names=None) -> dict[str, str]:
    """Arrays of a group (or only those called ``names``) with chunks not written: name → 'k of n chunks present'.

    Locally each array's chunk files are counted; in an object store the group's keys are listed once (one
    listing request per 1000 keys rather than one per array) and each array's chunk objects counted: every key
    under ``<array>/`` but its ``zarr.json`` is a chunk (the store's arrays have no other objects)."""
    import zarr

    location = locate_store(out)
    node = zarr.open_group(location.zarr_store(), path=group, mode="r")
    listed = _chunk_counts(location, group) if location.remote else None
    problems = {}
    for name, array in node.arrays():
        if names is not None and name not in names:
            continue
        present = array.nchunks_initialized if listed is None else listed.get(name, 0)
        expected = array.nchunks
        if present != expected:
            problems[name] = f"{present} of {expected} chunks present"
    return problems


def _chunk_counts(location: StoreLocation, group: str) -> dict[str, int]:
    """Objects under each array of ``group`` but its metadata, from one listing of the group's prefix."""
    fs, root = location.filesystem()
    prefix = f"{root}/{group}/"
    counts: dict[str, int] = {}
    for key in fs.find(prefix.rstrip("/")):
        name, _, rest = key.removeprefix(prefix).partition("/")
        if rest and rest != "zarr.json":
            counts[name] = counts.get(name, 0) + 1
    return counts


def output_dataset(result: xr.Dataset, scene_attrs: dict, provenance: dict) -> xr.Dataset:
    """Result (with its CF attributes) plus a ``time`` coordinate and provenance, ready for Zarr.

    Returns a new Dataset; ``result`` is not modified.
    """
    out = result.copy()
    if "band" in out.coords:  # variable-length strings have a Zarr v3 spec; fixed-width unicode has none
        out = out.assign_coords(band=xr.Variable("band", out["band"].values.astype(object), out["band"].attrs))
    for name in out.variables:
        out[name].encoding = {}
    time = scene_attrs.get("acquisition_time")
    if time:
        out = out.assign_coords(time=np.datetime64(pd.Timestamp(time).tz_localize(None), "ns"))
        out["time"].attrs = {"long_name": "acquisition time", "standard_name": "time"}
    out.attrs = {
        "Conventions": "CF-1.10",
        "title": "AK-KD land surface temperature and emissivity",
        **provenance,
        STATUS: INCOMPLETE,
    }
    return out


def encoding_for(ds: xr.Dataset) -> dict:
    """Zarr chunks equal to the Dask chunks and CF fill values (NaN for floats)."""
    encoding = {}
    for name, var in ds.variables.items():
        enc: dict[str, object] = {}
        if var.chunks is not None:
            enc["chunks"] = tuple(c[0] for c in var.chunks)
        if np.issubdtype(var.dtype, np.floating):
            enc["_FillValue"] = np.nan
        if enc:
            encoding[name] = enc
    return encoding


def write_scene(ds: xr.Dataset, out, group: str):
    """Create (or replace) the scene group as ``incomplete`` and return the delayed chunk writes.

    Only a scene group this tool wrote is ever replaced: any other node at ``group`` is refused.
    Every chunk is written, even all-NaN ones, so completeness can be verified by counting chunks.
    """
    import zarr

    try:
        existing = zarr.open(_zarr(out), path=group, mode="r")
    except (FileNotFoundError, KeyError, zarr.errors.GroupNotFoundError, zarr.errors.NodeTypeValidationError):
        existing = None
    if existing is not None and (not isinstance(existing, zarr.Group) or STATUS not in existing.attrs):
        raise StoreError(
            f"{out}/{group}: exists and was not written by akkd-scale as a scene group; refusing to replace it"
        )
    log.debug("writing group %s of %s", group, out)
    return ds.to_zarr(
        _zarr(out),
        group=group,
        mode="w",
        consolidated=False,
        compute=False,
        encoding=encoding_for(ds),
        zarr_format=3,
        write_empty_chunks=True,
    )


def mark_complete(out, group: str, record: dict) -> None:
    """Flag a group complete with its record, after checking every chunk of every variable is present."""
    import zarr

    check_lock(out)  # a run that lost an object store's lock to another run marks nothing complete
    missing = missing_chunks(out, group)
    if missing:
        raise StoreError(
            f"{out}/{group}: not marked complete, chunks missing: "
            + ", ".join(f"{k} ({v})" for k, v in sorted(missing.items()))
        )
    node = zarr.open_group(_zarr(out), path=group, mode="r+")
    # one metadata write (``attrs.update`` writes once per key): a run killed here leaves the group either
    # incomplete or complete with its record, never complete without it (which a rerun would redo)
    node.update_attributes(
        {STATUS: COMPLETE, RECORD: record, "date_completed": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
    )


def open_scene(out, group: str, *, require_complete: bool = True) -> xr.Dataset:
    """Open one scene group lazily; by default refuse a group that is not complete, or whose chunks are not all
    there any more (:func:`missing_chunks`, the check ``mark_complete`` and ``run --verify`` make), so
    ``export``, ``quicklook`` and the Python API never read a damaged scene as NaN.

    Arrays without dimensions (``spatial_ref``, ``time``) are not counted: they are written with the group
    itself, never by the delayed chunk writes, and hold one value (which may equal their fill value).
    """
    status = group_status(out, group)
    if require_complete and status != COMPLETE:
        raise InputError(
            out,
            f"scene group is {status}",
            variable=group,
            expected=f"{STATUS}={COMPLETE!r} (rerun `akkd-scale run` to finish it)",
        )
    ds = xr.open_zarr(_zarr(out), group=group, consolidated=False)
    if require_complete:
        missing = missing_chunks(out, group, [name for name, var in ds.variables.items() if var.ndim])
        if missing:
            raise InputError(
                out,
                "scene group is marked complete but chunks are missing: "
                + ", ".join(f"{k} ({v})" for k, v in sorted(missing.items())),
                variable=group,
                expected="every chunk present (the store was damaged after the run: rerun "
                "`akkd-scale run` on the scene's file to repair it)",
            )
    return ds
