"""Small helpers shared by several layers: file hashing, JSON-safe values, Markdown tables."""

from __future__ import annotations

import hashlib
import math
import os

import numpy as np


def sha256_file(path, blocksize: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, streamed."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(blocksize), b""):
            digest.update(block)
    return digest.hexdigest()


def json_safe(value):
    """JSON-safe copy: tuples/arrays → lists, NumPy scalars → Python, NaN/inf → None, paths → str."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in list(value)]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, os.PathLike):
        return str(value)
    return value


def markdown_table(header, rows) -> list[str]:
    """Lines of a Markdown table: a header row, the separator and one line per row (cells as given)."""
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
