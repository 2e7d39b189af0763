"""One exception hierarchy for akkd_scale.

Every error about user input names the file (or object), the variable and what was expected, so a
batch log line is enough to fix the input without a debugger.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path


class AkkdError(Exception):
    """Base class of every error raised on purpose by akkd_scale."""


class InputError(AkkdError, ValueError):
    """Bad input data: ``source`` (file path or description), ``variable`` and what was ``expected``."""

    def __init__(self, source, problem: str, *, variable: str | None = None, expected: str | None = None):
        self.source = str(source) if source is not None else None
        self.variable = variable
        self.problem = problem
        self.expected = expected
        parts = [p for p in (self.source, variable) if p]
        message = ": ".join(parts + [problem]) if parts else problem
        if expected:
            message += f" (expected {expected})"
        super().__init__(message)


class SceneFileError(InputError):
    """A scene file (e.g. ASTER L1B HDF-EOS) cannot be read as a thermal-infrared scene."""


class ProfileFormatError(InputError):
    """An atmospheric profile file or dataset is malformed or physically impossible."""


class SpectrumError(InputError):
    """An emissivity spectrum is malformed or does not cover a band."""


class ParameterError(InputError):
    """A parameter is outside the range the method supports."""


class BundleError(AkkdError):
    """A model bundle is missing, incomplete or incompatible."""


class BundleIntegrityError(BundleError):
    """A bundle file does not match the sha256 recorded in its manifest (tampered or corrupted)."""


class StoreError(AkkdError):
    """A result store cannot be written safely: foreign directory, locked by another run, incomplete writes."""


class OutputError(AkkdError):
    """An output file or folder cannot be written (full disk, read-only file system, no permission)."""


class ClusterError(AkkdError):
    """The Dask cluster cannot be reached or has lost every worker."""


class BuildError(AkkdError, RuntimeError):
    """A native component (LOWTRAN7) could not be built; the message says what to install."""


def describe_path(path) -> str:
    """Absolute path as text for error messages."""
    return str(Path(path).expanduser().resolve())


def describe_os_error(exc: OSError) -> str:
    """The cause of a failed file-system call as text with its errno name, e.g. "read-only file system (EROFS)"."""
    if exc.errno is not None and exc.errno in errno.errorcode:
        return f"{os.strerror(exc.errno).lower()} ({errno.errorcode[exc.errno]})"
    return " ".join(str(exc).split()) or type(exc).__name__
