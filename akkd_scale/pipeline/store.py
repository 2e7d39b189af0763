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
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import InputError, StoreError, describe_os_error

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
        attrs = zarr.open_group(str(out), path=group, mode="r").attrs
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
        root = zarr.open_group(str(store), mode="r")
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


def is_local(out) -> bool:
    """Whether ``out`` is a local path (URLs such as ``s3://…`` are not)."""
    return "://" not in str(out)


def prepare_store(out) -> None:
    """Create the result store at ``out`` or check that it is one; refuse anything else.

    A new path or an empty directory becomes a store (root group with the ``akkd_scale_store``
    attribute). Anything else that exists — a file, a user's folder, another Zarr store — is refused,
    so the tool never writes into (or deletes from) what it did not create.
    """
    import zarr

    root = _root_group(out)
    if root is not None and _written_by_us(root):
        return
    path = Path(out)
    if is_local(out) and path.exists() and not path.is_dir():
        raise StoreError(f"{path}: exists and is a file (expected a new path or a result store from akkd-scale)")
    try:
        if root is not None or (is_local(out) and path.is_dir() and any(path.iterdir())):
            raise StoreError(
                f"{out}: exists and is not a result store written by akkd-scale; refusing to write "
                "into it (choose a new --out path)"
            )
        zarr.open_group(str(out), mode="a", zarr_format=3).attrs[STORE_MARKER] = 1
    except OSError as exc:  # read-only file system, no permission, full disk
        raise StoreError(f"{out}: cannot create the result store: {describe_os_error(exc)}") from None


def _root_group(out):
    """The Zarr group at ``out``, or None when there is none."""
    import zarr

    try:
        return zarr.open_group(str(out), mode="r")
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
        self.path = Path(out) / LOCK_FILE
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


class _NoLock:
    """Remote stores (``s3://…``) have no lock file: one writer per store is the user's responsibility."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def store_lock(out, command_line: str = ""):
    """The writer lock of a store (:class:`StoreLock`; none for remote stores). Re-entrant in one process."""
    return StoreLock(out, command_line) if is_local(out) else _NoLock()


def active_writer(out) -> str | None:
    """Who holds the store's lock now (a live run, described in words), else None: ``--verify`` names it, since
    the scenes that run is writing are incomplete on purpose."""
    if not is_local(out):
        return None
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
    record = zarr.open_group(str(out), path=group, mode="r").attrs.get(RECORD)
    return dict(record) if isinstance(record, dict) else None


def group_source(out, group: str) -> str | None:
    """The input file a scene group was written from (its ``source_file`` attribute), None if unknown."""
    import zarr

    if group_status(out, group) == MISSING:
        return None
    source = zarr.open_group(str(out), path=group, mode="r").attrs.get("source_file")
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
    """Arrays of a group (or only those called ``names``) with chunks not written: name → 'k of n chunks present'."""
    import zarr

    node = zarr.open_group(str(out), path=group, mode="r")
    problems = {}
    for name, array in node.arrays():
        if names is not None and name not in names:
            continue
        present, expected = array.nchunks_initialized, array.nchunks
        if present != expected:
            problems[name] = f"{present} of {expected} chunks present"
    return problems


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
        existing = zarr.open(str(out), path=group, mode="r")
    except (FileNotFoundError, KeyError, zarr.errors.GroupNotFoundError, zarr.errors.NodeTypeValidationError):
        existing = None
    if existing is not None and (not isinstance(existing, zarr.Group) or STATUS not in existing.attrs):
        raise StoreError(
            f"{out}/{group}: exists and was not written by akkd-scale as a scene group; refusing to replace it"
        )
    log.debug("writing group %s of %s", group, out)
    return ds.to_zarr(
        str(out),
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

    missing = missing_chunks(out, group)
    if missing:
        raise StoreError(
            f"{out}/{group}: not marked complete, chunks missing: "
            + ", ".join(f"{k} ({v})" for k, v in sorted(missing.items()))
        )
    node = zarr.open_group(str(out), path=group, mode="r+")
    node.attrs.update(
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
    ds = xr.open_zarr(str(out), group=group, consolidated=False)
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
